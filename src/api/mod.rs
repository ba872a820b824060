//! HTTP handlers, one file per resource. DTOs are turned into domain types on the first
//! lines of each handler; SQL stays in `db::repositories`.

pub mod api_keys;
pub mod app;
pub mod attachments;
pub mod auth;
pub mod confirmations;
pub mod devices;
pub mod extract;
pub mod guardian_page;
pub mod health;
pub mod inbox;
pub mod lists;
pub mod me;
pub mod members;
pub mod messages;
pub mod pagination;
pub mod problem_responses;
pub mod progress;
pub mod promotion;
pub mod receipts;
pub mod results;
pub mod roster_io;
pub mod sending;
pub mod users;

use chrono::{DateTime, Utc};
use utoipa_actix_web::service_config::ServiceConfig;

/// Every documented route. The server and `renrakumo openapi` both call this, so the
/// served spec and the committed one come from the same registrations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .configure(confirmations::configure_pages)
        .configure(guardian_page::configure)
        .service(
            utoipa_actix_web::scope("/api/v1")
                .configure(auth::configure)
                .configure(me::configure)
                .configure(users::configure)
                .configure(api_keys::configure)
                .configure(lists::configure)
                .configure(roster_io::configure)
                .configure(promotion::configure)
                .configure(members::configure)
                .configure(devices::configure)
                .configure(app::configure)
                .configure(messages::configure)
                .configure(sending::configure)
                .configure(progress::configure)
                .configure(results::configure)
                .configure(receipts::configure)
                .configure(inbox::configure)
                .configure(attachments::configure)
                .configure(confirmations::configure),
        );
}

/// Epoch milliseconds (storage) → RFC 3339 UTC (API).
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Collects field errors so one answer lists every problem, not only the first.
#[derive(Default)]
pub struct Checks(Vec<crate::domain::FieldError>);

impl Checks {
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.0.push(crate::domain::FieldError::new(field, e.to_string()))).ok()
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(crate::domain::FieldError::new(field, message));
    }

    pub fn finish(self) -> crate::error::ApiResult<()> {
        if self.0.is_empty() { Ok(()) } else { Err(crate::error::ApiError::Validation(self.0)) }
    }
}
