//! The e-mail channel against a real SMTP server over TCP (no database involved).

use std::sync::Arc;

use mail_parser::{MessageParser, MimeHeaders};
use renrakumo::config::Config;
use renrakumo::delivery::{Attachment, Mailer, OutgoingEmail, SendOutcome};
use renrakumo::domain::EmailAddress;

use crate::smtp_server::{SmtpServer, TlsOffer};

const SUBJECT: &str = "【重要】台風接近に伴う臨時休校のお知らせ（３年２組）";
const BODY: &str = "保護者各位\n\n台風の接近に伴い、明日は臨時休校とします。\n\
    ご確認のうえ、下記のリンクから受信確認をお願いします。\nhttps://renrakumo.example/r/abc\n";

fn config(smtp_url: Option<url::Url>) -> Config {
    renrakumo::install_crypto_provider();
    let mut config = Config::for_database("sqlite::memory:").unwrap();
    config.smtp_url = smtp_url;
    config
}

fn mailer_for(server: &SmtpServer) -> Mailer {
    Mailer::from_config(&config(Some(server.url()))).unwrap()
}

fn email(to: &str, n: u32) -> OutgoingEmail {
    OutgoingEmail {
        to: EmailAddress::parse(to).unwrap(),
        subject: SUBJECT.into(),
        text_body: BODY.into(),
        message_id: format!("<0190b2c4-msg.0190b2c5-rcp.{n}@renrakumo>"),
        attachments: vec![],
    }
}

fn parsed(data: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default().parse(data).expect("the received bytes parse as a message")
}

#[tokio::test]
async fn japanese_subject_and_body_arrive_decoded() {
    let server = SmtpServer::start().await;
    let mailer = mailer_for(&server);

    let outcome = mailer.send(&email("hanako@example.jp", 1)).await;

    assert_eq!(outcome, SendOutcome::Delivered);
    let mails = server.wait_for(1).await;
    assert!(!mails[0].secured, "smtp:// without tls= is plain");
    assert_eq!(mails[0].from, "noreply@localhost");
    assert_eq!(mails[0].to, vec!["hanako@example.jp".to_string()]);
    let message = parsed(&mails[0].data);
    assert_eq!(message.subject(), Some(SUBJECT));
    // Line ends travel as CRLF, as SMTP requires.
    assert_eq!(message.body_text(0).unwrap().replace("\r\n", "\n"), BODY);
    assert!(message.date().is_some());
    assert_eq!(message.from().and_then(|f| f.first()).and_then(|a| a.address()), Some("noreply@localhost"));
    assert!(mails[0].data.is_ascii(), "subject and body are encoded, the message is 7-bit");
}

#[tokio::test]
async fn the_personal_message_id_arrives_unchanged() {
    let server = SmtpServer::start().await;
    let mailer = mailer_for(&server);

    assert_eq!(mailer.send(&email("hanako@example.jp", 7)).await, SendOutcome::Delivered);

    let mails = server.wait_for(1).await;
    assert_eq!(parsed(&mails[0].data).message_id(), Some("0190b2c4-msg.0190b2c5-rcp.7@renrakumo"));
}

#[tokio::test]
async fn carrier_addresses_arrive_at_the_right_rcpt_with_a_quoted_local_part() {
    let server = SmtpServer::start().await;
    let mailer = mailer_for(&server);

    for (n, to) in ["taro..papa@docomo.ne.jp", "yumi.@ezweb.ne.jp", "a_b-c.d@softbank.ne.jp"].iter().enumerate() {
        assert_eq!(mailer.send(&email(to, n as u32)).await, SendOutcome::Delivered, "{to}");
    }

    let mails = server.wait_for(3).await;
    let rcpts: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(rcpts, ["\"taro..papa\"@docomo.ne.jp", "\"yumi.\"@ezweb.ne.jp", "a_b-c.d@softbank.ne.jp"]);
    for mail in &mails {
        assert_eq!(mail.to.len(), 1, "one RCPT per message");
    }
    // The To header names the same mailbox the guardian registered.
    let message = parsed(&mails[0].data);
    let to = message.to().and_then(|t| t.first()).and_then(|a| a.address());
    assert_eq!(to, Some("\"taro..papa\"@docomo.ne.jp"));
}

