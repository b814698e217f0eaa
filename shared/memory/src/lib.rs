//! Agent memory: records in namespaces, recall by meaning, and the knowledge graph, as
//! repositories over the storage ports and an `Embedder`.
//!
//! Writes never wait on the embedding model: `remember` commits and returns, the worker
//! embeds in batches off the request path, and `recall` embeds whatever is still pending in
//! its namespace in one batch with the query, so every committed memory is found by meaning.

pub mod cache;
pub mod graph;
pub mod model;
pub mod rank;
pub mod repo;
pub mod service;
pub mod setup;
pub mod vector;
pub mod worker;

pub use graph::{Edge, Entity, GraphPath, GraphRepo, GraphStats};
pub use model::{Memory, MemoryPatch, MemoryType, NewMemory};
pub use service::{ItemOutcome, MemoryService, Profile, RecallQuery, Scored};
pub use setup::{embedder, shared};
