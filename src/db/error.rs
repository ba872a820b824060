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
    /// The database cannot be reached or cannot write for now (restarting, unreachable, out
    /// of connections, disk full, read-only): the same request may succeed later.
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
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

/// Errors that say the database is away or cannot write now, not that the statement is
/// wrong: 503 for a request, a pause for a worker.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08…), shutting down or starting up (57P01–
            // 57P03), too many connections (53300), disk full (53100), a read-only standby
            // (25006), a database refusing connections (55000). SQLite (primary result
            // codes): busy (5), read-only (8), I/O error (10), disk full (13), cannot open (14).
            code.starts_with("08")
                || ["57P01", "57P02", "57P03", "53300", "53100", "25006", "55000"].contains(&code.as_ref())
                || code.parse::<i64>().is_ok_and(|n| [5, 8, 10, 13, 14].contains(&(n & 0xff)))
        }
        _ => false,
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
            _ if is_unavailable(&err) => RepoError::Unavailable(err),
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
    }

    #[test]
    fn a_database_out_of_reach_is_unavailable_not_an_error_of_the_statement() {
        assert!(matches!(RepoError::from(sqlx::Error::PoolTimedOut), RepoError::Unavailable(_)));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(RepoError::from(sqlx::Error::Io(refused)), RepoError::Unavailable(_)));
        assert!(matches!(RepoError::from(sqlx::Error::ColumnNotFound("x".into())), RepoError::Database(_)));
    }
}