#[tokio::test]
async fn an_internationalised_address_passes_through_with_smtputf8() {
    let server = SmtpServer::start().await;
    let mailer = mailer_for(&server);

    assert_eq!(mailer.send(&email("山田@例え.jp", 1)).await, SendOutcome::Delivered);

    let mails = server.wait_for(1).await;
    assert_eq!(mails[0].to, vec!["山田@例え.jp".to_string()]);
    assert_eq!(parsed(&mails[0].data).subject(), Some(SUBJECT));
}

#[tokio::test]
async fn an_attachment_arrives_as_a_mime_part_with_its_name_and_bytes() {
    let server = SmtpServer::start().await;
    let mailer = mailer_for(&server);
    let pdf: Vec<u8> =
        b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj <<>> endobj\n\x00\x01\x02\xFF\n.\r\n.leading dot\r\n%%EOF\n".to_vec();
    let mut message = email("hanako@example.jp", 1);
    message.attachments = vec![
        Attachment {
            filename: "お便り_10月号.pdf".into(), content_type: "application/pdf".into(), bytes: pdf.clone()
        },
        Attachment { filename: "map.txt".into(), content_type: "not a type".into(), bytes: b"line\n".to_vec() },
    ];

    assert_eq!(mailer.send(&message).await, SendOutcome::Delivered);

    let mails = server.wait_for(1).await;
    let received = parsed(&mails[0].data);
    assert_eq!(received.subject(), Some(SUBJECT));
    assert_eq!(received.body_text(0).unwrap().replace("\r\n", "\n"), BODY);
    assert_eq!(received.attachment_count(), 2);
    let first = received.attachment(0).unwrap();
    assert_eq!(first.attachment_name(), Some("お便り_10月号.pdf"));
    assert_eq!(first.content_type().map(|c| (c.ctype(), c.subtype())), Some(("application", Some("pdf"))));
    assert_eq!(first.contents(), pdf.as_slice());
    // An unusable content type falls back to octet-stream instead of failing the send.
    let second = received.attachment(1).unwrap();
    assert_eq!(second.attachment_name(), Some("map.txt"));
    assert_eq!(second.content_type().and_then(|c| c.subtype()), Some("octet-stream"));
    assert_eq!(second.contents(), b"line\n");
}

#[tokio::test]
async fn a_550_for_the_recipient_is_a_rejection_and_the_connection_is_kept() {
    let server = SmtpServer::start().await;
    server.reject("\"taro..papa\"@docomo.ne.jp", 550);
    let mailer = mailer_for(&server);

    let outcome = mailer.send(&email("taro..papa@docomo.ne.jp", 1)).await;
    let next = mailer.send(&email("hanako@example.jp", 2)).await;

    let SendOutcome::Rejected(reply) = outcome else { panic!("expected a rejection, got {outcome:?}") };
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
    assert_eq!(next, SendOutcome::Delivered);
    assert_eq!(server.wait_for(1).await.len(), 1);
    assert_eq!(server.connections(), 1, "RSET, not a reconnect, after a refused recipient");
}

#[tokio::test]
async fn mail_rcpt_and_data_are_pipelined_when_offered_and_refusals_keep_the_session_in_step() {
    for pipelining in [true, false] {
        let server = SmtpServer::start().await;
        if !pipelining {
            server.without_pipelining();
        }
        server.reject("refused@example.jp", 550);
        server.defer("later@example.jp", 451);
        server.reject_data("content@example.jp", 554);
        let mailer = mailer_for(&server);

        let mut outcomes = Vec::new();
        for (n, to) in
            ["first@example.jp", "refused@example.jp", "later@example.jp", "content@example.jp", "last@example.jp"]
                .into_iter()
                .enumerate()
        {
            outcomes.push(mailer.send(&email(to, n as u32)).await);
        }

        assert_eq!(outcomes[0], SendOutcome::Delivered);
        assert!(matches!(&outcomes[1], SendOutcome::Rejected(r) if r.starts_with("550 ")), "{:?}", outcomes[1]);
        assert!(matches!(&outcomes[2], SendOutcome::Transient(r) if r.starts_with("451 ")), "{:?}", outcomes[2]);
        assert!(matches!(&outcomes[3], SendOutcome::Rejected(r) if r.starts_with("554 ")), "{:?}", outcomes[3]);
        assert_eq!(outcomes[4], SendOutcome::Delivered, "the session is still in step after the refusals");
        let received = server.wait_for(2).await;
        let to: Vec<&str> = received.iter().map(|m| m.to[0].as_str()).collect();
        assert_eq!(to, ["first@example.jp", "last@example.jp"]);
        assert!(received.iter().all(|m| m.pipelined == pipelining), "pipelined only when offered ({pipelining})");
        assert_eq!(server.connections(), 1, "one session throughout (pipelining {pipelining})");
    }
}

