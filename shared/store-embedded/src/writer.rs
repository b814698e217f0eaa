//! The single writer thread and its group commit.
//!
//! Every write of the process goes through one thread owning the write connection. It
//! takes all the jobs queued while the previous commit was syncing (up to `MAX_BATCH`),
//! runs each inside its own SAVEPOINT (so a failed condition or any error undoes that job
//! alone), commits once and only then answers the callers: a caller's `Ok` means the
//! write is in a synced WAL frame. One fsync then pays for a whole batch, which is where
//! the throughput comes from; a single writer also means no lock contention between our
//! own connections. Other processes serialize with us through SQLite's file lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::anyhow;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use zerodb_domain::store::StoreError;

use crate::conn::is_busy;

/// Most jobs in one transaction: enough to amortize the fsync, small enough that one
/// batch does not hold the file lock long against other processes.
const MAX_BATCH: usize = 256;
/// Jobs queued before callers wait (backpressure instead of unbounded memory).
const QUEUE_DEPTH: usize = 4096;
/// `BEGIN IMMEDIATE` attempts, each waiting up to the busy timeout for another process.
const BEGIN_ATTEMPTS: u32 = 3;

/// One unit of work for the writer thread.
trait Job: Send {
    /// Runs inside a savepoint; returns whether its changes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch is committed (`Ok`) or lost (`Err`).
    fn reply(self: Box<Self>, batch: Result<(), &BatchFailure>);
}

/// Why a whole batch (or the part of it run so far) did not commit.
#[derive(Debug)]
enum BatchFailure {
    /// Another process held the write lock past every retry.
    Busy,
    Failed(String),
}

impl BatchFailure {
    fn from_sqlite(e: &rusqlite::Error) -> Self {
        if is_busy(e) {
            BatchFailure::Busy
        } else {
            BatchFailure::Failed(e.to_string())
        }
    }

    fn to_error(&self) -> StoreError {
        match self {
            BatchFailure::Busy => StoreError::Throttled,
            BatchFailure::Failed(msg) => StoreError::Backend(anyhow!("write not committed: {msg}")),
        }
    }
}

struct Call<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Call<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn reply(self: Box<Self>, batch: Result<(), &BatchFailure>) {
        let result = match (self.result, batch) {
            // A job that failed wrote nothing, so its own error stays true whatever
            // happened to the batch.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)) | None, Err(f)) => Err(f.to_error()),
            (None, Ok(())) => Err(StoreError::Backend(anyhow!("write job panicked"))),
        };
        // The caller may have gone away (its future dropped); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// The handle callers use; dropping the last one lets the thread finish its queue and stop.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn start(conn: Connection) -> anyhow::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("zerodb-sqlite-writer".into())
            .spawn(move || run(conn, rx))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the writer thread inside the next group commit; resolves once the
    /// transaction holding its changes is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let stopped = || StoreError::Backend(anyhow!("the storage writer has stopped"));
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Box::new(Call {
            work: Some(f),
            result: None,
            reply,
        }))
        .await
        .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite writer thread panicked");
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut batch);
    }
    tracing::debug!("sqlite writer stopping");
}

fn begin(conn: &Connection) -> Result<(), BatchFailure> {
    let mut attempt = 1;
    loop {
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => return Ok(()),
            Err(e) if is_busy(&e) && attempt < BEGIN_ATTEMPTS => {
                tracing::warn!(
                    attempt,
                    "database write lock still held by another connection, retrying"
                );
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not start a write transaction");
                return Err(BatchFailure::from_sqlite(&e));
            }
        }
    }
}

