//! The one error type of every embedder. Messages never quote the texts being embedded
//! nor an API key: they end up in logs.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The embedder's configuration is incomplete or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Model files are missing or unreadable, or do not describe a supported model.
    #[error("embedding model in {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },

    /// Tokenising or running the model failed.
    #[error("embedding inference failed: {0}")]
    Inference(String),

    /// The embedding service answered with a non-success status. `body` is the start of
    /// its answer (with the API key blanked out), for diagnosis.
    #[error("embedding service answered HTTP {status}: {body}")]
    Http { status: u16, body: String },

    /// The embedding service did not answer in time.
    #[error("embedding service did not answer within {0:?}")]
    Timeout(Duration),

    /// The embedding service could not be reached (DNS, connection, TLS).
    #[error("embedding service unreachable: {0}")]
    Transport(String),

    /// The embedding service answered 2xx with something other than the expected vectors.
    #[error("embedding service response has the wrong shape: {0}")]
    BadResponse(String),

    /// More texts in one call than an embedder accepts.
    #[error("too many texts in one call: {got} (at most {max})")]
    TooManyInputs { got: usize, max: usize },
}
