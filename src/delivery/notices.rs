//! Mail to a message's sender: the copy they asked for when it goes out, and the summary
//! once every job has an outcome. Best effort: a notice that fails is logged, and delivery
//! to the guardians is not held up by it.

use crate::db::repositories::{messages, tallies, users};
use crate::delivery::compose;
use crate::domain::EmailAddress;
use crate::domain::message::Message;
use crate::state::AppState;

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
