//! Random identifiers shaped like the ones a real instance hands out.

use rand::Rng as _;

/// A random (version 4) UUID in its lower-case hyphenated form: record ids.
pub(crate) fn uuid() -> String {
    let mut bytes: [u8; 16] = rand::thread_rng().r#gen();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// An `ASP.NET_SessionId`: 24 characters of `a-z` and `0-5`, as ASP.NET makes them.
pub(crate) fn session_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";
    let mut rng = rand::thread_rng();
    (0..24).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

/// A `.ASPXAUTH` forms-authentication ticket: upper-case hex.
pub(crate) fn forms_ticket() -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEF";
    let mut rng = rand::thread_rng();
    (0..160).map(|_| char::from(DIGITS[rng.gen_range(0..16)])).collect()
}
