//! Delivery: the queue in the database, the workers that drain it, and the channels
//! through which one job (one recipient address or device) leaves the building.
//!
//! Each channel answers with an outcome the engine can act on without knowing the
//! protocol: delivered, try again later, or give up on this address.

pub mod apns;
pub mod email;
pub mod fcm;
pub mod push;
pub mod queue;
pub mod worker;

pub use email::{Attachment, Mailer, OutgoingEmail, SendOutcome};
