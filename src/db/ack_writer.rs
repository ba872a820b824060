//! Group commit for acknowledgements. When a whole school acknowledges within minutes, each
//! acknowledgement as its own transaction makes the database's commit (a WAL flush on
//! PostgreSQL) the limit. Requests hand their (message, guardian) pair to a writer task;
//! whatever arrives while a batch is being written goes into the next one, so under load
//! one statement and one commit serve many requests, and a lone request is written at once.
//! A request is answered only after its batch has committed: nothing is acknowledged that
//! could still be lost.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db::Db;
use crate::db::repositories::receipts::{self, RecipientState};

/// Most pairs one statement carries.
const MAX_BATCH: usize = 500;
/// Batches written side by side (one may be in the database while the next is formed).
const WRITERS: usize = 2;

/// The error is the database's message, shared by every request of a failed batch.
type Reply = oneshot::Sender<Result<Option<RecipientState>, String>>;

struct Pending {
    message_id: String,
    member_id: String,
    reply: Reply,
}

#[derive(Clone)]
pub struct AckWriter {
    sender: mpsc::UnboundedSender<Pending>,
}

impl AckWriter {
    /// Starts the writer tasks on the current Tokio runtime; they end when every
    /// `AckWriter` clone is dropped.
    pub fn start(db: Db) -> AckWriter {
        let (sender, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(db.clone(), receiver.clone()));
        }
        AckWriter { sender }
    }

    /// Acknowledges, as `receipts::acknowledge` does, once the batch holding it has committed.
    pub async fn acknowledge(&self, message_id: &str, member_id: &str) -> anyhow::Result<Option<RecipientState>> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { message_id: message_id.to_string(), member_id: member_id.to_string(), reply };
        self.sender.send(pending).map_err(|_| anyhow::anyhow!("the acknowledgement writer has stopped"))?;
        let written = answer.await.map_err(|_| anyhow::anyhow!("the acknowledgement writer has stopped"))?;
        written.map_err(|error| anyhow::anyhow!("acknowledgement batch failed: {error}"))
    }
}

async fn write_batches(db: Db, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        let result = write(&db, &batch).await;
        for pending in batch.drain(..) {
            let key = (pending.message_id, pending.member_id);
            let answer = match &result {
                Ok(states) => Ok(states.get(&key).cloned()),
                Err(error) => Err(error.clone()),
            };
            // The request may have gone away (client closed); its acknowledgement stands.
            let _ = pending.reply.send(answer);
        }
    }
}

async fn write(db: &Db, batch: &[Pending]) -> Result<HashMap<(String, String), RecipientState>, String> {
    let pairs: Vec<(&str, &str)> = batch.iter().map(|p| (p.message_id.as_str(), p.member_id.as_str())).collect();
    let mut conn = db.pool.acquire().await.map_err(|e| e.to_string())?;
    receipts::acknowledge_many(&mut conn, &pairs).await.map_err(|e| e.to_string())
}
