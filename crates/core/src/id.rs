//! Identifiers: a short type prefix and 26 characters of Crockford base32.
//!
//! The first 48 bits are the creation time in milliseconds, so ids sort roughly by creation and
//! make stable pagination cursors; the other 80 bits are random. Ids are URL-safe, which matters
//! for the Reckon Web Connector, which builds URLs by plain concatenation.

use rand::RngCore;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Generates a new id such as `org_01jd3v2k8e6q0w4c5n1r7t9y2b`.
pub fn generate(prefix: &str, now_millis: i64) -> String {
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value: u128 = (now_millis.max(0) as u128 & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        let index = ((value >> (5 * i)) & 0x1F) as usize;
        out.push(CROCKFORD[index] as char);
    }
    out
}

/// True when `id` has the given prefix and the shape [`generate`] produces.
///
/// Used to answer 404 early for ids that cannot exist, without a database round trip.
pub fn is_well_formed(prefix: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) else {
        return false;
    };
    rest.len() == 26 && rest.bytes().all(|b| CROCKFORD.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_well_formed_and_url_safe() {
        let id = generate("org", 1_700_000_000_000);
        assert!(is_well_formed("org", &id), "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert!(!is_well_formed("usr", &id));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let earlier = generate("org", 1_700_000_000_000);
        let later = generate("org", 1_700_000_000_001);
        assert!(earlier < later);
    }

    #[test]
    fn two_ids_in_the_same_millisecond_differ() {
        assert_ne!(generate("org", 5), generate("org", 5));
    }

    #[test]
    fn malformed_ids_are_recognised() {
        for bad in ["", "org_", "org_abc", "org-01jd3v2k8e6q0w4c5n1r7t9y2b", "org_01JD3V2K8E6Q0W4C5N1R7T9Y2B"]
        {
            assert!(!is_well_formed("org", bad), "{bad}");
        }
    }
}