/// Runs one job in a savepoint; returns whether its changes remain in the transaction.
fn run_in_savepoint(conn: &Connection, job: &mut Box<dyn Job>) -> bool {
    if let Err(e) = conn
        .prepare_cached("SAVEPOINT job")
        .and_then(|mut s| s.execute([]))
    {
        tracing::error!(error = %e, "could not open a savepoint");
        return false;
    }
    // A panicking job must not take the writer (and every later write) down with it.
    let keep = catch_unwind(AssertUnwindSafe(|| job.run(conn))).unwrap_or_else(|_| {
        tracing::error!("write job panicked; its changes are rolled back");
        false
    });
    if conn.is_autocommit() {
        // SQLite already rolled the whole transaction back (I/O error, disk full).
        return false;
    }
    if keep {
        match conn
            .prepare_cached("RELEASE job")
            .and_then(|mut s| s.execute([]))
        {
            Ok(_) => return true,
            Err(e) => tracing::error!(error = %e, "could not release a savepoint"),
        }
    }
    let undo = conn
        .prepare_cached("ROLLBACK TO job")
        .and_then(|mut s| s.execute([]))
        .and_then(|_| {
            conn.prepare_cached("RELEASE job")
                .and_then(|mut s| s.execute([]))
        });
    if let Err(e) = undo {
        tracing::error!(error = %e, "could not roll back a savepoint");
    }
    false
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn Job>>) {
    let started = Instant::now();
    let size = batch.len();
    // Jobs whose changes are in the open transaction, answered at its commit.
    let mut pending: Vec<Box<dyn Job>> = Vec::with_capacity(size);
    let mut jobs = batch.drain(..);
    while let Some(mut job) = jobs.next() {
        if conn.is_autocommit()
            && let Err(f) = begin(conn)
        {
            // The lock stayed out of reach for every retry; waiting again for each
            // remaining job would only delay their answer.
            job.reply(Err(&f));
            for job in jobs.by_ref() {
                job.reply(Err(&f));
            }
            break;
        }
        run_in_savepoint(conn, &mut job);
        if conn.is_autocommit() {
            // The transaction was lost under us: everything run so far in it is gone.
            let f = BatchFailure::Failed("the transaction was rolled back by SQLite".into());
            tracing::error!("write transaction rolled back by SQLite mid-batch");
            for done in pending.drain(..) {
                done.reply(Err(&f));
            }
            job.reply(Err(&f));
            continue;
        }
        pending.push(job);
    }
    if pending.is_empty() {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return;
    }
    let committed = conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]));
    let outcome = match committed {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(BatchFailure::from_sqlite(&e))
        }
    };
    tracing::trace!(
        jobs = size,
        elapsed_us = started.elapsed().as_micros() as u64,
        "group commit"
    );
    for job in pending {
        job.reply(outcome.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<T: Send + 'static>(
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<T, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        (
            Box::new(Call {
                work: Some(f),
                result: None,
                reply,
            }),
            answer,
        )
    }

    fn insert(conn: &Connection, v: i64) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [v])
            .map_err(crate::conn::backend)?;
        Ok(())
    }

    #[test]
    fn a_failed_job_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(v INTEGER)").unwrap();
        let (a, ra) = job(|c| insert(c, 1));
        // Writes, then fails: its write must not survive.
        let (b, rb) = job(|c| {
            insert(c, 2)?;
            Err::<(), _>(StoreError::Conflict)
        });
        let (p, rp) = job(|c| -> Result<(), StoreError> {
            insert(c, 3)?;
            panic!("a bug in a job")
        });
        let (d, rd) = job(|c| insert(c, 4).map(|()| "done"));
        let mut batch = vec![a, b, p, d];
        commit_batch(&conn, &mut batch);
        assert!(conn.is_autocommit(), "the batch transaction is closed");
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            rb.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
        assert!(matches!(
            rp.blocking_recv().unwrap(),
            Err(StoreError::Backend(_))
        ));
        assert_eq!(rd.blocking_recv().unwrap().unwrap(), "done");
        let rows: Vec<i64> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, vec![1, 4]);
    }

    #[test]
    fn a_batch_whose_jobs_all_fail_leaves_no_transaction_open() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(v INTEGER)").unwrap();
        let (a, ra) = job(|_| Err::<(), _>(StoreError::Conflict));
        commit_batch(&conn, &mut vec![a]);
        assert!(conn.is_autocommit());
        assert!(matches!(
            ra.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
    }
}
