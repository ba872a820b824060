//! Every request body must arrive in time. actix limits how long the request head may take,
//! not the body: a client that sends its headers and then trickles its body, or stops, would
//! hold its handler (and whatever the handler holds) for as long as it likes. Here the body
//! is read through a stream that gives up after `idle` without a byte or `total` in all,
//! and every reader (`api::extract::read_body`, multipart uploads, the idempotency store)
//! turns that into 408 with `read_error`. Their size limits are their own.

use std::io;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, HeaderMap, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeouts {
    /// The longest pause between two pieces of a body.
    pub idle: Duration,
    /// The longest a whole body may take: a 10 MiB roster at about 1 Mbit/s fits.
    pub total: Duration,
}

impl Default for BodyTimeouts {
    fn default() -> BodyTimeouts {
        BodyTimeouts { idle: Duration::from_secs(10), total: Duration::from_secs(120) }
    }
}

const TIMED_OUT: &str = "the request body did not arrive in time";

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if has_body(req.headers()) {
        let timeouts =
            req.app_data::<web::Data<AppState>>().map(|state| state.config.body_timeouts).unwrap_or_default();
        let timed = timed(req.take_payload(), timeouts);
        req.set_payload(Payload::from(timed.fuse().boxed_local()));
    }
    next.call(req).await
}

fn timed(
    payload: Payload,
    timeouts: BodyTimeouts,
) -> impl futures_util::Stream<Item = Result<web::Bytes, PayloadError>> {
    let deadline = Instant::now() + timeouts.total;
    futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        let until = (Instant::now() + timeouts.idle).min(deadline);
        match tokio::time::timeout_at(until, payload.next()).await {
            Ok(Some(piece)) => Some((piece, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((Err(PayloadError::Io(io::Error::new(io::ErrorKind::TimedOut, TIMED_OUT))), None)),
        }
    })
}

/// The answer to a body that could not be read: 408 when it came too slowly, else 400.
pub fn read_error(err: &PayloadError) -> ApiError {
    match err {
        PayloadError::Io(e) if e.kind() == io::ErrorKind::TimedOut => ApiError::RequestTimeout(TIMED_OUT.into()),
        other => {
            ApiError::BadRequest { detail: format!("the body could not be read: {other}"), field: Some("body".into()) }
        }
    }
}
