//! renrakumo (連絡網): mass notification for schools and organisations.
//!
//! Layers run downward only: `api` → `domain`/`auth` → `db`. Nothing imports `api`.

pub mod admin;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod idempotency;
pub mod openapi;
pub mod request_body;
pub mod security_headers;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;

/// Installs rustls' ring provider. Both ring and aws-lc-rs can end up compiled in, and
/// rustls then refuses to pick one at run time, so every entry point calls this first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
