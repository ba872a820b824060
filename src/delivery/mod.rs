//! Delivery, top to bottom: a send (or a resend, a reminder, a scheduled message coming
//! due) queues one job per recipient address and device (`queue`, `scheduler`); workers
//! claim jobs in batches (`worker`), compose each message's text once (`compose`), hand
//! every job to its channel (`email`, `apns`, `fcm`), and record the outcomes (`queue`);
//! senders hear how it went (`notices`).
//!
//! Each channel answers with an outcome the engine can act on without knowing the
//! protocol: delivered, try again later, or give up on this address.

pub mod apns;
pub mod compose;
pub mod email;
pub mod fcm;
pub mod notices;
pub mod push;
pub mod queue;
pub mod scheduler;
pub mod tls;
pub mod worker;

pub use email::{Attachment, Mailer, OutgoingEmail, SendOutcome};

/// The push clients of this instance; a platform without configuration has none, and its
/// jobs are recorded as skipped with the reason.
#[derive(Default)]
pub struct PushClients {
    pub apns: Option<apns::ApnsClient>,
    pub fcm: Option<fcm::FcmClient>,
}

impl PushClients {
    /// The clients `config` asks for; their credentials age by `clock`.
    pub fn from_config(config: &crate::config::Config, clock: &crate::clock::Clock) -> anyhow::Result<PushClients> {
        let options = push::ClientOptions { clock: clock.clone(), ..Default::default() };
        Ok(PushClients {
            apns: config
                .apns
                .as_ref()
                .map(|apns| apns::ApnsClient::with_options(apns, &config.apns_url, &options))
                .transpose()?,
            fcm: config
                .fcm_credentials
                .as_ref()
                .map(|path| fcm::FcmClient::with_options(path, &config.fcm_url, &options))
                .transpose()?,
        })
    }
}
