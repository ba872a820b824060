//! The one error type of the HTTP layer and its mapping to RFC 9457 problem details.
//! Only this file knows status codes. 5xx bodies say nothing about the cause; the cause
//! chain goes to the log instead.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::RepoError;
use crate::domain::{DomainError, FieldError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document, as every error answer carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[schema(example = "urn:renrakumo:problem:validation")]
    pub r#type: String,
    #[schema(example = "Validation failed")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "email: is not a valid e-mail address")]
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// OAuth2 error code (RFC 6749 §5.2), on answers of the token endpoint only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was understood but its values break the rules (422).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The request could not be read at all: malformed JSON, wrong types (400).
    #[error("bad request: {detail}")]
    BadRequest { detail: String, field: Option<String> },
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Sign-in refused; carries the OAuth2 error code for the token endpoint.
    #[error("invalid credentials")]
    InvalidGrant,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A known path, another method; `allow` lists the methods it takes (`GET, PUT`).
    #[error("method not allowed")]
    MethodNotAllowed { method: String, allow: String },
    #[error("conflict: {detail}")]
    Conflict { detail: String, field: Option<String> },
    #[error("payload too large: {detail}")]
    PayloadTooLarge { detail: String, field: String },
    /// A body (`Content-Type`) or an uploaded file (`file`) of a type not taken.
    #[error("unsupported media type: {detail}")]
    UnsupportedMediaType { detail: String, field: String },
    /// The body did not arrive in time (`request_body`).
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::NotFound(format!("no {what} with that id"))
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation",
            ApiError::BadRequest { .. } => "bad-request",
            ApiError::Unauthorized(_) | ApiError::InvalidGrant => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType { .. } => "unsupported-media-type",
            ApiError::RequestTimeout(_) => "request-timeout",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status_code();
        let (detail, errors) = match self {
            ApiError::Validation(errors) => (
                errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "),
                errors.clone(),
            ),
            ApiError::BadRequest { detail, field } | ApiError::Conflict { detail, field } => {
                (detail.clone(), field.iter().map(|f| FieldError::new(f.clone(), detail.clone())).collect())
            }
            ApiError::PayloadTooLarge { detail, field } | ApiError::UnsupportedMediaType { detail, field } => {
                (detail.clone(), vec![FieldError::new(field.clone(), detail.clone())])
            }
            ApiError::Unauthorized(why) => (why.to_string(), vec![]),
            ApiError::InvalidGrant => ("wrong e-mail address or password".into(), vec![]),
            ApiError::Forbidden(d) | ApiError::NotFound(d) | ApiError::Unavailable(d) => (d.clone(), vec![]),
            ApiError::RequestTimeout(d) => (d.clone(), vec![FieldError::new("body", d.clone())]),
            ApiError::MethodNotAllowed { method, allow } => {
                (format!("{method} is not allowed here; this path takes {allow}"), vec![])
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                (format!("too many attempts; try again in {retry_after_secs} s"), vec![])
            }
            ApiError::Internal(_) => ("the server failed to answer; the incident is logged".into(), vec![]),
        };
        Problem {
            r#type: format!("urn:renrakumo:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors,
            error: matches!(self, ApiError::InvalidGrant).then(|| "invalid_grant".to_string()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> ApiError {
        match err {
            DomainError::Invalid(errors) => ApiError::Validation(errors),
            // Refused for its size, as a body over the byte limit is, and named by its rows.
            DomainError::TooManyRows { max, .. } => {
                ApiError::PayloadTooLarge { detail: format!("a file holds at most {max} rows"), field: "rows".into() }
            }
            DomainError::UnsupportedFile(detail) => ApiError::UnsupportedMediaType { detail, field: "file".into() },
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(err: RepoError) -> ApiError {
        match err {
            RepoError::NotFound => ApiError::NotFound("not found".into()),
            RepoError::Conflict { field: Some(field) } => {
                ApiError::Conflict { detail: format!("{field} is already in use"), field: Some(field.into()) }
            }
            RepoError::Conflict { field: None } => {
                ApiError::Conflict { detail: "conflicts with an existing record".into(), field: None }
            }
            // The extractors already refuse NUL in bodies and queries, so this is a path
            // parameter the client wrote.
            RepoError::InvalidText => {
                ApiError::BadRequest { detail: "text must not contain the NUL character (U+0000)".into(), field: None }
            }
            corrupt @ RepoError::Corrupt { .. } => ApiError::Internal(anyhow::Error::new(corrupt)),
            RepoError::Unavailable(e) => {
                tracing::warn!(error = %e, "the database is unavailable");
                ApiError::Unavailable("the database is not available right now; try again shortly".into())
            }
            RepoError::Database(e) => ApiError::Internal(anyhow::Error::new(e).context("database")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::InvalidGrant => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::Unauthorized(_) | ApiError::InvalidGrant => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&self.to_problem()).unwrap_or_default())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> ApiError {
        RepoError::from_sqlx(err).into()
    }
}

/// Names the missing thing in a repository's `NotFound`.
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str) -> ApiResult<T>;
}

impl<T> OrNotFound<T> for Result<T, RepoError> {
    fn or_not_found(self, what: &str) -> ApiResult<T> {
        self.map_err(|e| match e {
            RepoError::NotFound => ApiError::not_found(what),
            other => other.into(),
        })
    }
}
