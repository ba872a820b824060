//! Throttles against guessing and flooding: sign-in per (address, client), a wrong
//! current password, invitation and join codes, the confirmation mails a
//! guardian can trigger. One design for all of them, kept in the database so that every
//! instance counts the same attempts.
//!
//! Each key (a policy's name and a subject: an address with the client's IP, a client, a
//! session) has a counter. An attempt is counted *before* it is checked, atomically
//! (compare-and-set), so fifty parallel guesses get no more checks than one client
//! guessing in turn. The first `free` attempts of a day go through; from then on each
//! attempt sets a delay before the next one, doubling each time up to `max_delay`
//! (exponential backoff rather than a lock: the owner of an address, from another client,
//! is never affected). A refused attempt is not counted; it answers 429 with
//! `Retry-After`. Counters start again a day after their first attempt once no delay runs.
//!
//! The client is the peer address of the TCP connection: renrakumo has no trusted-proxy
//! setting, and a header such as X-Forwarded-For is whatever the client writes.

use actix_web::HttpRequest;

use crate::db::repositories::throttles::{self, Counter};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const MINUTE_MS: i64 = 60 * 1000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How many attempts a key gets, and the delays after them.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Names the keys of this policy (their prefix).
    pub name: &'static str,
    /// Attempts a day without delay.
    pub free: i64,
    /// The delay the last free attempt sets; each attempt after it doubles it.
    pub first_delay_ms: i64,
    pub max_delay_ms: i64,
}

/// Sign-in: per (address, client). Stops guessing one account's password, without letting
/// anyone delay the owner, who signs in from another client.
pub const SIGN_IN: Policy = Policy { name: "sign-in", free: 5, first_delay_ms: 30 * 1000, max_delay_ms: HOUR_MS };
/// Sign-in: per client, whatever the address. Stops one client from trying a few
/// passwords on many accounts. Successful sign-ins are not counted (a school's staff share
/// one address behind its router).
pub const SIGN_IN_CLIENT: Policy =
    Policy { name: "sign-in-client", free: 20, first_delay_ms: MINUTE_MS, max_delay_ms: HOUR_MS };
/// A wrong `current_password` on the own-password change: per sign-in session, so a
/// stolen access token cannot be used to guess the password.
pub const CURRENT_PASSWORD: Policy =
    Policy { name: "current-password", free: 5, first_delay_ms: 30 * 1000, max_delay_ms: HOUR_MS };
/// Invitation and join codes typed into the app: per client, both kinds together (a
/// guesser gains nothing by alternating). Codes that work are not counted.
pub const GUARDIAN_CODES: Policy =
    Policy { name: "guardian-codes", free: 10, first_delay_ms: MINUTE_MS, max_delay_ms: HOUR_MS };
/// Confirmation mails a guardian's request sends (an address added, a confirmation asked
/// again, a registration with an address): per app session…
pub const CONFIRMATION_MAILS_PER_SESSION: Policy =
    Policy { name: "confirmation-mails-session", free: 5, first_delay_ms: DAY_MS, max_delay_ms: DAY_MS };
/// …and per client, a day each.
pub const CONFIRMATION_MAILS_PER_CLIENT: Policy =
    Policy { name: "confirmation-mails-client", free: 20, first_delay_ms: DAY_MS, max_delay_ms: DAY_MS };

