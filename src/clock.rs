//! The time that decides when delivery work is due: retries after their backoff, leases,
//! scheduled sends, reminders, and the age of the push services' credentials.
//!
//! Production reads the system clock. Tests move a clock forward instead of sleeping, so
//! "an hour later" takes no time and cannot be flaky.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The system clock, optionally moved forward by a test. Cheap to clone; clones share the
/// offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; only tests move it.
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Epoch milliseconds, the unit every stored time uses.
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset.load(Ordering::Relaxed)
    }

    /// Epoch seconds (JWT `iat` and `exp`).
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves this clock, and every clone of it, forward.
    pub fn advance(&self, by: Duration) {
        self.offset.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clone.now_ms();
        clock.advance(Duration::from_secs(3600));
        let after = clone.now_ms();
        assert!(after - before >= 3_600_000, "{before} → {after}");
        assert!(after - before < 3_660_000, "{before} → {after}");
    }
}
