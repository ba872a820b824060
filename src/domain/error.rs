//! What the domain says is wrong with its input. The HTTP layer (`error.rs`) decides what
//! each of these becomes on the wire; nothing here knows a status code.

use serde::Serialize;
use utoipa::ToSchema;

/// What was wrong with one input field. `field` is a JSON path into the request
/// (`email`, `permissions[1]`, `survey.questions[10]`) or the query/path parameter name.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    #[schema(example = "email")]
    pub field: String,
    #[schema(example = "is not a valid e-mail address")]
    pub message: String,
    /// For uploaded files (CSV import): the line, the header being line 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into(), line: None }
    }

    pub fn at_line(line: u64, field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { line: Some(line), ..FieldError::new(field, message) }
    }
}

/// Why the domain refused a parse or a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The values break the rules; every field at fault is listed, not only the first.
    #[error("invalid: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// A roster file longer than an import takes: it is refused as too large, not as
    /// wrong, at the first `line` past the limit of `max` rows.
    #[error("a file holds at most {max} rows (line {line} is one too many)")]
    TooManyRows { line: u64, max: usize },
    /// An uploaded file whose content is not of a type taken; says why.
    #[error("{0}")]
    UnsupportedFile(String),
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl DomainError {
    /// `Ok(value)` when nothing was collected, else every collected error.
    pub fn check<T>(value: T, errors: Vec<FieldError>) -> Result<T, DomainError> {
        if errors.is_empty() { Ok(value) } else { Err(DomainError::Invalid(errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_error_is_written_as_the_problem_documents_errors_item() {
        let plain = serde_json::to_value(FieldError::new("email", "is not a valid e-mail address")).unwrap();
        assert_eq!(plain, serde_json::json!({"field": "email", "message": "is not a valid e-mail address"}));
        let in_a_file = serde_json::to_value(FieldError::at_line(7, "email1", "is required")).unwrap();
        assert_eq!(in_a_file, serde_json::json!({"field": "email1", "message": "is required", "line": 7}));
    }

    #[test]
    fn check_passes_the_value_only_when_nothing_was_collected() {
        assert_eq!(DomainError::check(5, vec![]), Ok(5));
        let errors = vec![FieldError::new("name", "is required")];
        assert_eq!(DomainError::check(5, errors.clone()), Err(DomainError::Invalid(errors)));
    }

    #[test]
    fn the_message_names_each_field_or_the_row_limit() {
        let invalid = DomainError::Invalid(vec![FieldError::new("name", "is required"), FieldError::new("a", "b")]);
        assert_eq!(invalid.to_string(), "invalid: name: is required; a: b");
        let long = DomainError::TooManyRows { line: 50_002, max: 50_000 };
        assert_eq!(long.to_string(), "a file holds at most 50000 rows (line 50002 is one too many)");
    }
}
