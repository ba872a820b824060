//! All SQL lives here. Functions take `&mut AnyConnection` so callers decide whether a call
//! runs alone or inside their transaction.

pub mod api_keys;
pub mod attachments;
pub mod devices;
pub mod guardians;
pub mod idempotency;
pub mod jobs;
pub mod lists;
pub mod members;
pub mod messages;
pub mod organizations;
pub mod receipts;
pub mod recipients;
pub mod sessions;
pub mod settings;
pub mod tallies;
pub mod throttles;
pub mod users;

/// `%text%` for LIKE, with LIKE's own wildcards in `text` escaped (used with `ESCAPE '\'`).
pub fn like_pattern(text: &str) -> String {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}