#[tokio::test]
async fn a_451_for_the_recipient_is_transient() {
    let server = SmtpServer::start().await;
    server.defer("hanako@example.jp", 451);
    let mailer = mailer_for(&server);

    let outcome = mailer.send(&email("hanako@example.jp", 1)).await;

    let SendOutcome::Transient(reply) = outcome else { panic!("expected transient, got {outcome:?}") };
    assert!(reply.starts_with("451 "), "{reply}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_5xx_after_the_data_is_a_rejection() {
    let server = SmtpServer::start().await;
    server.reject_data("hanako@example.jp", 554);
    let mailer = mailer_for(&server);

    let outcome = mailer.send(&email("hanako@example.jp", 1)).await;

    assert!(matches!(&outcome, SendOutcome::Rejected(reply) if reply.starts_with("554 ")), "{outcome:?}");
    assert_eq!(mailer.send(&email("jiro@example.jp", 2)).await, SendOutcome::Delivered);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_closed_port_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = url::Url::parse(&format!("smtp://127.0.0.1:{port}")).unwrap();
    let mailer = Mailer::from_config(&config(Some(url))).unwrap();

    let outcome = mailer.send(&email("hanako@example.jp", 1)).await;

    assert!(matches!(outcome, SendOutcome::Transient(_)), "{outcome:?}");
}

#[tokio::test]
async fn concurrent_sends_share_a_bounded_set_of_connections() {
    let server = SmtpServer::start().await;
    let mailer = Arc::new(mailer_for(&server).with_max_connections(4));

    let mut sends = tokio::task::JoinSet::new();
    for n in 0..40 {
        let mailer = Arc::clone(&mailer);
        sends.spawn(async move { mailer.send(&email(&format!("guardian{n}@example.jp"), n)).await });
    }
    while let Some(outcome) = sends.join_next().await {
        assert_eq!(outcome.unwrap(), SendOutcome::Delivered);
    }

    let mails = server.wait_for(40).await;
    assert_eq!(mails.len(), 40);
    assert!(server.connections() <= 4, "{} connections for 40 messages", server.connections());
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_a_failure() {
    let server = SmtpServer::start().await;
    let mailer = mailer_for(&server);
    assert_eq!(mailer.send(&email("hanako@example.jp", 1)).await, SendOutcome::Delivered);

    server.disconnect_all().await;
    let outcome = mailer.send(&email("hanako@example.jp", 2)).await;

    assert_eq!(outcome, SendOutcome::Delivered);
    assert_eq!(server.wait_for(2).await.len(), 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn credentials_in_the_url_log_in_with_auth() {
    let server = SmtpServer::start().await;
    server.require_auth("mailer@example.jp", "p@ss+word");
    let mut url = server.url();
    url.set_username("mailer%40example.jp").unwrap();
    url.set_password(Some("p%40ss%2Bword")).unwrap();
    let mailer = Mailer::from_config(&config(Some(url.clone()))).unwrap();

    assert_eq!(mailer.send(&email("hanako@example.jp", 1)).await, SendOutcome::Delivered);

    url.set_password(Some("wrong")).unwrap();
    let wrong = Mailer::from_config(&config(Some(url))).unwrap();
    let outcome = wrong.send(&email("hanako@example.jp", 2)).await;
    assert!(matches!(&outcome, SendOutcome::Transient(reply) if reply.starts_with("535")), "{outcome:?}");
    assert_eq!(server.received().len(), 1);
}

/// A carrier throttles bursts: however many tasks share the instance's mailer, at most four
/// messages go to one carrier domain at once, while other domains get their own, larger
/// bound.
#[tokio::test]
async fn sends_to_one_carrier_domain_are_bounded_across_every_caller() {
    let server = SmtpServer::start().await;
    server.slow_down(std::time::Duration::from_millis(40));
    let mailer = Arc::new(mailer_for(&server));
    let sends = (0..32).map(|n| {
        let mailer = Arc::clone(&mailer);
        let to = if n % 2 == 0 { format!("g{n}@docomo.ne.jp") } else { format!("g{n}@example.jp") };
        // Each send from its own task, as the delivery workers of an instance do.
        tokio::spawn(async move { mailer.send(&email(&to, n)).await })
    });
    for outcome in futures_util::future::join_all(sends).await {
        assert_eq!(outcome.unwrap(), SendOutcome::Delivered);
    }
    assert_eq!(server.most_at_once("docomo.ne.jp"), 4, "the carrier bound, reached and held");
    assert!(server.most_at_once("example.jp") > 4, "other domains are not held to it");
}

/// `config` for a TLS server, trusting the test CA as RENRAKUMO_SMTP_CA_FILE would.
fn tls_config(server: &SmtpServer, trust_test_ca: bool) -> Config {
    let mut config = config(Some(server.url()));
    if trust_test_ca {
        let pem = crate::push_servers::test_ca().ca_pem.as_bytes();
        config.smtp_roots = renrakumo::delivery::tls::pem_certificates(pem).unwrap();
    }
    config
}

#[tokio::test]
async fn starttls_upgrades_before_auth_and_the_message_arrives() {
    let server = SmtpServer::start_with(TlsOffer::StartTls).await;
    server.require_auth("mailer@example.jp", "secret");
    let mut config = tls_config(&server, true);
    let mut url = server.url();
    url.set_username("mailer%40example.jp").unwrap();
    url.set_password(Some("secret")).unwrap();
    config.smtp_url = Some(url);
    let mailer = Mailer::from_config(&config).unwrap();

    assert_eq!(mailer.send(&email("hanako@example.jp", 1)).await, SendOutcome::Delivered);
    let mails = server.wait_for(1).await;
    assert!(mails[0].secured, "sent after the upgrade");
    assert_eq!(parsed(&mails[0].data).subject(), Some(SUBJECT));
}

#[tokio::test]
async fn implicit_tls_delivers_and_the_connection_is_reused() {
    let server = SmtpServer::start_with(TlsOffer::Implicit).await;
    let mailer = Mailer::from_config(&tls_config(&server, true)).unwrap();

    for n in 1..=3 {
        assert_eq!(mailer.send(&email("hanako@example.jp", n)).await, SendOutcome::Delivered);
    }
    let mails = server.wait_for(3).await;
    assert!(mails.iter().all(|m| m.secured));
    assert_eq!(server.connections(), 1, "one TLS handshake for the three messages");
}

#[tokio::test]
async fn a_relay_certificate_nobody_vouches_for_is_refused_and_retried_later() {
    for tls in [TlsOffer::StartTls, TlsOffer::Implicit] {
        let server = SmtpServer::start_with(tls).await;
        let mailer = Mailer::from_config(&tls_config(&server, false)).unwrap();

        let outcome = mailer.send(&email("hanako@example.jp", 1)).await;

        assert!(matches!(&outcome, SendOutcome::Transient(reason) if reason.contains("TLS")), "{tls:?}: {outcome:?}");
        assert!(server.received().is_empty(), "{tls:?}: nothing goes over an unverified connection");
    }
}

#[tokio::test]
async fn without_an_smtp_url_each_message_becomes_an_eml_file_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox").join("not-yet-created");
    let mut config = config(None);
    config.outbox_dir = outbox.clone();
    let mailer = Mailer::from_config(&config).unwrap();

    for (n, to) in ["taro..papa@docomo.ne.jp", "hanako@example.jp", "山田@例え.jp"].iter().enumerate() {
        assert_eq!(mailer.send(&email(to, n as u32)).await, SendOutcome::Delivered);
    }
    // At-least-once: the same message again overwrites its own file.
    assert_eq!(mailer.send(&email("hanako@example.jp", 1)).await, SendOutcome::Delivered);

    let mut files: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "0190b2c4-msg.0190b2c5-rcp.0_renrakumo.eml",
            "0190b2c4-msg.0190b2c5-rcp.1_renrakumo.eml",
            "0190b2c4-msg.0190b2c5-rcp.2_renrakumo.eml",
        ]
    );
    for (n, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).unwrap();
        let message = parsed(&bytes);
        assert_eq!(message.subject(), Some(SUBJECT));
        assert_eq!(message.body_text(0).unwrap().replace("\r\n", "\n"), BODY);
        assert_eq!(message.message_id(), Some(format!("0190b2c4-msg.0190b2c5-rcp.{n}@renrakumo").as_str()));
    }
}
