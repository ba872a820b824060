//! Group commit for acknowledgements. When a whole school acknowledges within minutes, each
//! acknowledgement as its own transaction makes the database's commit (a WAL flush on
//! PostgreSQL) the limit. Requests hand their (message, guardian) pair to a writer task;
//! whatever arrives while a batch is being written goes into the next one, so under load
//! one statement and one commit serve many requests, and a lone request is written at once.
//! A request is answered only after its batch has committed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db::repositories::receipts::{self, RecipientKey, RecipientState};
use crate::db::{Backend, Db, engine};

/// A batch that takes longer is logged: every request in it waited that long.
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(50);

/// Most pairs one statement carries.
const MAX_BATCH: usize = 500;

/// The error is the database's message, shared by every request of a failed batch.
type Reply = oneshot::Sender<Result<Option<RecipientState>, String>>;

struct Pending {
    key: RecipientKey,
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
        // On PostgreSQL one batch may be in the database while the next is formed. SQLite
        // has one writer: a second would only wait for the lock in its busy handler.
        let writers = match db.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        for _ in 0..writers {
            tokio::spawn(write_batches(db.clone(), receiver.clone()));
        }
        AckWriter { sender }
    }

    /// Acknowledges, as `receipts::acknowledge` does, once the batch holding it has committed.
    pub async fn acknowledge(&self, message_id: &str, member_id: &str) -> anyhow::Result<Option<RecipientState>> {
        let (reply, answer) = oneshot::channel();
        let key = RecipientKey { message_id: message_id.to_string(), member_id: member_id.to_string() };
        let pending = Pending { key, reply };
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
        let started = std::time::Instant::now();
        let result = write(&db, &batch).await;
        if started.elapsed() > SLOW_BATCH {
            tracing::warn!(
                pairs = batch.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "slow acknowledgement batch"
            );
        }
        for pending in batch.drain(..) {
            let answer = match &result {
                Ok(states) => Ok(states.get(&pending.key).cloned()),
                Err(error) => Err(error.clone()),
            };
            // The request may have gone away (client closed); its acknowledgement stands.
            let _ = pending.reply.send(answer);
        }
    }
}

async fn write(db: &Db, batch: &[Pending]) -> Result<HashMap<RecipientKey, RecipientState>, String> {
    let keys: Vec<&RecipientKey> = batch.iter().map(|p| &p.key).collect();
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    if engine(&tx) == Backend::Postgres {
        // The durability SQLite has here (WAL with synchronous = NORMAL): committed work
        // survives a crash of any process; only a power or OS failure can take back the last
        // fraction of a second, and such a guardian is simply shown as not yet acknowledged
        // (and reminded). Waiting for the WAL flush instead put the disk's fsync stalls
        // (100–300 ms on the benchmark machine) into every request of the batch.
        sqlx::query("SET LOCAL synchronous_commit TO OFF").execute(&mut *tx).await.map_err(|e| e.to_string())?;
    }
    let states = receipts::acknowledge_many(&mut tx, &keys).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(states)
}
