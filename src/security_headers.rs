//! Headers on every answer, so that a browser neither guesses a content type, shows an
//! answer inside another site's frame, nor keeps personal data in its cache (OWASP REST
//! Security Cheat Sheet, "Security headers"). A handler that sets one of them itself (the
//! guardian's page has its own Content-Security-Policy) keeps its value.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// Every answer of the JSON API is about someone: none may be stored by a browser or proxy.
const API_PREFIX: &str = "/api/v1/";

/// An API answer is data, never a document to render: no scripts, no frames.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let api = req.path().starts_with(API_PREFIX);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(headers, header::X_FRAME_OPTIONS, "DENY");
    set_default(headers, header::REFERRER_POLICY, "no-referrer");
    if api {
        set_default(headers, header::CACHE_CONTROL, "no-store");
        set_default(headers, header::CONTENT_SECURITY_POLICY, API_POLICY);
    }
    Ok(res)
}
