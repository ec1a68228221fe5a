//! The envelope that encrypts secrets at rest.
//!
//! A stored value reads `ll1.<key id>.<base64url(nonce ‖ ciphertext)>`. The cipher is
//! XChaCha20-Poly1305: its 192-bit nonces can be drawn at random without counting. The key id
//! travels with the value so keys can rotate: new values use the primary key, old values still
//! decrypt with the key that wrote them. Each value is bound to a *context* (for example
//! `tenant_setting:sandbox_api_key`) as associated data, so a ciphertext copied into another
//! row or column fails to decrypt instead of yielding the wrong secret.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

use crate::SecretString;

const ENVELOPE_VERSION: &str = "ll1";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error(
        "an encryption key must be 32 bytes encoded as base64 (e.g. from `openssl rand -base64 32`): {0}"
    )]
    InvalidKey(String),
    #[error("a stored secret is not a ledgerlink envelope (expected `ll1.<key id>.<data>`)")]
    Malformed,
    #[error(
        "a stored secret was encrypted with key id {key_id}, which is not configured; add that key to `old_encryption_keys`"
    )]
    UnknownKey { key_id: String },
    #[error(
        "a stored secret could not be decrypted with key id {key_id}: it was altered, or belongs to another record"
    )]
    Tampered { key_id: String },
    #[error("a stored secret decrypted to bytes that are not UTF-8")]
    NotUtf8,
}

/// One 256-bit key with its id (the first 8 bytes of its SHA-256, in hex).
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl EncryptionKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { id, cipher: XChaCha20Poly1305::new(bytes.into()) }
    }

    /// Parses standard or URL-safe base64, with or without padding, surrounding whitespace
    /// ignored (key files often end in a newline).
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let trimmed = encoded.trim();
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
            .map_err(|_| CryptoError::InvalidKey("it is not valid base64".into()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| CryptoError::InvalidKey(format!("it decodes to {} bytes", b.len())))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A fresh random key and its base64 text (what a key file holds).
    pub fn generate() -> (Self, SecretString) {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        (Self::from_bytes(&bytes), SecretString::new(STANDARD.encode(bytes)))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The primary key that encrypts, plus older keys that still decrypt.
#[derive(Clone, Debug)]
pub struct KeyRing {
    primary: EncryptionKey,
    older: Vec<EncryptionKey>,
}

impl KeyRing {
    pub fn new(primary: EncryptionKey, older: Vec<EncryptionKey>) -> Self {
        Self { primary, older }
    }

    pub fn primary_id(&self) -> &str {
        self.primary.id()
    }

    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = associated_data(self.primary.id(), context);
        let ciphertext = self
            .primary
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut data = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&ciphertext);
        format!("{ENVELOPE_VERSION}.{}.{}", self.primary.id(), URL_SAFE_NO_PAD.encode(data))
    }

    pub fn decrypt(&self, envelope: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = envelope.splitn(3, '.');
        let (Some(ENVELOPE_VERSION), Some(key_id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.primary)
            .chain(&self.older)
            .find(|k| k.id() == key_id)
            .ok_or_else(|| CryptoError::UnknownKey { key_id: key_id.to_owned() })?;
        let data = URL_SAFE_NO_PAD.decode(data).map_err(|_| CryptoError::Malformed)?;
        if data.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let aad = associated_data(key_id, context);
        key.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| CryptoError::Tampered { key_id: key_id.to_owned() })
    }

    pub fn encrypt_secret(&self, secret: &SecretString, context: &str) -> String {
        self.encrypt(secret.expose().as_bytes(), context)
    }

    pub fn decrypt_secret(&self, envelope: &str, context: &str) -> Result<SecretString, CryptoError> {
        let bytes = self.decrypt(envelope, context)?;
        String::from_utf8(bytes).map(SecretString::new).map_err(|_| CryptoError::NotUtf8)
    }
}

fn associated_data(key_id: &str, context: &str) -> Vec<u8> {
    format!("ledgerlink/{ENVELOPE_VERSION}|{key_id}|{context}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(EncryptionKey::generate().0, vec![])
    }

    #[test]
    fn a_secret_round_trips_and_the_envelope_hides_it() {
        let ring = ring();
        let envelope = ring.encrypt_secret(&SecretString::new("refresh-token-123"), "ctx");
        assert!(envelope.starts_with(&format!("ll1.{}.", ring.primary_id())));
        assert!(!envelope.contains("refresh-token-123"));
        assert_eq!(ring.decrypt_secret(&envelope, "ctx").unwrap().expose(), "refresh-token-123");
    }

    #[test]
    fn the_same_secret_encrypts_differently_each_time() {
        let ring = ring();
        assert_ne!(ring.encrypt(b"x", "ctx"), ring.encrypt(b"x", "ctx"));
    }

    #[test]
    fn a_wrong_key_is_reported_by_id_not_as_garbage() {
        let envelope = ring().encrypt(b"secret", "ctx");
        let other = ring();
        assert!(matches!(other.decrypt(&envelope, "ctx"), Err(CryptoError::UnknownKey { .. })));
    }

    #[test]
    fn tampered_data_fails_authentication() {
        let ring = ring();
        let envelope = ring.encrypt(b"secret", "ctx");
        let mut bytes = envelope.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(matches!(ring.decrypt(&tampered, "ctx"), Err(CryptoError::Tampered { .. })));
    }

    #[test]
    fn a_value_moved_to_another_context_does_not_decrypt() {
        let ring = ring();
        let envelope = ring.encrypt(b"secret", "connection:a:refresh_token");
        assert!(matches!(
            ring.decrypt(&envelope, "connection:b:refresh_token"),
            Err(CryptoError::Tampered { .. })
        ));
    }

    #[test]
    fn rotated_keys_still_decrypt_old_values() {
        let (old, _) = EncryptionKey::generate();
        let before = KeyRing::new(old.clone(), vec![]).encrypt(b"old secret", "ctx");
        let after = KeyRing::new(EncryptionKey::generate().0, vec![old]);
        assert_eq!(after.decrypt(&before, "ctx").unwrap(), b"old secret");
        assert!(after.encrypt(b"new", "ctx").contains(after.primary_id()));
    }

    #[test]
    fn malformed_envelopes_and_keys_are_rejected_clearly() {
        let ring = ring();
        for bad in ["", "plain text", "ll1.", "ll1.abc", "ll2.abc.def", "ll1.x.!!!"] {
            assert!(ring.decrypt(bad, "ctx").is_err(), "{bad}");
        }
        assert!(matches!(EncryptionKey::from_base64("not base64!"), Err(CryptoError::InvalidKey(_))));
        let short = EncryptionKey::from_base64("c2hvcnQ=").unwrap_err();
        assert!(short.to_string().contains("5 bytes"), "{short}");
    }

    #[test]
    fn key_text_with_a_trailing_newline_parses() {
        let (key, text) = EncryptionKey::generate();
        let parsed = EncryptionKey::from_base64(&format!("{}\n", text.expose())).unwrap();
        assert_eq!(parsed.id(), key.id());
    }
}
