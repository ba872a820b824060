//! argon2id password hashes. Hashing takes tens of milliseconds by design, so it runs on
//! the blocking pool (`spawn_blocking`), never on an async worker thread, and callers hold
//! no database connection meanwhile.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
}

/// A fixed hash to check against when there is no account, so that the work done does
/// not reveal whether an address has one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default().hash_password(b"renrakumo-dummy-password").map(|h| h.to_string()).unwrap_or_default()
    })
}

/// The index of the first of `stored_hashes` that `password` matches. Every hash is
/// checked (and the dummy one when there are none), so the time taken says nothing about
/// which one matched or whether any exists.
pub async fn first_match(password: String, stored_hashes: Vec<String>) -> anyhow::Result<Option<usize>> {
    Ok(tokio::task::spawn_blocking(move || {
        if stored_hashes.is_empty() {
            let _ = Argon2::default().verify_password(password.as_bytes(), dummy_hash());
            return None;
        }
        let matches: Vec<bool> = stored_hashes
            .iter()
            .map(|hash| Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
            .collect();
        matches.iter().position(|&m| m)
    })
    .await?)
}

/// Whether `password` matches the stored hash; None (no such user) is checked against the
/// dummy hash and answers false.
pub async fn verify(password: String, stored_hash: Option<String>) -> anyhow::Result<bool> {
    Ok(first_match(password, stored_hash.into_iter().collect()).await?.is_some())
}
