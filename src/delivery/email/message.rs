//! Building the e-mail: the registered address as an SMTP address (quoting the legacy
//! carrier local parts), and the RFC 5322 message with lettre's builder (base64 text,
//! RFC 2047 subject, attachments). Nothing here touches the network.

use anyhow::Context as _;
use lettre::Address;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, Message, MultiPart, SinglePart};

use super::OutgoingEmail;
use crate::domain::EmailAddress;

/// The message from `from` to `to` (the address [`smtp_address`] made of `email.to`), dated now.
pub(super) fn build(from: &Mailbox, email: &OutgoingEmail, to: Address) -> anyhow::Result<Message> {
    // base64 rather than 8bit: the message stays 7-bit clean, so it passes every hop
    // whether or not it offers 8BITMIME (carrier gateways and old relays have
    // downgraded or mangled raw UTF-8), and a long Japanese paragraph without line
    // breaks cannot exceed SMTP's 998-octet line limit (5,000 characters are 15 KB of
    // UTF-8). Carrier and PC clients all decode base64 text/plain; UTF-8 text is smaller
    // as base64 than as quoted-printable. Cost: a third more bytes, ~7 µs per message.
    let text = Body::new_with_encoding(email.text_body.clone(), ContentTransferEncoding::Base64)
        .map_err(|_| anyhow::anyhow!("body cannot be base64-encoded"))?;
    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text);
    // lettre encodes a non-ASCII subject as RFC 2047 UTF-8 words.
    // The envelope is given, not derived: lettre re-parses the To header for it, and its
    // header parser does not take a quoted local part back.
    let envelope = lettre::address::Envelope::new(Some(from.email.clone()), vec![to.clone()]).context("envelope")?;
    let builder = Message::builder().envelope(envelope).from(from.clone());
    let builder = if to.user().starts_with('"') {
        // lettre writes the bare addr-spec `"taro..papa"@docomo.ne.jp`, valid RFC 5322
        // but read by some parsers (mail-parser among them) as a display name followed by
        // `@docomo.ne.jp`. In angle brackets every parser we tried reads it whole.
        let value = format!("<{to}>");
        builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("To"),
            value.clone(),
            value,
        ))
    } else {
        builder.to(Mailbox::new(None, to))
    };
    let builder =
        builder.subject(email.subject.as_str()).message_id(Some(angle_bracketed(&email.message_id))).date_now();
    let message = if email.attachments.is_empty() {
        builder.singlepart(text)
    } else {
        let mut mixed = MultiPart::mixed().singlepart(text);
        for attachment in &email.attachments {
            let content_type = ContentType::parse(&attachment.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .context("content type")?;
            // Always base64: lettre would pick 7bit for ASCII-only bytes, and a 7bit part
            // with bare LFs is rewritten by relays, so the file would not arrive byte for
            // byte. The file name is RFC 2231-encoded by lettre when not plain ASCII.
            let bytes = Body::new_with_encoding(attachment.bytes.clone(), ContentTransferEncoding::Base64)
                .map_err(|_| anyhow::anyhow!("attachment cannot be base64-encoded"))?;
            mixed = mixed.singlepart(
                lettre::message::Attachment::new(clean_filename(&attachment.filename)).body(bytes, content_type),
            );
        }
        builder.multipart(mixed)
    };
    message.context("building the message")
}

/// The registered address as lettre accepts it. The legacy carrier local parts
/// (`taro..papa@docomo.ne.jp`, `yumi.@ezweb.ne.jp`) are not dot-atoms, and RFC 5322 sends to
/// them as a quoted string (`"taro..papa"@docomo.ne.jp`), which the carriers' MTAs accept.
/// Everything else, internationalised addresses included, passes through as registered
/// (a non-ASCII address then needs a relay that offers SMTPUTF8).
pub(super) fn smtp_address(email: &EmailAddress) -> Result<Address, lettre::address::AddressError> {
    let (local, domain) = email.as_str().rsplit_once('@').unwrap_or((email.as_str(), ""));
    if is_dot_atom(local) { Address::new(local, domain) } else { Address::new(quote_local_part(local), domain) }
}

