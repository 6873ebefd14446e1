//! The embedded store's one writer thread, with group commit: every write queued while a
//! commit syncs to disk rides the next commit, so writers side by side share one fsync
//! instead of queueing for one each. A write is answered only once its commit is durable.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use redb::{Database, WriteTransaction};

use super::{KvError, unavailable};

/// Tells a write's caller how it ended, once its commit's fate is known.
pub(super) type Answer = Box<dyn FnOnce(Result<(), KvError>) + Send>;

/// A write: applied to the batch's transaction (or told that none could begin), it returns
/// what to tell its caller after the commit.
pub(super) type Job = Box<dyn FnOnce(Result<&WriteTransaction, KvError>) -> Answer + Send>;

/// Most writes in one commit: bounds how long the first of them waits.
const MAX_BATCH: usize = 512;

/// The writer thread and its queue; dropping it finishes the queued writes and joins it.
pub(super) struct Writer {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer of `db`.
    pub(super) fn start(db: Arc<Database>) -> Result<Self, KvError> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kv-writer".into())
            .spawn(move || run(&db, &queue))
            .map_err(|e| KvError::Unavailable(format!("cannot start the store's writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues a write for the next commit.
    pub(super) fn submit(&self, job: Job) -> Result<(), KvError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| KvError::Unavailable("the store's writer has stopped".into()))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The thread ends once the queue is closed and drained; joined so the database file
        // is closed when the store is gone (it may be opened again at once).
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Commits batches until the queue closes.
fn run(db: &Database, queue: &Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let batch: Vec<Job> = std::iter::once(first)
            .chain(queue.try_iter().take(MAX_BATCH - 1))
            .collect();
        match db.begin_write() {
            Ok(tx) => {
                let answers: Vec<Answer> = batch.into_iter().map(|job| job(Ok(&tx))).collect();
                let committed = tx.commit().map_err(unavailable);
                for answer in answers {
                    answer(committed.clone());
                }
            }
            Err(e) => {
                let failed = unavailable(e);
                for job in batch {
                    job(Err(failed.clone()))(Err(failed.clone()));
                }
            }
        }
    }
}
