//! Following a delivery: a message's progress per channel and who responded, and each
//! recipient's addresses and devices with their delivery state.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::QueryParams;
use crate::api::messages::find;
use crate::api::pagination::{Page, PageQuery};
use crate::api::problem_responses::{NotFound, Validation};
use crate::api::time;
use crate::auth::Caller;

use crate::db::repositories::{receipts, recipients, tallies};
use crate::domain::delivery::JobStatus;
use crate::domain::email::mask_addresses;
use crate::domain::member::{Platform, mask_token};
use crate::domain::message::{Channel, FollowUp, MessageStatus};
use crate::domain::survey::SurveyAnswer;
use crate::domain::{EmailAddress, Scope};
use crate::error::ApiResult;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(stats).service(list_recipients);
}

#[derive(Serialize, ToSchema, Default)]
pub struct EmailCounts {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub bounced: i64,
}

#[derive(Serialize, ToSchema, Default)]
pub struct PushCounts {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    /// Dead device tokens (removed from the roster).
    pub invalid: i64,
    /// The platform is not configured on this instance.
    pub skipped: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryCounts {
    pub email: EmailCounts,
    pub push: PushCounts,
}

#[derive(Serialize, ToSchema)]
pub struct StatsResponse {
    pub status: MessageStatus,
    pub recipients: i64,
    pub read: i64,
    pub acknowledged: i64,
    pub answered: i64,
    pub deliveries: DeliveryCounts,
}

/// Progress of a message: deliveries per channel, and who read and acknowledged it.
#[utoipa::path(tag = "messages", params(("id" = String, Path)), responses(
    (status = 200, body = StatsResponse),
    NotFound,
))]
#[get("/messages/{id}/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<StatsResponse>> {
    caller.require(Scope::MessagesRead)?;
    let mut conn = state.db.pool.acquire().await?;
    let message = find(&mut conn, &caller, &id).await?;
    let responses = recipients::response_counts(&mut conn, &id).await?;
    let tallies = tallies::of_message(&mut conn, &id).await?;
    let email = tallies.get(&Channel::Email).copied().unwrap_or_default();
    let email = EmailCounts {
        queued: email.queued,
        sent: email.sent,
        failed: email.failed + email.invalid + email.skipped,
        bounced: email.bounced,
    };
    let push = tallies.get(&Channel::Push).copied().unwrap_or_default();
    let push = PushCounts {
        queued: push.queued,
        sent: push.sent,
        failed: push.failed + push.bounced,
        invalid: push.invalid,
        skipped: push.skipped,
    };
    Ok(web::Json(StatsResponse {
        status: message.status,
        recipients: responses.recipients,
        read: responses.read,
        acknowledged: responses.acknowledged,
        answered: responses.answered,
        deliveries: DeliveryCounts { email, push },
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Queued,
    Sent,
    Failed,
    Bounced,
    Invalid,
    Skipped,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub channel: Channel,
    /// The address (masked without `contacts:read`) or the device token (masked).
    pub to: String,
    /// `apns` or `fcm` for push.
    pub platform: Option<Platform>,
    pub state: DeliveryState,
    pub attempts: i64,
    /// The last error or the receiving server's reply (the addresses it quotes masked without
    /// `contacts:read`).
    pub detail: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct RecipientResponse {
    pub member_id: String,
    pub name: String,
    pub read_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    /// The guardian's current survey answers.
    pub answers: Vec<SurveyAnswer>,
    pub deliveries: Vec<DeliveryResponse>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// Only the guardians who have not read, acknowledged or answered it, or whom it
    /// failed to reach on some address or device.
    #[param(inline)]
    pub status: Option<FollowUp>,
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Per guardian: each address and device with its delivery state.
#[utoipa::path(tag = "messages", params(("id" = String, Path), RecipientQuery), responses(
    (status = 200, body = Page<RecipientResponse>),
    NotFound, Validation,
))]
#[get("/messages/{id}/recipients")]
pub async fn list_recipients(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: QueryParams<RecipientQuery>,
) -> ApiResult<web::Json<Page<RecipientResponse>>> {
    caller.require(Scope::MessagesRead)?;
    let query = query.0;
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.parse()?;
    let mut conn = state.db.pool.acquire().await?;
    find(&mut conn, &caller, &id).await?;
    let (rows, jobs) = recipients::page(&mut conn, &id, query.status, page.after.as_deref(), page.fetch()).await?;
    let answers = receipts::answers(&mut conn, &id, None).await?;
    let unmasked = caller.has(Scope::ContactsRead);
    let page = page.page(
        rows,
        |r| &r.member_id,
        |r| RecipientResponse {
            deliveries: jobs
                .iter()
                .filter(|j| j.member_id == r.member_id)
                .map(|j| DeliveryResponse {
                    channel: j.channel,
                    to: match (j.channel, unmasked) {
                        (Channel::Email, true) => j.address.clone(),
                        (Channel::Email, false) => {
                            EmailAddress::parse(&j.address).map(|a| a.masked()).unwrap_or_default()
                        }
                        (Channel::Push, _) => mask_token(&j.address),
                    },
                    platform: j.platform,
                    state: match j.status {
                        JobStatus::Queued | JobStatus::Claimed => DeliveryState::Queued,
                        JobStatus::Sent => DeliveryState::Sent,
                        JobStatus::Failed => DeliveryState::Failed,
                        JobStatus::Bounced => DeliveryState::Bounced,
                        JobStatus::Invalid => DeliveryState::Invalid,
                        JobStatus::Skipped => DeliveryState::Skipped,
                    },
                    attempts: j.attempts,
                    // A mail server's reply quotes the address it refused.
                    detail: match unmasked {
                        true => j.last_error.clone(),
                        false => j.last_error.as_deref().map(mask_addresses),
                    },
                    updated_at: j.updated_at,
                })
                .collect(),
            answers: answers.iter().filter(|a| a.member_id == r.member_id).map(|a| a.answer.clone()).collect(),
            member_id: r.member_id,
            name: r.name,
            read_at: r.read_at.map(time),
            acknowledged_at: r.acknowledged_at.map(time),
            answered_at: r.answered_at.map(time),
        },
    );
    Ok(web::Json(page))
}
