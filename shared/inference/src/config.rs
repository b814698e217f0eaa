//! The providers file (`--providers` / `ZERODB_PROVIDERS`): TOML naming the providers this
//! deployment calls and the aliases that add to or override the built-in table.
//!
//! ```toml
//! [providers.nim]
//! kind = "openai"                      # or "anthropic"
//! base_url = "https://integrate.api.nvidia.com/v1"
//! api_key_env = "NVIDIA_API_KEY"       # or api_key_secret = "<Secrets Manager id>"
//! connect_timeout_ms = 3000            # optional
//! timeout_ms = 120000                  # optional, whole call
//! max_retries = 2                      # optional, on 429/5xx before the first byte
//!
//! [aliases]
//! llama-3.3-70b = { provider = "nim", model = "meta/llama-3.3-70b-instruct" }
//! fast = { provider = "nim", model = "…", fallback = "llama-3.3-70b", price = { input = 0.2, output = 0.6 } }
//! ```
//!
//! `base_url` is what each kind's official SDK takes as its base: for `openai` it includes
//! the version (`…/v1`, requests go to `{base_url}/chat/completions`); for `anthropic` it
//! does not (`https://api.anthropic.com`, requests go to `{base_url}/v1/messages`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The wire format a provider speaks (the file's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic's Messages API (`POST {base_url}/v1/messages`).
    Anthropic,
    /// OpenAI's Chat Completions API (`POST {base_url}/chat/completions`): OpenAI, NIM,
    /// Cerebras, vLLM and most hosted models.
    Openai,
}

/// A providers file as written; [`crate::Catalog::with_file`] validates it against the
/// built-in table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersFile {
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderEntry>,
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub api_key_secret: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasEntry {
    pub provider: String,
    pub model: String,
    pub fallback: Option<String>,
    pub price: Option<PriceEntry>,
}

/// Credits per million tokens.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub input: f64,
    pub output: f64,
}

/// What is wrong with a providers file, said so that its author can fix it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("providers file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("providers file is not valid: {0}")]
    Parse(String),
    #[error("provider `{provider}`: {reason}")]
    Provider { provider: String, reason: String },
    #[error("alias `{alias}`: {reason}")]
    Alias { alias: String, reason: String },
}

impl ProvidersFile {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    pub fn read(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}
