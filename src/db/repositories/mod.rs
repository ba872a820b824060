//! All SQL lives here. Functions take `&mut AnyConnection` so callers decide whether a call
//! runs alone or inside their transaction.

pub mod api_keys;
pub mod login_failures;
pub mod organizations;
pub mod sessions;
pub mod settings;
pub mod users;
