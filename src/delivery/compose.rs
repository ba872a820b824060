//! The words that leave the building: the e-mail and push text of a message for one
//! guardian, the copy to its sender and the sender's summary once delivery is done, and the
//! notice to a guardian that an app signed in as them. Pure functions; sending is elsewhere.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::db::repositories::tallies::Tally;
use crate::delivery::email::{Attachment, OutgoingEmail};
use crate::delivery::push::Notification;
use crate::domain::message::{Channel, Message};
use crate::domain::{EmailAddress, jst};

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
                body.push_str(&format!("（回答期限: {}）", jst::format_datetime(deadline)));
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

/// To a guardian: an app signed in as them at `at`, and what to do if it was not them.
pub fn app_signed_in(
    org_name: &str,
    guardian_name: &str,
    at: chrono::DateTime<chrono::Utc>,
    to: EmailAddress,
    notice_id: &str,
) -> OutgoingEmail {
    let when = jst::format_datetime(at);
    OutgoingEmail {
        to,
        subject: "連絡網アプリにログインがありました / A new sign-in to the school contact app".into(),
        text_body: format!(
            "{guardian_name} 様\n\n\
             {org_name}の連絡網アプリに、あなたとしてログインがありました。\n\
             日時: {when}（日本時間）\n\n\
             お心当たりがない場合は、すぐに学校にご連絡ください。\n\
             これまでログインしていたアプリは、このログインでログアウトされました。\n\n\
             An app signed in to {org_name}'s contact app as you on {} (UTC). \
             If this was not you, contact the school at once. \
             Any app signed in before has been signed out.\n",
            at.format("%Y-%m-%d %H:%M")
        ),
        message_id: format!("<signin.{notice_id}@renrakumo>"),
        attachments: vec![],
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::message::{MessageContent, MessageStatus, Priority, Targets};

    fn message(priority: Priority, answer_required: bool) -> Message {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
        Message {
            id: "0193a7c0-0000-7000-8000-000000000001".into(),
            org_id: "org".into(),
            created_by: None,
            api_key_id: None,
            content: MessageContent {
                subject: "臨時休校".into(),
                body: "あ".repeat(300),
                from_name: Some("教頭".into()),
                priority,
                answer_required,
                // 09:30 UTC is 18:30 in Japan.
                answer_deadline: Some(Utc.with_ymd_and_hms(2026, 12, 8, 9, 30, 0).unwrap()),
                survey: None,
                targets: Targets::default(),
                channels: vec![Channel::Email, Channel::Push],
                copy_to_sender: false,
                remind_after_minutes: None,
            },
            status: MessageStatus::Sending,
            send_at: None,
            sent_at: Some(at),
            completed_at: None,
            recipient_count: 2,
            reminded_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_sign_in_notice_says_when_in_japan_time_and_whom_to_tell() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 15, 30, 0).unwrap();
        let to = EmailAddress::parse("hanako@example.jp").unwrap();
        let email = app_signed_in("さくら小学校", "山田 花子", at, to, "n1");
        assert!(email.text_body.starts_with("山田 花子 様\n"));
        assert!(email.text_body.contains("さくら小学校の連絡網アプリ"));
        assert!(email.text_body.contains("日時: 2026年12月08日 00:30（日本時間）"));
        assert!(email.text_body.contains("学校にご連絡ください"));
        assert!(email.text_body.contains("on 2026-12-07 15:30 (UTC)"));
        assert_eq!(email.message_id, "<signin.n1@renrakumo>");
    }

    #[test]
    fn the_email_carries_the_personal_link_the_deadline_in_japan_time_and_the_sender() {
        let composed = Composed::new(&message(Priority::Normal, true), vec![]);
        let to = EmailAddress::parse("taro@example.jp").unwrap();
        let email = composed.email("member-1", to, "https://school.example.jp/r/TOKEN");
        assert_eq!(email.subject, "臨時休校");
        assert!(email.text_body.contains("（回答期限: 2026年12月08日 18:30）"), "{}", email.text_body);
        assert!(email.text_body.contains("Confirm and answer:\nhttps://school.example.jp/r/TOKEN\n"));
        assert!(!email.text_body.contains(LINK));
        assert!(email.text_body.ends_with("\n送信者: 教頭\n"));
    }

    #[test]
    fn each_address_gets_its_own_stable_message_id() {
        let composed = Composed::new(&message(Priority::Normal, false), vec![]);
        let email =
            |address: &str| composed.email("member-1", EmailAddress::parse(address).unwrap(), "link").message_id;
        assert_eq!(email("taro@example.jp"), email("taro@example.jp"));
        assert_eq!(email("taro@example.jp"), email("Taro@Example.jp"), "the address key ignores case");
        assert_ne!(email("taro@example.jp"), email("hanako@example.jp"));
        let body = composed.email("member-1", EmailAddress::parse("taro@example.jp").unwrap(), "link").text_body;
        assert!(!body.contains("回答が必要"), "only answer-required messages say so");
    }

    #[test]
    fn emergency_messages_are_marked_and_push_shows_the_start_of_the_body() {
        let composed = Composed::new(&message(Priority::Emergency, false), vec![]);
        let to = EmailAddress::parse("taro@example.jp").unwrap();
        assert_eq!(composed.email("member-1", to, "link").subject, "【緊急】臨時休校");
        let notification = composed.notification(42, "device-token");
        assert_eq!(notification.title, "【緊急】臨時休校");
        assert_eq!(notification.body.chars().count(), PUSH_BODY_CHARS);
        assert!(notification.emergency);
        assert_eq!(notification.apns_id, composed.notification(42, "device-token").apns_id, "stable per job");
        assert_ne!(notification.apns_id, composed.notification(43, "device-token").apns_id);
    }

    #[test]
    fn the_summary_counts_every_outcome() {
        let tallies = BTreeMap::from([
            (Channel::Email, Tally { sent: 5, bounced: 1, failed: 1, ..Tally::default() }),
            (Channel::Push, Tally { sent: 3, invalid: 2, skipped: 1, ..Tally::default() }),
        ]);
        let to = EmailAddress::parse("sender@example.jp").unwrap();
        let summary = summary(&message(Priority::Normal, false), &tallies, to);
        assert_eq!(summary.subject, "[配信完了] 臨時休校");
        assert!(
            summary.text_body.contains("配信済み: 8\n失敗: 3\n不達: 1\n対象外（未設定のチャネル）: 1\n"),
            "{}",
            summary.text_body
        );
    }
}
