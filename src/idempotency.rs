//! `Idempotency-Key` on POST (draft-ietf-httpapi-idempotency-key-header). A school
//! information system that retries a POST after a timeout gets the first answer again
//! (header `Idempotent-Replayed: true`) instead of a second draft, list or guardian; a send
//! retried this way answers its first 202, not a 409.
//!
//! Keys belong to the credential that sent them (`X-API-Key`, or the `Authorization` access
//! token for as long as it lives) and are kept a day; a retry with the same credential gets
//! the first answer even if the credential was revoked since (it is what it already got). The same key with
//! another request (method, path, query or body) is refused with 422; while the first
//! request is still being handled, 409. A first answer of 5xx is not kept: the retry runs.
//!
//! Only requests with a genuine credential are kept (a signed access token or a known API
//! key, checked before anything is written), so no one without one can grow the table.
//! Exchanges that hold a secret (passwords in the request; tokens, API keys, invitation or
//! join codes in the answer) are never kept, whatever the path's spelling: their handlers
//! mark the answer with [`not_kept`], and the claim is dropped. `covers_path` only says
//! which documented operations take a key, for the OpenAPI document.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::db::repositories::{api_keys, idempotency};
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "Idempotency-Key";
const REPLAYED: &str = "Idempotent-Replayed";
/// Above every body limit of the API (a 10 MiB roster in multipart).
const MAX_BODY: usize = 12 * 1024 * 1024;

/// The credential the request carries, with the header it came in.
fn credential(req: &ServiceRequest) -> Option<Vec<u8>> {
    [header::AUTHORIZATION, header::HeaderName::from_static("x-api-key")].into_iter().find_map(|name| {
        req.headers().get(&name).map(|value| [name.as_str().as_bytes(), b":", value.as_bytes()].concat())
    })
}

/// Whether the documented POST `path` (a template) takes a key: not those whose request or
/// answer holds a secret (their handlers call [`not_kept`]), nor the personal links, which
/// have no credential header. Documentation only; the middleware goes by the marks.
pub fn covers_path(path: &str) -> bool {
    const SECRET: [&str; 4] = ["/api/v1/auth/", "/api/v1/receipts/", "/api/v1/api-keys", "/api/v1/users"];
    const SECRET_APP: [&str; 2] = ["/api/v1/app/session", "/api/v1/app/register"];
    path.starts_with("/api/v1/")
        && !SECRET.iter().any(|prefix| path.starts_with(prefix))
        && !SECRET_APP.contains(&path)
        && !path.ends_with("/invitations")
}

/// The mark of an exchange that holds a secret: never kept for replay.
struct NotKept;

/// Marks `response` (and the request it answers) as holding a secret: the middleware keeps
/// neither. Every handler whose request or answer carries a password, token, key or code
/// calls this.
pub fn not_kept(mut response: HttpResponse) -> HttpResponse {
    response.extensions_mut().insert(NotKept);
    response
}

/// Whether the request's credential is genuine: an access token with our signature, or an
/// API key we issued that still works. Whether it may do what it asks is the handler's
/// business; this only keeps strangers out of the table.
async fn genuine_credential(state: &AppState, req: &ServiceRequest) -> Result<bool, ApiError> {
    if let Some(token) = crate::auth::caller::bearer(req.request()) {
        return Ok(state.jwt.verify(token).is_some());
    }
    let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) else { return Ok(false) };
    let mut conn = state.db.pool.acquire().await?;
    let found = api_keys::find_usable(&mut conn, &crate::auth::tokens::digest(key), state.clock.now_ms()).await?;
    Ok(found.is_some())
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

fn problem(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(error.error_response())
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let state = req.app_data::<web::Data<AppState>>().cloned().expect("the app state is registered");
    if req.method() != Method::POST || !genuine_credential(&state, &req).await? {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let key = match key.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => key.to_string(),
        _ => {
            let detail = "must be 1 to 255 visible ASCII characters (a UUID is a good key)";
            return Ok(problem(req, ApiError::BadRequest { detail: detail.into(), field: Some(HEADER.into()) }));
        }
    };
    let credential_hash = sha256_hex(&[&credential(&req).unwrap_or_default()]);

    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Ok(problem(req, crate::request_body::read_error(&e))),
        };
        if body.len() + chunk.len() > MAX_BODY {
            let error =
                ApiError::PayloadTooLarge { detail: "the request body is too large".into(), field: "body".into() };
            return Ok(problem(req, error));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let request_hash = sha256_hex(&[req.method().as_str().as_bytes(), target.as_bytes(), &content_type, &body]);
    req.set_payload(Payload::from(body));

    let earlier = {
        let mut conn = state.db.pool.acquire().await.map_err(ApiError::from)?;
        idempotency::claim(&mut conn, &credential_hash, &key, &request_hash).await.map_err(ApiError::from)?
    };
    if let Some(earlier) = earlier {
        if earlier.request_hash != request_hash {
            let detail = "was already used for another request; use a new key for each request";
            return Ok(problem(req, ApiError::Validation(vec![crate::domain::FieldError::new(HEADER, detail)])));
        }
        let Some(status) = earlier.status else {
            let detail = "the first request with this key is still being handled; retry in a moment";
            return Ok(problem(req, ApiError::Conflict { detail: detail.into(), field: Some(HEADER.into()) }));
        };
        let mut replay = HttpResponse::build(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK));
        replay.insert_header((REPLAYED, "true"));
        if let Some(content_type) = earlier.content_type {
            replay.insert_header((header::CONTENT_TYPE, content_type));
        }
        if let Some(location) = earlier.location {
            replay.insert_header((header::LOCATION, location));
        }
        return Ok(req.into_response(replay.body(earlier.body.unwrap_or_default())));
    }

    let release = || async {
        if let Ok(mut conn) = state.db.pool.acquire().await
            && let Err(error) = idempotency::release(&mut conn, &credential_hash, &key).await
        {
            tracing::warn!(error = ?error, "could not release an idempotency key; it expires in a day");
        }
    };
    let response = match next.call(req).await {
        Ok(response) => response,
        Err(error) => {
            release().await;
            return Err(error);
        }
    };
    let holds_secret = response.response().extensions().contains::<NotKept>();
    if holds_secret || response.status().is_server_error() || response.status() == StatusCode::UNAUTHORIZED {
        release().await;
        return Ok(response.map_into_boxed_body());
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(error) => {
            release().await;
            let cause = anyhow::anyhow!("reading the answer to keep it: {}", error.into());
            return Ok(ServiceResponse::new(request, ApiError::Internal(cause).error_response()));
        }
    };
    let text = |name: header::HeaderName| head.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let stored = {
        let mut conn = state.db.pool.acquire().await.map_err(ApiError::from)?;
        let (content_type, location) = (text(header::CONTENT_TYPE), text(header::LOCATION));
        idempotency::complete(
            &mut conn,
            &credential_hash,
            &key,
            head.status().as_u16(),
            content_type.as_deref(),
            location.as_deref(),
            &bytes,
        )
        .await
    };
    if let Err(error) = stored {
        tracing::warn!(error = ?error, "could not keep the answer for an idempotency key");
    }
    Ok(ServiceResponse::new(request, head.set_body(BoxBody::new(bytes))))
}