/// RFC 5322 dot-atom (with RFC 6532's UTF-8): atoms of atext separated by single dots.
fn is_dot_atom(local: &str) -> bool {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

fn quote_local_part(local: &str) -> String {
    let mut quoted = String::with_capacity(local.len() + 2);
    quoted.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn angle_bracketed(message_id: &str) -> String {
    let bare = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{bare}>")
}

/// Control characters would break the header; the rest is encoded by lettre.
fn clean_filename(filename: &str) -> String {
    let clean: String = filename.chars().filter(|c| !c.is_control()).collect();
    if clean.trim().is_empty() { "attachment".into() } else { clean }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::delivery::email::{Attachment, Mailer};

    /// A notice as the delivery engine hands it over; the e-mail module's tests share it.
    pub(in crate::delivery::email) fn email(to: &str) -> OutgoingEmail {
        OutgoingEmail {
            to: EmailAddress::parse(to).unwrap(),
            subject: "【重要】臨時休校のお知らせ".into(),
            text_body: "保護者各位\n明日は臨時休校です。\n".into(),
            message_id: "<m1.r1.1@renrakumo>".into(),
            attachments: vec![],
        }
    }

    /// Renders through the façade, as the delivery engine would build the message.
    fn outbox_mailer() -> Mailer {
        let mut config = Config::for_database("sqlite::memory:").unwrap();
        config.outbox_dir = std::env::temp_dir().join("renrakumo-unused-outbox");
        Mailer::from_config(&config).unwrap()
    }

    #[test]
    fn carrier_local_parts_are_quoted_and_others_kept() {
        let cases = [
            ("taro..papa@docomo.ne.jp", "\"taro..papa\"@docomo.ne.jp"),
            ("yumi.@ezweb.ne.jp", "\"yumi.\"@ezweb.ne.jp"),
            (".dot@softbank.ne.jp", "\".dot\"@softbank.ne.jp"),
            ("a_b-c.d@softbank.ne.jp", "a_b-c.d@softbank.ne.jp"),
            ("user+tag@example.jp", "user+tag@example.jp"),
            ("Hanako.Yamada@Example.JP", "Hanako.Yamada@example.jp"),
            ("山田@例え.jp", "山田@例え.jp"),
        ];
        for (registered, expected) in cases {
            let address = smtp_address(&EmailAddress::parse(registered).unwrap()).unwrap();
            assert_eq!(address.to_string(), expected);
        }
    }

    #[test]
    fn every_accepted_fixture_address_becomes_an_smtp_address() {
        let fixture = include_str!("../../../tests/fixtures/carrier-addresses.txt");
        for line in fixture.lines().filter(|l| l.starts_with("accept ")) {
            let address = line["accept ".len()..].split("  ").next().unwrap().trim();
            let parsed = EmailAddress::parse(address).unwrap();
            assert!(smtp_address(&parsed).is_ok(), "{address} not accepted by lettre");
        }
    }

    #[test]
    fn rendered_message_is_seven_bit_with_encoded_subject_and_given_id() {
        let bytes = outbox_mailer().render(&email("taro..papa@docomo.ne.jp")).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.is_ascii(), "base64 body and RFC 2047 subject keep the message 7-bit");
        assert!(text.contains("Message-ID: <m1.r1.1@renrakumo>\r\n"), "{text}");
        assert!(text.contains("Subject: =?utf-8?b?"), "{text}");
        assert!(text.contains("To: <\"taro..papa\"@docomo.ne.jp>\r\n"), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: base64\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.contains("\r\nDate: "), "{text}");
    }

    #[test]
    fn long_subjects_and_bodies_keep_smtp_line_limits() {
        let mut message = email("taro@example.jp");
        message.subject = "運動会の開催について".repeat(10);
        message.text_body = "あ".repeat(5_000);
        message.attachments.push(Attachment {
            filename: "お便り.txt".into(),
            content_type: "text/plain".into(),
            bytes: b"ascii only\nwith bare LF\n".to_vec(),
        });
        let text = String::from_utf8(outbox_mailer().render(&message).unwrap()).unwrap();
        for line in text.split("\r\n") {
            assert!(line.len() <= 78, "line of {} octets: {line}", line.len());
        }
        assert!(!text.replace("\r\n", "").contains('\n'), "no bare LF");
        assert_eq!(text.matches("Content-Transfer-Encoding: base64").count(), 2, "{text}");
    }

    #[test]
    fn message_id_without_brackets_gets_them() {
        let mut message = email("taro@example.jp");
        message.message_id = "m2.r9.3@renrakumo".into();
        let text = String::from_utf8(outbox_mailer().render(&message).unwrap()).unwrap();
        assert!(text.contains("Message-ID: <m2.r9.3@renrakumo>\r\n"), "{text}");
    }
}
