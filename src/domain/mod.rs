//! Types built by parsing: once constructed they are valid, so later code does not check
//! again. No I/O here.

pub mod attachment;
pub mod delivery;
pub mod email;
mod error;
pub mod jst;
pub mod member;
pub mod message;
pub mod roster_csv;
pub mod roster_import;
pub mod staff;
pub mod survey;

pub use email::EmailAddress;
pub use error::{DomainError, FieldError};
pub use staff::{Password, PersonName, Role, Scope};

/// Counts characters, not bytes: DESIGN.md states every limit in characters.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}
