//! Messages as staff compose them, checked against the limits of DESIGN.md, and the
//! message entity as the rest of the code works with it (parsed once, from the repository).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::survey::Survey;
use super::{FieldError, char_len};

pub const MAX_SUBJECT: usize = 100;
pub const MAX_BODY: usize = 5_000;
pub const MAX_FROM_NAME: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    #[default]
    Normal,
    /// Delivered before everything else; time-sensitive on phones.
    Emergency,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Emergency => "emergency",
        }
    }
    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::Normal, Priority::Emergency].into_iter().find(|p| p.as_str() == s)
    }
}

/// For rows read straight into a `Priority` (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for Priority {
    type Error = String;

    fn try_from(s: String) -> Result<Priority, String> {
        Priority::parse(&s).ok_or_else(|| format!("unknown priority {s:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Push,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Push => "push",
        }
    }
    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::Email, Channel::Push].into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Draft,
    Scheduled,
    Sending,
    Sent,
    Cancelled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Draft => "draft",
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<MessageStatus> {
        use MessageStatus::*;
        [Draft, Scheduled, Sending, Sent, Cancelled].into_iter().find(|m| m.as_str() == s)
    }
}

/// Who a message goes to: members of any of the lists, plus the members named, narrowed by
/// the attribute filters (every key must match one of its values). Without lists and
/// members, the attribute filters select from the whole roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub list_ids: Vec<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
    /// e.g. `{"grade": ["1"], "class": ["A", "B"]}`: grade 1 AND class A or B.
    #[serde(default)]
    #[schema(example = json!({"grade": ["1"], "class": ["A"]}))]
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.list_ids.is_empty() && self.member_ids.is_empty() && self.attributes.is_empty()
    }
}

/// Some of a message's recipients: those a resend or reminder reaches, or a recipients
/// page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FollowUp {
    Unread,
    Unacknowledged,
    Unanswered,
    /// Not reached on some address or device (failed, bounced, or a dead device token).
    Failed,
}

/// What staff write: everything a draft or scheduled message may still change.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageContent {
    pub subject: String,
    pub body: String,
    pub from_name: Option<String>,
    pub priority: Priority,
    pub answer_required: bool,
    pub answer_deadline: Option<DateTime<Utc>>,
    pub survey: Option<Survey>,
    pub targets: Targets,
    /// Sorted, without repeats, never empty.
    pub channels: Vec<Channel>,
    pub copy_to_sender: bool,
    /// Remind those who have not acknowledged after this many minutes (answer-required only).
    pub remind_after_minutes: Option<i64>,
}

/// A message as stored: its content, who wrote it, and where it is in its life.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub org_id: String,
    /// The staff user who composed it; None for API keys.
    pub created_by: Option<String>,
    pub api_key_id: Option<String>,
    pub content: MessageContent,
    pub status: MessageStatus,
    /// When a scheduled message goes out.
    pub send_at: Option<DateTime<Utc>>,
    /// When sending started.
    pub sent_at: Option<DateTime<Utc>>,
    /// When every delivery had an outcome.
    pub completed_at: Option<DateTime<Utc>>,
    /// Guardians reached by the send.
    pub recipient_count: i64,
    pub reminded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Message {
    pub fn sends_by(&self, channel: Channel) -> bool {
        self.content.channels.contains(&channel)
    }

    pub fn is_emergency(&self) -> bool {
        self.content.priority == Priority::Emergency
    }

    /// Whether answers can no longer change at `now`.
    pub fn deadline_passed(&self, now: DateTime<Utc>) -> bool {
        self.content.answer_deadline.is_some_and(|deadline| deadline <= now)
    }
}

pub(super) fn text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize, required: bool) {
    let length = char_len(value.trim());
    if required && length == 0 {
        errors.push(FieldError::new(field, "is required"));
    } else if char_len(value) > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters (it has {})", char_len(value))));
    }
}

pub fn check_subject_body(errors: &mut Vec<FieldError>, subject: &str, body: &str, from_name: Option<&str>) {
    text(errors, "subject", subject, MAX_SUBJECT, true);
    text(errors, "body", body, MAX_BODY, true);
    if let Some(from_name) = from_name {
        text(errors, "from_name", from_name, MAX_FROM_NAME, false);
    }
}

pub fn check_targets(errors: &mut Vec<FieldError>, targets: &Targets) {
    if targets.list_ids.len() + targets.member_ids.len() > 10_000 {
        errors.push(FieldError::new("targets", "at most 10,000 lists and members"));
    }
    for (key, values) in &targets.attributes {
        if values.is_empty() {
            errors.push(FieldError::new(format!("targets.attributes.{key}"), "name at least one value"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters() {
        let mut errors = Vec::new();
        check_subject_body(&mut errors, &"件".repeat(100), &"本".repeat(5000), Some(&"名".repeat(50)));
        assert!(errors.is_empty(), "{errors:?}");
        check_subject_body(&mut errors, &"件".repeat(101), "", Some(&"名".repeat(51)));
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["subject", "body", "from_name"]);
    }
}
