//! argon2id password hashes. Hashing takes tens of milliseconds by design, so it runs on
//! the blocking pool, never on an async worker thread.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub async fn hash(password: String) -> anyhow::Result<String> {
    actix_web::web::block(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
}

/// Constant work whether or not the user exists, so response time does not reveal which
/// addresses have accounts: an unknown user is checked against a fixed dummy hash.
pub async fn verify(password: String, stored_hash: Option<String>) -> anyhow::Result<bool> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let known = stored_hash.is_some();
    let hash = match stored_hash {
        Some(h) => h,
        None => DUMMY
            .get_or_init(|| {
                Argon2::default().hash_password(b"renrakumo-dummy-password").map(|h| h.to_string()).unwrap_or_default()
            })
            .clone(),
    };
    let ok =
        actix_web::web::block(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
            .await?;
    Ok(known && ok)
}
