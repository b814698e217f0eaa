//! The embedded storage adapter: ZeroDB's `Table`, `Blobs` and `Queue` ports over one
//! SQLite database file, for running the whole API as a single local process.
//!
//! Why SQLite:
//! - several processes may use one data directory at once (the operator CLI creates
//!   accounts while the server runs); SQLite's file locking coordinates them, so nothing
//!   here takes a lock of its own beyond the database's;
//! - WAL with `synchronous=FULL` makes every acknowledged write durable: it survives a
//!   `kill -9` or a power cut, and readers never block the writer;
//! - everything lives in one file (`zerodb.sqlite3`), easy to back up or move;
//! - one writer thread commits all queued writes in one transaction (group commit), so
//!   one fsync is shared by up to a few hundred writes and throughput does not collapse
//!   to one write per disk sync.
//!
//! Reads run on a small pool of connections on tokio's blocking threads; writes go
//! through the writer thread (see `writer`).

mod blobs;
mod codec;
mod conn;
mod queue;
mod table;
mod vectors;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use zerodb_domain::store::{Blobs, Queue, Queues, StoreError, Stores, Table};

pub use blobs::EmbeddedBlobs;
pub use queue::{EmbeddedQueue, QueueConfig};
pub use table::{EmbeddedTable, MAX_PAGE_ITEMS};
pub use vectors::EmbeddedVectors;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "zerodb.sqlite3";

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Each commit is synced: acknowledged writes survive a crash or power loss.
    #[default]
    Full,
    /// Syncs at checkpoints only: acknowledged writes survive a crash of the process but
    /// the last ones may be lost to a power cut. Faster; for tests and throwaway data.
    Normal,
}

/// Settings for [`EmbeddedStore::open_with`].
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub sync: SyncMode,
    /// Read connections in the pool (at least one).
    pub readers: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sync: SyncMode::Full,
            readers: 4,
        }
    }
}

/// What every port handle shares: the writer and the readers of one database.
pub(crate) struct Inner {
    pub(crate) writer: writer::Writer,
    pub(crate) readers: Arc<conn::ReadPool>,
    /// The vector indexes loaded in memory, shared by every `vectors()` handle.
    pub(crate) vectors: vectors::Cache,
}

/// Creates `dir` (and any missing parents) readable by its owner only (0700 on Unix): it
/// holds every tenant's data and the process's secrets. A directory that exists is left
/// as it is (it may be one the operator chose and shares on purpose), with a warning
/// when others can read it.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory is readable by other users; chmod 700 it");
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))
}

/// Creates the database file 0600 before SQLite opens it, or makes an existing one
/// 0600: SQLite creates its file with the process's umask (often 0644), and gives its
/// `-wal` and `-shm` files the database file's mode, so this covers all three.
fn create_private_file(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private (0600)", path.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating {}", path.display()));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// One embedded database; hands out the port implementations over it.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database in `dir`, with every commit synced.
    pub fn open(dir: &Path) -> anyhow::Result<Arc<EmbeddedStore>> {
        Self::open_with(dir, OpenOptions::default())
    }

    pub fn open_with(dir: &Path, options: OpenOptions) -> anyhow::Result<Arc<EmbeddedStore>> {
        create_private_dir(dir)?;
        let path = dir.join(DB_FILE);
        create_private_file(&path)?;
        // The writer first: it creates the file, switches it to WAL and lays the schema.
        let writer_conn = conn::open_writer(&path, options.sync)?;
        let readers = (0..options.readers.max(1))
            .map(|_| conn::open_reader(&path, options.sync))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let writer = writer::Writer::start(writer_conn)?;
        tracing::info!(path = %path.display(), sync = ?options.sync, readers = readers.len(), "embedded store open");
        let inner = Inner {
            writer,
            readers: Arc::new(conn::ReadPool::new(readers)),
            vectors: vectors::Cache::default(),
        };
        Ok(Arc::new(EmbeddedStore {
            inner: Arc::new(inner),
            path,
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn table(&self) -> Arc<dyn Table> {
        self.embedded_table()
    }

    /// The table as its concrete type, for `sweep_expired`.
    pub fn embedded_table(&self) -> Arc<EmbeddedTable> {
        Arc::new(EmbeddedTable {
            inner: Arc::clone(&self.inner),
        })
    }

    pub fn blobs(&self) -> Arc<dyn Blobs> {
        Arc::new(EmbeddedBlobs {
            inner: Arc::clone(&self.inner),
        })
    }

    /// The vector indexes of this database.
    pub fn vectors(&self) -> Arc<dyn zerodb_domain::vectors::Vectors> {
        Arc::new(EmbeddedVectors {
            inner: Arc::clone(&self.inner),
        })
    }

    /// The queue called `name`; queues need no creation, and `config.dead_letter` names
    /// another queue of this store.
    pub fn queue(&self, name: &str, config: QueueConfig) -> Arc<dyn Queue> {
        Arc::new(EmbeddedQueue {
            inner: Arc::clone(&self.inner),
            name: Arc::from(name),
            config,
        })
    }

    /// Every queue of the deployment, each dead-lettering as its spec says (into
    /// `<id>-dlq` of this store).
    pub fn queues(&self) -> Queues {
        Queues::new(|spec| {
            self.queue(
                spec.id,
                QueueConfig {
                    max_receives: Some(spec.max_receives),
                    dead_letter: Some(spec.dead_letter_id()),
                },
            )
        })
    }

    /// The stores of a deployment on this database.
    pub fn stores(&self) -> Stores {
        Stores {
            table: self.table(),
            blobs: self.blobs(),
            queues: self.queues(),
            vectors: self.vectors(),
        }
    }

    /// Deletes expired items in bounded batches, as DynamoDB's TTL does in the background;
    /// returns how many were removed. Call it periodically; correctness never depends on
    /// it, since expired items are hidden from every operation anyway.
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        table::sweep_expired(&self.inner).await
    }
}
