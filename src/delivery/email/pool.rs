//! The connection pool: a bounded number of open SMTP connections shared by all sends of
//! this instance, reused while they are fresh and clean.
//!
//! Why not lettre's pool: it sends a NOOP on every checkout (a fifth round trip per message)
//! and, sized at the concurrency, still opens new connections.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::Address;
use tokio::sync::Semaphore;

use super::SendOutcome;
use super::smtp::{ConnectionState, Endpoint, SmtpConnection};

/// Connections kept open to the relay. Against smtp-sink on loopback (bench/delivery.sh,
/// 2 cores), 8 connections left the server waiting on round trips with CPU to spare; 16 sent
/// 10-35 % more messages per second, and 32 no more than 16. 16 also stays below the
/// per-client limits relays commonly apply (Postfix's default is 50).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Servers drop idle clients (Postfix after 300 s); an older connection is not reused.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

struct IdleConnection {
    conn: SmtpConnection,
    since: Instant,
}

/// At most `max_connections` connections exist at once (each belongs to a semaphore permit);
/// after a send the connection goes back to `idle` unless something went wrong with it.
pub(super) struct SmtpPool {
    pub(super) endpoint: Endpoint,
    pub(super) max_connections: usize,
    slots: Semaphore,
    idle: Mutex<Vec<IdleConnection>>,
}

impl SmtpPool {
    pub(super) fn new(endpoint: Endpoint, max_connections: usize) -> SmtpPool {
        let max_connections = max_connections.max(1);
        SmtpPool { endpoint, max_connections, slots: Semaphore::new(max_connections), idle: Mutex::new(Vec::new()) }
    }

    fn take_idle(&self) -> Option<SmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Most recently used first; older ones age out instead of being kept warm.
        while let Some(IdleConnection { conn, since }) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: SmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.push(IdleConnection { conn, since: Instant::now() });
    }

    pub(super) async fn send(&self, from: Address, to: Address, bytes: &[u8]) -> SendOutcome {
        // The permit is this send's right to hold a connection; waiting for it is queueing,
        // not a failure, so it has no timeout.
        let _permit = self.slots.acquire().await.expect("the semaphore is never closed");
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => match self.endpoint.connect().await {
                    Ok(conn) => (conn, false),
                    Err(outcome) => return outcome,
                },
            };
            let result = conn.send_message(&from, &to, bytes).await;
            match result.connection {
                // The server closed it while idle (timeout, restart): try the next one.
                ConnectionState::Stale if reused => continue,
                ConnectionState::Reusable => self.put_idle(conn),
                // Dropped here; a timed-out exchange is aborted on the server side.
                ConnectionState::Stale | ConnectionState::Unusable => {}
            }
            return result.outcome;
        }
    }
}