/// The client a throttle counts for: the connection's peer address.
pub fn client(req: &HttpRequest) -> String {
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

impl Policy {
    /// The delay set by the attempt `beyond` attempts after the last free one (0 = it).
    fn delay_ms(&self, beyond: i64) -> i64 {
        let doublings = beyond.clamp(0, 40) as u32;
        self.first_delay_ms.saturating_mul(1i64 << doublings).min(self.max_delay_ms)
    }

    /// The counter after one more attempt at `now`, or the milliseconds to wait.
    fn count(&self, current: Option<Counter>, now: i64) -> Result<Counter, i64> {
        let fresh = Counter { attempts: 0, window_start: now, blocked_until: 0 };
        let counter = match current {
            Some(c) if c.blocked_until > now => return Err(c.blocked_until - now),
            Some(c) if c.window_start + DAY_MS > now => c,
            _ => fresh,
        };
        let attempts = counter.attempts + 1;
        let blocked_until =
            if attempts >= self.free { now + self.delay_ms(attempts - self.free) } else { counter.blocked_until };
        Ok(Counter { attempts, window_start: counter.window_start, blocked_until })
    }
}

/// An attempt counted for a key: what the request does once it knows whether it was a
/// good one.
#[must_use = "a reservation is settled: forgive, refund, or keep it as a failure"]
pub struct Reservation {
    key: String,
    set_blocked_until: i64,
    previous_blocked_until: i64,
}

/// Above this many lost compare-and-sets in a row the attempt is refused (fail closed):
/// only a flood of parallel attempts on one key gets there.
const MAX_RACES: usize = 64;

/// Counts an attempt for `subject` under `policy`, or refuses it (429, `Retry-After`)
/// while the key's delay runs. The connection is given back before this returns.
pub async fn reserve(state: &AppState, policy: &Policy, subject: &str) -> ApiResult<Reservation> {
    let key = format!("{}:{subject}", policy.name);
    let mut conn = state.db.pool.acquire().await?;
    for _ in 0..MAX_RACES {
        let now = state.clock.now_ms();
        let current = throttles::find(&mut conn, &key).await?;
        let next = policy.count(current, now).map_err(too_many)?;
        if throttles::replace(&mut conn, &key, current, next).await? {
            if current.is_none() {
                throttles::prune(&mut conn, now - DAY_MS, now).await?;
            }
            let previous_blocked_until = current.map_or(0, |c| c.blocked_until);
            return Ok(Reservation { key, set_blocked_until: next.blocked_until, previous_blocked_until });
        }
    }
    Err(too_many(1000))
}

fn too_many(wait_ms: i64) -> ApiError {
    ApiError::TooManyRequests { retry_after_secs: (wait_ms.max(1) as u64).div_ceil(1000) }
}

impl Reservation {
    /// A success that clears the key (a correct password for this address from this client).
    pub async fn forgive(self, state: &AppState) -> ApiResult<()> {
        let mut conn = state.db.pool.acquire().await?;
        Ok(throttles::delete(&mut conn, &self.key).await?)
    }

    /// A success that does not count (a code that worked): the attempt is taken back,
    /// with the delay it set.
    pub async fn refund(self, state: &AppState) -> ApiResult<()> {
        let mut conn = state.db.pool.acquire().await?;
        Ok(throttles::refund(&mut conn, &self.key, self.set_blocked_until, self.previous_blocked_until).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_attempts_pass_then_each_sets_a_doubling_delay_up_to_the_maximum() {
        let policy = Policy { name: "t", free: 3, first_delay_ms: 1000, max_delay_ms: 5000 };
        let mut now = 1_000_000;
        let mut counter = None;
        let mut delays = vec![];
        for _ in 0..6 {
            let next = policy.count(counter, now).unwrap();
            delays.push(next.blocked_until.saturating_sub(now).max(0));
            assert_eq!(policy.count(Some(next), now + 1).is_err(), next.blocked_until > now + 1);
            counter = Some(next);
            now = next.blocked_until.max(now) + 1;
        }
        assert_eq!(delays, [0, 0, 1000, 2000, 4000, 5000]);
    }

    #[test]
    fn a_counter_starts_again_a_day_after_its_first_attempt_once_no_delay_runs() {
        let policy = Policy { name: "t", free: 1, first_delay_ms: 1000, max_delay_ms: 1000 };
        let first = policy.count(None, 0).unwrap();
        assert_eq!(policy.count(Some(first), 500), Err(500));
        let later = policy.count(Some(first), DAY_MS).unwrap();
        assert_eq!((later.attempts, later.window_start), (1, DAY_MS));
    }
}
