//! Agent memory: records in namespaces, recall by meaning, and the knowledge graph, as
//! repositories over the storage ports and an `Embedder`.
//!
//! Writes never wait on the embedding model: `remember` commits and returns, the worker
//! embeds in batches off the request path, and `recall` embeds the newest few still pending
//! in its namespace in one batch with the query (a client's last writes are found by
//! meaning at once) and ranks older pending ones by their words until the worker is done.

pub mod cache;
pub mod graph;
pub mod inflight;
pub mod model;
pub mod rank;
pub mod repo;
pub mod service;
pub mod setup;
pub mod vector;
pub mod worker;

pub use graph::{Edge, Entity, GraphPath, GraphRepo, GraphStats};
pub use model::{Memory, MemoryPatch, MemoryType, NewMemory};
pub use service::{
    ItemOutcome, Listed, MemoryService, Profile, RecallLimits, RecallQuery, Recalled, Scored,
};
pub use setup::{embedder, shared};
