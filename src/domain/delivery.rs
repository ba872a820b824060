//! Delivery jobs: one per recipient address or device, queued by a send, a resend or a
//! reminder, and worked by the delivery engine (`crate::delivery`).

use super::member::Platform;
use super::message::Channel;

/// Where a job is in its life. Stored as a small integer (`delivery_jobs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobStatus {
    /// Waiting for its turn (`run_after`).
    Queued,
    /// Taken by a worker under a lease.
    Claimed,
    Sent,
    /// Given up: a permanent error, or too many transient ones.
    Failed,
    /// The receiving mail server refused the address.
    Bounced,
    /// A dead device token; the device is removed from the roster.
    Invalid,
    /// The channel is not configured on the instance that worked it.
    Skipped,
}

impl JobStatus {
    const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Claimed,
        JobStatus::Sent,
        JobStatus::Failed,
        JobStatus::Bounced,
        JobStatus::Invalid,
        JobStatus::Skipped,
    ];

    /// The stored code (migrations/*/0004_messages.sql).
    pub fn code(self) -> i64 {
        match self {
            JobStatus::Queued => 0,
            JobStatus::Claimed => 1,
            JobStatus::Sent => 2,
            JobStatus::Failed => 3,
            JobStatus::Bounced => 4,
            JobStatus::Invalid => 5,
            JobStatus::Skipped => 6,
        }
    }

    pub fn from_code(code: i64) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|status| status.code() == code)
    }

    /// Waiting or being sent: not yet an outcome.
    pub fn is_pending(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Claimed)
    }
}

/// The address or device one job delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The address as the guardian registered it.
    Email {
        address: String,
    },
    Device {
        platform: Platform,
        token: String,
        device_id: String,
    },
}

impl Destination {
    pub fn channel(&self) -> Channel {
        match self {
            Destination::Email { .. } => Channel::Email,
            Destination::Device { .. } => Channel::Push,
        }
    }
}

/// A job a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub message_id: String,
    pub member_id: String,
    pub destination: Destination,
    /// Including the attempt under way.
    pub attempts: i64,
    /// When it was queued (epoch ms): it gives up `RetryPolicy::max_age` later.
    pub queued_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_code() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(JobStatus::from_code(7), None);
    }
}
