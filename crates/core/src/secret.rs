//! Values that must never be printed: passwords, tokens, API keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// A string that redacts itself in `Debug` and `Display`.
///
/// Reading the value takes an explicit [`SecretString::expose`], which is easy to find in review.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// The prefix of every tenant API key, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "llk_";

/// A tenant's bearer API key. Only its [`ApiKey::hash`] is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// 32 random bytes: enough entropy that a fast hash is a safe way to store it.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(SecretString(format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    pub fn from_presented(value: &str) -> Self {
        Self(SecretString(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Hex SHA-256 of the key: what the database holds and looks keys up by.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.expose().as_bytes())
    }
}

/// Hex SHA-256: how high-entropy secrets that only need matching (API keys, OAuth `state`) are
/// stored.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = SecretString::new("hunter2hunter2");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2hunter2");
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn api_keys_are_prefixed_unique_and_hash_stably() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert!(a.expose().starts_with(API_KEY_PREFIX));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), ApiKey::from_presented(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
    }
}
