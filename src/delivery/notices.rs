//! Mail renrakumo sends of its own accord: to a message's sender, the copy they asked for
//! when it goes out and the summary once every job has an outcome; to a guardian, word that
//! an app signed in as them. Best effort: a notice that fails is logged, and nothing waits
//! for it.

use crate::db::new_id;
use crate::db::repositories::{messages, tallies, users};
use crate::delivery::compose;
use crate::domain::EmailAddress;
use crate::domain::message::Message;
use crate::state::AppState;

/// Tells a guardian, at each of their confirmed addresses, that an app has just signed in
/// as them: an invitation code is in staff's hands too, so a sign-in the guardian did not
/// make must not go unnoticed.
pub async fn app_signed_in(state: &AppState, org_name: &str, guardian_name: &str, to: &[EmailAddress]) {
    let at = chrono::DateTime::from_timestamp_millis(state.clock.now_ms()).unwrap_or_default();
    for address in to {
        let email = compose::app_signed_in(org_name, guardian_name, at, address.clone(), &new_id());
        let outcome = state.mailer.send(&email).await;
        tracing::info!(outcome = outcome.kind(), "sign-in notice sent to a guardian");
    }
}

/// The staff user who composed the message, when there is one with a usable address.
async fn sender_address(state: &AppState, message: &Message) -> Option<EmailAddress> {
    let user_id = message.created_by.as_deref()?;
    let mut conn = state.db.pool.acquire().await.ok()?;
    let user = users::find(&mut conn, &message.org_id, user_id).await.ok()??;
    EmailAddress::parse(&user.email).ok()
}

/// The copy to the sender, when the message asked for one.
pub async fn copy_to_sender(state: &AppState, message: &Message) {
    if !message.content.copy_to_sender {
        return;
    }
    let Some(to) = sender_address(state, message).await else { return };
    let outcome = state.mailer.send(&compose::sender_copy(message, to)).await;
    tracing::info!(message_id = %message.id, outcome = outcome.kind(), "copy to the sender sent");
}

/// Tells the sender how their message went.
pub async fn summary(state: &AppState, message_id: &str) {
    let loaded = async {
        let mut conn = state.db.pool.acquire().await?;
        let Some(message) = messages::find_unscoped(&mut conn, message_id).await? else { return Ok(None) };
        let tallies = tallies::of_message(&mut conn, message_id).await?;
        anyhow::Ok(Some((message, tallies)))
    };
    let (message, tallies) = match loaded.await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(message_id, error = ?error, "the delivery summary could not be prepared");
            return;
        }
    };
    let Some(to) = sender_address(state, &message).await else { return };
    let outcome = state.mailer.send(&compose::summary(&message, &tallies, to)).await;
    tracing::info!(message_id, outcome = outcome.kind(), "delivery summary sent");
}
