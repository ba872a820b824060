//! The repositories' error type. What the engines report (SQLSTATEs, constraint names as
//! PostgreSQL and SQLite spell them) is read here and nowhere else; the layers above see
//! what it means.

use sqlx::error::DatabaseError;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the row, or it changed under the statement (deleted
    /// meanwhile). `field` names the request field the client must change, where the
    /// constraint guards one.
    #[error("conflict on {}", .field.unwrap_or("a unique constraint"))]
    Conflict { field: Option<&'static str> },
    /// Text the engine will not store: PostgreSQL refuses U+0000 in text (SQLSTATE 22021).
    #[error("text contains the NUL character (U+0000)")]
    InvalidText,
    /// A stored value that does not parse (a status, a JSON column): surfaced as an
    /// internal error, never read as a default.
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error(transparent)]
    Database(sqlx::Error),
}

pub type RepoResult<T> = Result<T, RepoError>;

/// PostgreSQL's "character not in repertoire": the NUL character in text.
const NUL_IN_TEXT: &str = "22021";

/// The request field a unique constraint guards: PostgreSQL reports the constraint's name,
/// SQLite the columns (`UNIQUE constraint failed: users.org_id, users.email_key`). Constraints the client
/// cannot run into by choosing a value (ids, tokens) are not listed.
fn conflict_field(constraint: &str) -> Option<&'static str> {
    match constraint {
        "users_org_email_key" | "users.org_id, users.email_key" => Some("email"),
        _ => None,
    }
}

fn is_nul_in_text(db: &dyn DatabaseError) -> bool {
    db.code().as_deref() == Some(NUL_IN_TEXT)
}

impl RepoError {
    pub fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> RepoError {
        RepoError::Corrupt { what, detail: detail.to_string() }
    }

    /// For statements that may break a unique constraint: a unique violation becomes
    /// `Conflict`, naming the field where the constraint guards one; anything else is
    /// read as `?` reads it.
    pub fn from_sqlx(err: sqlx::Error) -> RepoError {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            let field = match db.constraint() {
                Some(name) => conflict_field(name),
                // SQLite: "UNIQUE constraint failed: users.org_id, users.email_key"
                None => conflict_field(db.message().rsplit(": ").next().unwrap_or_default()),
            };
            return RepoError::Conflict { field };
        }
        RepoError::from(err)
    }
}

/// `?` on a query. A unique violation stays a database error here (a 500): the statements
/// that expect one say so with [`RepoError::from_sqlx`].
impl From<sqlx::Error> for RepoError {
    fn from(err: sqlx::Error) -> RepoError {
        match &err {
            sqlx::Error::Database(db) if is_nul_in_text(db.as_ref()) => RepoError::InvalidText,
            _ => RepoError::Database(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_address_constraint_names_the_email_field_on_both_engines() {
        assert_eq!(conflict_field("users_org_email_key"), Some("email"));
        assert_eq!(conflict_field("users.org_id, users.email_key"), Some("email"));
        assert_eq!(conflict_field("lists_org_name"), None);
    }

    #[test]
    fn errors_that_are_not_the_databases_stay_database_errors() {
        assert!(matches!(RepoError::from_sqlx(sqlx::Error::RowNotFound), RepoError::Database(_)));
        assert!(matches!(RepoError::from(sqlx::Error::PoolTimedOut), RepoError::Database(_)));
    }
}
