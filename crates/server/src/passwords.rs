//! Passwords the hub checks (the Reckon Web Connector's Basic Auth): stored as argon2id PHC
//! strings, verified in constant time, with successful checks remembered briefly so a connector
//! cycle of many GETs and POSTs costs one hash, not one per request.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// How long a verified (hash, password) pair is trusted without hashing again.
const REMEMBER: Duration = Duration::from_secs(300);
const MAX_REMEMBERED: usize = 10_000;

/// The argon2id hash (PHC string) of `password`.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
        .to_string())
}

/// Whether `password` matches `stored`. Runs the hash on a blocking thread.
pub async fn verify(stored: &str, password: &str) -> bool {
    let key = remember_key(stored, password);
    if remembered(&key) {
        return true;
    }
    let (stored, password) = (stored.to_owned(), password.to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false);
    if ok {
        remember(key);
    }
    ok
}

/// Equal-length-independent, constant-time comparison for user names.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (
        ledgerlink_core::secret::sha256_hex(a.as_bytes()),
        ledgerlink_core::secret::sha256_hex(b.as_bytes()),
    );
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cache() -> &'static Mutex<HashMap<String, Instant>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// The stored hash is salted and unique, so the pair names one credential of one connection.
fn remember_key(stored: &str, password: &str) -> String {
    ledgerlink_core::secret::sha256_hex(format!("{stored}\u{0}{password}").as_bytes())
}

fn remembered(key: &str) -> bool {
    let cache = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    cache.get(key).is_some_and(|at| at.elapsed() < REMEMBER)
}

fn remember(key: String) {
    let mut cache = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.len() >= MAX_REMEMBERED {
        cache.retain(|_, at| at.elapsed() < REMEMBER);
        if cache.len() >= MAX_REMEMBERED {
            cache.clear();
        }
    }
    cache.insert(key, Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(verify(&stored, "correct horse battery").await);
        assert!(verify(&stored, "correct horse battery").await, "again, from memory");
        assert!(!verify(&stored, "correct horse batterY").await);
        assert!(!verify("not a hash", "x").await);
        assert_ne!(hash("same").unwrap(), hash("same").unwrap(), "salted");
    }

    #[test]
    fn user_names_compare_exactly() {
        assert!(same("rwc-user", "rwc-user"));
        assert!(!same("rwc-user", "rwc-usex"));
        assert!(!same("rwc", "rwc-user"));
    }
}
