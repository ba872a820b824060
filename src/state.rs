use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::db::ack_writer::AckWriter;
use crate::delivery::PushClients;
use crate::delivery::email::Mailer;

/// What every request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// What is due when: retries, leases, scheduled sends, reminders.
    pub clock: Clock,
    /// Acknowledgements (personal link, its page, the app), written in batches.
    pub acks: AckWriter,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub mailer: Arc<Mailer>,
    pub push: Arc<PushClients>,
}
