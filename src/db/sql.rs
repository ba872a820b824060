//! A small builder for SQL assembled at run time (search filters, multi-row inserts).
//! The placeholders are written for the connection's engine when the query is made:
//! `$1, $2, …` for PostgreSQL, plain `?` for SQLite. SQLite accepts `$N` too, but treats
//! each as a named parameter and looks every name up in a list, which makes a statement
//! with thousands of them (a chunk of a roster import) quadratic to prepare and bind.

use sqlx::AnyConnection;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::{Query, QueryAs, QueryScalar};

use crate::db::{Backend, engine};

#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// Query, QueryAs and QueryScalar share `bind` but no trait for it.
macro_rules! with_binds {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for value in $binds {
            query = match value {
                Value::Text(s) => query.bind(s),
                Value::Int(n) => query.bind(n),
                Value::Null => query.bind(None::<String>),
            };
        }
        query
    }};
}

/// Row locks only PostgreSQL needs: SQLite runs one writer at a time, so the clause is
/// empty there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    /// On the parents a transaction adds child rows to, where no foreign key does it
    /// (migrations/postgres/0007): a concurrent delete of the parent then waits for the
    /// transaction and removes what it added.
    KeyShare,
    /// On a row the transaction alone decides about until it commits.
    Update,
    /// On rows one instance takes for itself; the others pass them by instead of waiting.
    UpdateSkipLocked,
}

/// The locking clause for `lock` on the table (or alias) `of`, for `conn`'s engine.
pub fn row_lock(conn: &AnyConnection, lock: RowLock, of: &str) -> String {
    if engine(conn) == Backend::Sqlite {
        return String::new();
    }
    match lock {
        RowLock::KeyShare => format!(" FOR KEY SHARE OF {of}"),
        RowLock::Update => format!(" FOR UPDATE OF {of}"),
        RowLock::UpdateSkipLocked => format!(" FOR UPDATE OF {of} SKIP LOCKED"),
    }
}

#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    /// Byte offsets in `text` where the placeholders go, in bind order.
    placeholders: Vec<usize>,
    binds: Vec<Value>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql { text: text.to_string(), placeholders: Vec::new(), binds: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder and remembers its value.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Sql {
        self.binds.push(value.into());
        self.placeholders.push(self.text.len());
        self
    }

    /// Appends a placeholder for each value, comma-separated (for `IN (…)`).
    pub fn bind_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Sql {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(value);
        }
        self
    }

    pub fn bind_count(&self) -> usize {
        self.binds.len()
    }

    /// The statement text with placeholders as `conn`'s engine wants them.
    fn text_for(&self, conn: &AnyConnection) -> String {
        let numbered = engine(conn) == Backend::Postgres;
        let mut text = String::with_capacity(self.text.len() + self.placeholders.len() * 6);
        let mut from = 0;
        for (i, &at) in self.placeholders.iter().enumerate() {
            text.push_str(&self.text[from..at]);
            if numbered {
                text.push('$');
                text.push_str(&(i + 1).to_string());
            } else {
                text.push('?');
            }
            from = at;
        }
        text.push_str(&self.text[from..]);
        text
    }

    pub fn query(self, conn: &AnyConnection) -> Query<'static, Any, AnyArguments> {
        with_binds!(sqlx::query(sqlx::AssertSqlSafe(self.text_for(conn))), self.binds)
    }

    pub fn query_as<T>(self, conn: &AnyConnection) -> QueryAs<'static, Any, T, AnyArguments>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        with_binds!(sqlx::query_as(sqlx::AssertSqlSafe(self.text_for(conn))), self.binds)
    }

    pub fn query_scalar<T>(self, conn: &AnyConnection) -> QueryScalar<'static, Any, T, AnyArguments>
    where
        (T,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        with_binds!(sqlx::query_scalar(sqlx::AssertSqlSafe(self.text_for(conn))), self.binds)
    }
}
