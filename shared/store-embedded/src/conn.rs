//! SQLite connections: opening and tuning them, the schema, and the pool of readers.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use zerodb_domain::store::StoreError;

use crate::SyncMode;

/// How long SQLite itself waits for another connection's lock (any process) before
/// giving up with SQLITE_BUSY.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items(
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    ttl INTEGER,
    data BLOB NOT NULL,
    PRIMARY KEY(pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items(gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_ttl ON items(ttl) WHERE ttl IS NOT NULL;
CREATE TABLE IF NOT EXISTS blobs(
    key TEXT PRIMARY KEY,
    content_type TEXT,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages(queue, seq);
CREATE INDEX IF NOT EXISTS messages_by_receipt ON messages(receipt) WHERE receipt IS NOT NULL;
-- Vector indexes (vectors.rs): a vector's rowid is its index's id << 40 | a sequence
-- number, so each index's rows are one contiguous range of the table's B-tree.
CREATE TABLE IF NOT EXISTS vector_indexes(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    dimension INTEGER NOT NULL,
    metric TEXT NOT NULL,
    non_filterable TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS vectors(
    id INTEGER PRIMARY KEY,
    idx INTEGER NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    filterable TEXT,
    stored TEXT,
    UNIQUE(idx, key)
);
CREATE TABLE IF NOT EXISTS vector_index_drops(id INTEGER PRIMARY KEY);
PRAGMA user_version = 1;
";

/// Whether an error is another connection holding a lock, which waiting can cure.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Throttled
    } else {
        StoreError::Backend(anyhow!(e))
    }
}

/// Runs setup steps that can meet SQLITE_BUSY without the busy handler being consulted
/// (switching to WAL while another process is doing the same, for one), a few times.
fn retry_busy<T>(what: &str, mut f: impl FnMut() -> rusqlite::Result<T>) -> anyhow::Result<T> {
    let mut attempt = 0u32;
    loop {
        match f() {
            Err(e) if is_busy(&e) && attempt < 50 => {
                attempt += 1;
                tracing::debug!(attempt, what, "database busy during setup, retrying");
                std::thread::sleep(Duration::from_millis(10 * u64::from(attempt.min(10))));
            }
            other => return other.with_context(|| format!("sqlite: {what}")),
        }
    }
}

fn open_one(path: &Path, sync: SyncMode, cache_kib: i64) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = retry_busy("journal_mode", || {
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "{} could not be switched to WAL (journal_mode is {mode})",
            path.display()
        );
    }
    let synchronous = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={synchronous};
         PRAGMA foreign_keys=OFF;
         PRAGMA temp_store=MEMORY;
         PRAGMA cache_size=-{cache_kib};
         PRAGMA journal_size_limit=67108864;"
    ))?;
    Ok(conn)
}

/// The write connection, with the schema in place.
pub(crate) fn open_writer(path: &Path, sync: SyncMode) -> anyhow::Result<Connection> {
    let conn = open_one(path, sync, 32 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    retry_busy("creating schema", || {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        match conn
            .execute_batch(SCHEMA)
            .and_then(|()| conn.execute_batch("COMMIT"))
        {
            Ok(()) => Ok(()),
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    })?;
    Ok(conn)
}

/// A read connection: `query_only` turns a bug that writes outside the writer thread
/// into an error instead of a second writer contending for the lock.
pub(crate) fn open_reader(path: &Path, sync: SyncMode) -> anyhow::Result<Connection> {
    let conn = open_one(path, sync, 16 * 1024)?;
    conn.set_prepared_statement_cache_capacity(128);
    conn.execute_batch("PRAGMA query_only=ON")?;
    Ok(conn)
}

/// Read connections, each used by one blocking task at a time. WAL lets them read while
/// the writer writes, and each statement sees one committed snapshot.
pub(crate) struct ReadPool {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReadPool {
    pub(crate) fn new(conns: Vec<Connection>) -> Self {
        ReadPool {
            conns: conns.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A free connection if there is one, else waits for one picked round-robin.
    fn acquire(&self) -> MutexGuard<'_, Connection> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.conns[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                // A panic while reading leaves the connection itself sound (statements are
                // finalized on unwind), so poisoning is not a reason to stop using it.
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.conns[start % n]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a read connection on tokio's blocking pool.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.acquire();
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Backend(anyhow!("read task failed: {e}")))?
    }
}
