//! Random identifiers and token strings shaped like each provider's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use sha2::{Digest as _, Sha256};

use super::Provider;

pub(crate) fn alphanumeric(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

pub(crate) fn hex(len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| DIGITS[rng.gen_range(0..16)] as char).collect()
}

/// Decimal digits, never starting with 0 (QuickBooks realm ids).
pub(crate) fn digits(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|i| char::from(b'0' + if i == 0 { rng.gen_range(1..10) } else { rng.gen_range(0..10) }))
        .collect()
}

/// A random (version 4) UUID in its lower-case hyphenated form.
pub(crate) fn uuid() -> String {
    let mut bytes: [u8; 16] = rand::thread_rng().r#gen();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A JWT-shaped string with a random signature. Xero's tokens are JWTs and some clients read
/// their `exp`; nobody can verify the signature, just as nobody but Xero can verify Xero's.
pub(crate) fn unsigned_jwt(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{}", part(header), part(claims), alphanumeric(86))
}

/// The PKCE S256 transform: base64url(sha256(verifier)) without padding.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) fn authorization_code(provider: Provider) -> String {
    match provider {
        Provider::Xero => hex(64),
        Provider::QuickBooks => format!("AB11{}", alphanumeric(46)),
        Provider::Myob => format!("{}!{}", alphanumeric(20), alphanumeric(120)),
    }
}

/// Refresh token values; `expires_at_secs` is woven in where the provider does so.
pub(crate) fn refresh_token(provider: Provider, expires_at_secs: i64) -> String {
    match provider {
        Provider::Xero => hex(64),
        // Intuit's look like `AB11` + the expiry in Unix seconds + random characters.
        Provider::QuickBooks => format!("AB11{}{}", expires_at_secs.max(0), alphanumeric(36)),
        Provider::Myob => format!("{}!IAAAA{}", alphanumeric(16), alphanumeric(112)),
    }
}

/// Opaque access tokens for QuickBooks (a JWE in real life) and MYOB.
pub(crate) fn opaque_access_token(provider: Provider) -> String {
    match provider {
        Provider::QuickBooks => format!(
            "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..{}.{}.{}",
            alphanumeric(22),
            alphanumeric(480),
            alphanumeric(22)
        ),
        _ => alphanumeric(320),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_version_4_shape() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }

    #[test]
    fn the_s256_transform_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn realm_ids_never_start_with_zero() {
        for _ in 0..100 {
            let realm = digits(16);
            assert!(!realm.starts_with('0'));
            assert!(realm.chars().all(|c| c.is_ascii_digit()));
        }
    }
}
