//! The words that leave the building: the e-mail and push text of a message for one
//! guardian, the copy to its sender and the sender's summary once delivery is done.
//! Pure functions of the message; sending is elsewhere.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::db::repositories::tallies::Tally;
use crate::delivery::email::{Attachment, OutgoingEmail};
use crate::delivery::push::Notification;
use crate::domain::EmailAddress;
use crate::domain::message::{Channel, Message};

/// Where the guardian's personal link goes in the e-mail body.
const LINK: &str = "{link}";

/// Characters of the body a push notification shows.
const PUSH_BODY_CHARS: usize = 200;

/// What every job of one message needs, composed once per round.
pub struct Composed {
    message_id: String,
    subject: String,
    /// The e-mail body with [`LINK`] where the personal link goes.
    email_body: String,
    attachments: Vec<Attachment>,
    push_body: String,
    emergency: bool,
}

/// Japan Standard Time, in which every school reads its dates.
fn jst(time: chrono::DateTime<chrono::Utc>) -> String {
    let offset = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
    time.with_timezone(&offset).format("%Y年%m月%d日 %H:%M").to_string()
}

impl Composed {
    pub fn new(message: &Message, attachments: Vec<Attachment>) -> Composed {
        let content = &message.content;
        let subject =
            if message.is_emergency() { format!("【緊急】{}", content.subject) } else { content.subject.clone() };
        let mut body = content.body.clone();
        body.push_str("\n\n――――――――――\n");
        if content.answer_required {
            body.push_str("このお知らせは回答が必要です。");
            if let Some(deadline) = content.answer_deadline {
                body.push_str(&format!("（回答期限: {}）", jst(deadline)));
            }
            body.push('\n');
        }
        body.push_str(&format!("確認・回答はこちら / Confirm and answer:\n{LINK}\n"));
        if let Some(from) = &content.from_name {
            body.push_str(&format!("\n送信者: {from}\n"));
        }
        Composed {
            message_id: message.id.clone(),
            subject,
            email_body: body,
            attachments,
            push_body: content.body.chars().take(PUSH_BODY_CHARS).collect(),
            emergency: message.is_emergency(),
        }
    }

    /// The e-mail to one address of a guardian, carrying their personal link.
    pub fn email(&self, member_id: &str, to: EmailAddress, personal_link: &str) -> OutgoingEmail {
        let address_tag = &hex::encode(Sha256::digest(to.key().as_bytes()))[..12];
        OutgoingEmail {
            to,
            subject: self.subject.clone(),
            text_body: self.email_body.replace(LINK, personal_link),
            // The same id on every attempt, so a resend after a crash is recognisable.
            message_id: format!("<{}.{member_id}.{address_tag}@renrakumo>", self.message_id),
            attachments: self.attachments.clone(),
        }
    }

    /// The notification to one device; `job_id` keeps its APNs id the same on every attempt.
    pub fn notification(&self, job_id: i64, token: &str) -> Notification {
        Notification {
            token: token.to_string(),
            title: self.subject.clone(),
            body: self.push_body.clone(),
            message_id: self.message_id.clone(),
            emergency: self.emergency,
            collapse_id: self.message_id.clone(),
            apns_id: Some(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("renrakumo-job-{job_id}").as_bytes())),
        }
    }
}

/// The copy a sender asked for when the message goes out.
pub fn sender_copy(message: &Message, to: EmailAddress) -> OutgoingEmail {
    OutgoingEmail {
        to,
        subject: format!("[送信控え] {}", message.content.subject),
        text_body: format!(
            "次のメッセージを {} 人に送信しました。\n\n{}",
            message.recipient_count, message.content.body
        ),
        message_id: format!("<{}.copy@renrakumo>", message.id),
        attachments: vec![],
    }
}

/// How the message went, for its sender, once every job has an outcome.
pub fn summary(message: &Message, tallies: &BTreeMap<Channel, Tally>, to: EmailAddress) -> OutgoingEmail {
    let count = |state: fn(&Tally) -> i64| tallies.values().map(state).sum::<i64>();
    OutgoingEmail {
        to,
        subject: format!("[配信完了] {}", message.content.subject),
        text_body: format!(
            "「{}」の配信が終わりました。\n\n宛先: {} 人\n配信済み: {}\n失敗: {}\n不達: {}\n対象外（未設定のチャネル）: {}\n",
            message.content.subject,
            message.recipient_count,
            count(|t| t.sent),
            count(|t| t.failed + t.invalid),
            count(|t| t.bounced),
            count(|t| t.skipped),
        ),
        message_id: format!("<{}.summary@renrakumo>", message.id),
        attachments: vec![],
    }
}
