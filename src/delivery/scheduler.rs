//! What becomes due with time: scheduled messages (予約配信) whose `send_at` has come, and
//! the one reminder of answer-required messages that asked for it. Every worker round asks;
//! on PostgreSQL, instances take due messages without waiting on each other (row locks with
//! SKIP LOCKED), and a reminder is claimed by exactly one of them.

use crate::db::repositories::messages;
use crate::delivery::queue;
use crate::domain::message::FollowUp;
use crate::state::AppState;

/// Starts every scheduled message that is due and queues every reminder that is due;
/// returns how many of either.
pub async fn run_due(state: &AppState) -> anyhow::Result<usize> {
    Ok(start_due_messages(state).await? + queue_due_reminders(state).await?)
}

async fn start_due_messages(state: &AppState) -> anyhow::Result<usize> {
    let mut started = 0;
    loop {
        let mut tx = state.db.begin().await?;
        let Some(id) = messages::take_due_scheduled(&mut tx, state.clock.now_ms()).await? else { break };
        let message =
            messages::find_unscoped(&mut tx, &id).await?.ok_or_else(|| anyhow::anyhow!("message {id} vanished"))?;
        let recipients = queue::send(state, tx, &message).await?;
        tracing::info!(message_id = %id, recipients, "scheduled message started");
        started += 1;
    }
    Ok(started)
}

/// One reminder per answer-required message that asked for it, to those who have not
/// acknowledged by then.
async fn queue_due_reminders(state: &AppState) -> anyhow::Result<usize> {
    let due = {
        let mut conn = state.db.pool.acquire().await?;
        messages::due_reminders(&mut conn, state.clock.now_ms()).await?
    };
    let mut queued = 0;
    for id in due {
        let mut tx = state.db.begin().await?;
        if !messages::claim_reminder(&mut tx, &id, state.clock.now_ms()).await? {
            continue;
        }
        let Some(message) = messages::find_unscoped(&mut tx, &id).await? else { continue };
        let guardians = queue::follow_up(&mut tx, state, &message, FollowUp::Unacknowledged).await?;
        tx.commit().await?;
        tracing::info!(message_id = %id, guardians, "reminder queued");
        queued += 1;
    }
    Ok(queued)
}
