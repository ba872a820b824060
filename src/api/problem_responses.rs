//! The error answers many operations share, for `#[utoipa::path(responses(...))]`: each is
//! one status with a `Problem` body as `application/problem+json` and a generic description.
//! A handler lists these by name after its own answers, e.g.
//! `responses((status = 200, body = ListResponse), NotFound, Validation)`, and writes an
//! answer out in full only when it has something particular to say about it
//! (`(status = 409, description = "Already sent or cancelled", body = Problem, ...)`).
//! They only document; `crate::error::ApiError` is what answers.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use crate::error::{PROBLEM_JSON, Problem};

/// One response: `status`, described, with a problem document as its body.
fn problem(status: u16, description: &str) -> BTreeMap<String, RefOr<Response>> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(Problem::name()))).build();
    let response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build();
    BTreeMap::from([(status.to_string(), RefOr::T(response))])
}

macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                problem($status, $description)
            }
        }
    )*};
}

problem_responses! {
    /// `ApiError::BadRequest`: a body that is not well-formed, an `Idempotency-Key` that is not
    /// one, a path parameter with U+0000.
    BadRequest = 400, "The request could not be read: `detail` says which part (`errors` names the field)";
    /// `ApiError::Unauthorized`: the `Caller` and `Guardian` extractors' answer.
    Unauthorized = 401, "No valid credential: missing, unknown or expired, or its session has ended";
    /// `ApiError::Forbidden`: `Caller::require` (a scope) or `Caller::require_admin`.
    Forbidden = 403, "Not for this credential: it lacks the scope (`detail` names it), or the task is an admin's";
    /// `ApiError::NotFound`.
    NotFound = 404, "Not found; `detail` says what";
    /// `ApiError::Conflict`.
    Conflict = 409, "Conflicts with the current state or with an existing record; `detail` says how";
    /// `ApiError::PayloadTooLarge`: a body over its operation's byte limit.
    PayloadTooLarge = 413, "The body is larger than this operation takes";
    /// `ApiError::UnsupportedMediaType`.
    UnsupportedMediaType = 415, "A `Content-Type` this operation does not take";
    /// `ApiError::Validation`.
    Validation = 422, "Invalid input; `errors` lists each field with what is wrong";
}

/// `ApiError::TooManyRequests`: a throttle of `crate::throttle` refused the attempt.
pub struct TooManyRequests;

impl IntoResponses for TooManyRequests {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(Problem::name()))).build();
        let retry_after = HeaderBuilder::new()
            .schema(Some(u64::schema()))
            .description(Some("Seconds to wait before the next attempt is even checked"))
            .build();
        let response = ResponseBuilder::new()
            .description("Too many attempts from this client (or for this key); wait `Retry-After` seconds")
            .content(PROBLEM_JSON, content)
            .header("Retry-After", retry_after)
            .build();
        BTreeMap::from([("429".to_string(), RefOr::T(response))])
    }
}
