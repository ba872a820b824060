//! Request extractors that answer problem+json naming the offending field, where actix's
//! own extractors answer plain text without saying which field was wrong.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::domain::FieldError;
use crate::error::{ApiError, ApiResult};

/// JSON bodies larger than this are refused before they are read whole. Generous for any
/// JSON this API takes (a 5,000-character message with a full survey is far below it);
/// attachments use multipart with their own limit.
pub const JSON_LIMIT: usize = 256 * 1024;

/// A JSON request body.
pub struct JsonBody<T>(pub T);
/// A JSON body that may be left out entirely (no body, or `Content-Length: 0`): then
/// `None`. A body that is there must be valid, or the request fails naming the field:
/// a malformed optional body must never be taken for an absent one.
pub struct OptionalJsonBody<T>(pub Option<T>);
/// An `application/x-www-form-urlencoded` request body (the OAuth2 token endpoint).
pub struct FormBody<T>(pub T);
/// The query string.
pub struct QueryParams<T>(pub T);

/// `serde_path_to_error` writes the root as "."; a missing field is reported at its parent.
fn field_path<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>) -> (String, String) {
    let path = err.path().to_string();
    let parent = if path == "." { String::new() } else { path };
    let message = err.inner().to_string();
    // serde_json appends " at line 1 column 42": a position in the body helps nobody here.
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(name) = rest.split('`').next()
        {
            // The path already ends at an unknown key; it stops at the parent of a missing one.
            let already_named = parent == name || parent.ends_with(&format!(".{name}"));
            let field = if parent.is_empty() {
                name.to_string()
            } else if already_named {
                parent.clone()
            } else {
                format!("{parent}.{name}")
            };
            let text = if prefix.starts_with("missing") {
                "is required".to_string()
            } else {
                "is not a known field".to_string()
            };
            return (field, text);
        }
    }
    (if parent.is_empty() { "body".into() } else { parent }, message)
}

/// PostgreSQL refuses U+0000 in text while SQLite stores it: no input may carry it.
const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// The path of the first string (or object key) in `value` that contains U+0000.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() { "body".into() } else { path.to_string() }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_path(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, v)| {
            let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if key.contains('\0') { Some(child) } else { nul_path(v, &child) }
        }),
        _ => None,
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let malformed = |inner: &serde_json::Error| ApiError::BadRequest {
        detail: format!("the body is not valid JSON (line {}, column {})", inner.line(), inner.column()),
        field: Some("body".into()),
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        // serde_json reports some wrong types (a number where an enum belongs) as syntax
        // errors: only a body that is not well-formed JSON is a 400.
        let syntax = err.inner().is_syntax() || err.inner().is_eof();
        if syntax && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            return malformed(err.inner());
        }
        let (field, message) = field_path(&err);
        let message = if syntax { "has the wrong type".to_string() } else { message };
        ApiError::Validation(vec![FieldError::new(field, message)])
    })?;
    // Nothing but whitespace may follow the value.
    de.end().map_err(|e| malformed(&e))?;
    // JSON carries U+0000 only as the escape \u0000: look closer only when it is there.
    if bytes.windows(6).any(|w| w == b"\\u0000")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(field) = nul_path(&value, "")
    {
        return Err(ApiError::field(field, NUL_MESSAGE));
    }
    Ok(parsed)
}

fn parse_urlencoded<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if let Some((key, _)) =
        url::form_urlencoded::parse(bytes).find(|(key, value)| key.contains('\0') || value.contains('\0'))
    {
        return Err(ApiError::field(key.replace('\0', ""), NUL_MESSAGE));
    }
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(de).map_err(|err| {
        let (field, message) = field_path(&err);
        ApiError::Validation(vec![FieldError::new(field, message)])
    })
}

/// Reads a whole body of one of `mimes` (the first is the one named in errors), at most
/// `limit` bytes.
pub fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    mimes: &'static [&'static str],
    limit: usize,
) -> Pin<Box<dyn Future<Output = ApiResult<BytesMut>>>> {
    let content_type = req.content_type().to_ascii_lowercase();
    let mime = mimes[0];
    let type_ok =
        mimes.contains(&content_type.as_str()) || (mime == "application/json" && content_type.ends_with("+json"));
    let declared_length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        if !type_ok {
            return Err(ApiError::UnsupportedMediaType {
                detail: format!("send the body as {mime}"),
                field: "Content-Type".into(),
            });
        }
        let too_large = || ApiError::PayloadTooLarge {
            detail: format!("the body is larger than {limit} bytes"),
            field: "body".into(),
        };
        if declared_length.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| crate::request_body::read_error(&e))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, &["application/json"], JSON_LIMIT);
        Box::pin(async move {
            let body = body.await?;
            if body.is_empty() {
                return Err(ApiError::BadRequest {
                    detail: "the body is empty; send a JSON object".into(),
                    field: Some("body".into()),
                });
            }
            // serde also reads a struct from an array of its fields in order: every body this
            // API takes is an object, so an array is a body of the wrong shape.
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
                && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok()
            {
                return Err(ApiError::field("body", "must be a JSON object, not an array"));
            }
            parse_json(&body).map(JsonBody)
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
        let length =
            req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if length.unwrap_or(0) == 0 && !req.headers().contains_key(TRANSFER_ENCODING) {
            return Box::pin(async { Ok(OptionalJsonBody(None)) });
        }
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJsonBody(Some(body.await?.0))) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for FormBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, &["application/x-www-form-urlencoded"], JSON_LIMIT);
        Box::pin(async move { parse_urlencoded(&body.await?).map(FormBody) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for QueryParams<T> {
    type Error = ApiError;
    type Future = std::future::Ready<ApiResult<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_urlencoded(req.query_string().as_bytes()).map(QueryParams))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Outer>(body.as_bytes()).unwrap_err() {
            ApiError::Validation(errors) => errors[0].field.clone(),
            ApiError::BadRequest { field, .. } => field.unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_by_its_path() {
        assert_eq!(field_of(r#"{"items": []}"#), "name");
        assert_eq!(field_of(r#"{"name": 5, "items": []}"#), "name");
        assert_eq!(field_of(r#"{"name": "x", "items": [{"count": 1}, {"count": "many"}]}"#), "items[1].count");
        assert_eq!(field_of(r#"{"name": "x", "items": [{}]}"#), "items[0].count");
        assert_eq!(field_of(r#"{"name": "x", "items": [], "nmae": 1}"#), "nmae");
        assert_eq!(field_of(r#"{"name": "x""#), "body");
    }
}
