//! Which embedder a process uses, read once at start from the environment:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `ZERODB_EMBEDDER` | `minilm`, `http` or `lexical`; unset: `minilm` when `ZERODB_MINILM_DIR` holds the model, else `lexical` (with a warning) |
//! | `ZERODB_MINILM_DIR` | directory with config.json, tokenizer.json, model.safetensors (`./infra/fetch-model.sh` prints one) |
//! | `ZERODB_EMBEDDINGS_URL` | base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1` (http) |
//! | `ZERODB_EMBEDDINGS_MODEL` | model name sent to it (http) |
//! | `ZERODB_EMBEDDINGS_API_KEY_ENV` | NAME of the variable that holds the API key (http, optional) |
//! | `ZERODB_EMBEDDINGS_DIMS` | vector length: required for http, optional for lexical (default 384) |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{EmbedError, Embedder, HttpEmbedder, LexicalEmbedder, MINILM_FILES, MiniLmEmbedder};

/// Lexical vectors default to MiniLM's length, so storage sized for one fits the other.
pub const DEFAULT_LEXICAL_DIMS: usize = 384;

/// Vector lengths above this are a typo, not a model.
const MAX_DIMS: usize = 65_536;

/// Every problem found in the embedder's configuration, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("embedder configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// The chosen embedder and its settings.
#[derive(Clone, PartialEq, Eq)]
pub enum EmbedderConfig {
    MiniLm {
        dir: PathBuf,
    },
    Http {
        base_url: String,
        model: String,
        /// The key itself, read from the variable `ZERODB_EMBEDDINGS_API_KEY_ENV` names.
        api_key: Option<String>,
        dims: usize,
    },
    Lexical {
        dims: usize,
    },
}

impl std::fmt::Debug for EmbedderConfig {
    // By hand, so the API key can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbedderConfig::MiniLm { dir } => f.debug_struct("MiniLm").field("dir", dir).finish(),
            EmbedderConfig::Http {
                base_url,
                model,
                api_key,
                dims,
            } => f
                .debug_struct("Http")
                .field("base_url", base_url)
                .field("model", model)
                .field("api_key", &api_key.as_ref().map(|_| "<redacted>"))
                .field("dims", dims)
                .finish(),
            EmbedderConfig::Lexical { dims } => {
                f.debug_struct("Lexical").field("dims", dims).finish()
            }
        }
    }
}

impl EmbedderConfig {
    /// Reads the `ZERODB_EMBEDDER*` / `ZERODB_MINILM_DIR` variables (see the module doc).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`EmbedderConfig::from_env`], with variables from `lookup` (tests, or settings
    /// that come from somewhere other than the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Blank counts as unset: `FOO= cmd` is how shells unset things in practice.
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();
        let config = match get("ZERODB_EMBEDDER").as_deref().map(str::trim) {
            None => default_choice(get("ZERODB_MINILM_DIR"), &get, &mut problems),
            Some("minilm") => match get("ZERODB_MINILM_DIR") {
                None => {
                    problems.push(
                        "ZERODB_MINILM_DIR is not set (ZERODB_EMBEDDER=minilm needs it; ./infra/fetch-model.sh prints one)"
                            .to_string(),
                    );
                    None
                }
                Some(dir) => {
                    let dir = PathBuf::from(dir);
                    let missing = missing_model_files(&dir);
                    if !missing.is_empty() {
                        problems.push(format!(
                            "ZERODB_MINILM_DIR ({}) lacks {} (./infra/fetch-model.sh fetches them)",
                            dir.display(),
                            missing.join(", ")
                        ));
                    }
                    Some(EmbedderConfig::MiniLm { dir })
                }
            },
            Some("http") => http_config(&get, &lookup, &mut problems),
            Some("lexical") => Some(EmbedderConfig::Lexical {
                dims: dims(&get, false, &mut problems).unwrap_or(DEFAULT_LEXICAL_DIMS),
            }),
            Some(other) => {
                problems.push(format!(
                    "ZERODB_EMBEDDER must be minilm, http or lexical, not '{other}'"
                ));
                None
            }
        };
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError(problems)),
        }
    }

    /// Builds the embedder. For MiniLM this loads the model and blocks for a few hundred
    /// milliseconds: call it at start-up, or from `spawn_blocking` inside a runtime.
    pub fn build(&self) -> Result<Arc<dyn Embedder>, EmbedError> {
        let embedder: Arc<dyn Embedder> = match self {
            EmbedderConfig::MiniLm { dir } => Arc::new(MiniLmEmbedder::load(dir)?),
            EmbedderConfig::Http {
                base_url,
                model,
                api_key,
                dims,
            } => Arc::new(HttpEmbedder::new(
                base_url.clone(),
                model.clone(),
                api_key.clone(),
                *dims,
            )?),
            EmbedderConfig::Lexical { dims } => Arc::new(LexicalEmbedder::new(*dims)),
        };
        tracing::info!(
            embedder = embedder.name(),
            dims = embedder.dims(),
            "embedder ready"
        );
        Ok(embedder)
    }
}

/// Reads the configuration from the environment and builds the embedder (blocking, like
/// [`EmbedderConfig::build`]).
pub fn from_env() -> Result<Arc<dyn Embedder>, EmbedError> {
    EmbedderConfig::from_env()?.build()
}

/// Model files absent from `dir`.
fn missing_model_files(dir: &Path) -> Vec<&'static str> {
    MINILM_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

/// No ZERODB_EMBEDDER: MiniLM if its files are there, otherwise the lexical fallback, said
/// loudly, because recall then only matches shared words.
fn default_choice(
    dir: Option<String>,
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<EmbedderConfig> {
    if let Some(dir) = &dir {
        let dir = PathBuf::from(dir);
        let missing = missing_model_files(&dir);
        if missing.is_empty() {
            return Some(EmbedderConfig::MiniLm { dir });
        }
        tracing::warn!(
            dir = %dir.display(),
            missing = %missing.join(", "),
            "ZERODB_MINILM_DIR does not hold the MiniLM model: using the lexical embedder, so \
             recall-by-meaning is degraded to shared-word matching; run ./infra/fetch-model.sh \
             and point ZERODB_MINILM_DIR at the directory it prints"
        );
    } else {
        tracing::warn!(
            "no embedding model configured: using the lexical embedder, so recall-by-meaning is \
             degraded to shared-word matching; set ZERODB_MINILM_DIR to the directory printed \
             by ./infra/fetch-model.sh, or ZERODB_EMBEDDER=http with ZERODB_EMBEDDINGS_URL, \
             ZERODB_EMBEDDINGS_MODEL and ZERODB_EMBEDDINGS_DIMS"
        );
    }
    Some(EmbedderConfig::Lexical {
        dims: dims(get, false, problems).unwrap_or(DEFAULT_LEXICAL_DIMS),
    })
}

fn http_config(
    get: &impl Fn(&str) -> Option<String>,
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<EmbedderConfig> {
    let base_url = get("ZERODB_EMBEDDINGS_URL");
    match &base_url {
        None => {
            problems.push("ZERODB_EMBEDDINGS_URL is not set (ZERODB_EMBEDDER=http needs it)".into())
        }
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => problems.push(
            format!("ZERODB_EMBEDDINGS_URL must start with http:// or https://, not '{url}'"),
        ),
        Some(_) => {}
    }
    let model = get("ZERODB_EMBEDDINGS_MODEL");
    if model.is_none() {
        problems.push("ZERODB_EMBEDDINGS_MODEL is not set (ZERODB_EMBEDDER=http needs it)".into());
    }
    let dims = dims(get, true, problems);
    let api_key = match get("ZERODB_EMBEDDINGS_API_KEY_ENV") {
        None => None,
        // The key's variable may be set but blank on purpose? No: a named, empty key is a
        // deployment mistake, and sending no key would fail later with a vaguer 401.
        Some(var) => match lookup(var.trim()).filter(|k| !k.trim().is_empty()) {
            Some(key) => Some(key.trim().to_string()),
            None => {
                problems.push(format!(
                    "ZERODB_EMBEDDINGS_API_KEY_ENV names {}, which is not set",
                    var.trim()
                ));
                None
            }
        },
    };
    Some(EmbedderConfig::Http {
        base_url: base_url?.trim().to_string(),
        model: model?.trim().to_string(),
        api_key,
        dims: dims?,
    })
}

/// `ZERODB_EMBEDDINGS_DIMS`: None when unset (a problem if `required`) or malformed.
fn dims(
    get: &impl Fn(&str) -> Option<String>,
    required: bool,
    problems: &mut Vec<String>,
) -> Option<usize> {
    match get("ZERODB_EMBEDDINGS_DIMS") {
        None => {
            if required {
                problems.push(
                    "ZERODB_EMBEDDINGS_DIMS is not set (ZERODB_EMBEDDER=http needs the model's vector length)"
                        .into(),
                );
            }
            None
        }
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_DIMS).contains(&n) => Some(n),
            _ => {
                problems.push(format!(
                    "ZERODB_EMBEDDINGS_DIMS must be a whole number from 1 to {MAX_DIMS}, not '{v}'"
                ));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<EmbedderConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EmbedderConfig::from_lookup(move |k| vars.get(k).cloned())
    }

    fn model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for f in MINILM_FILES {
            std::fs::write(dir.path().join(f), b"x").expect("write");
        }
        dir
    }

    #[test]
    fn default_is_lexical_without_a_model() {
        assert_eq!(config(&[]), Ok(EmbedderConfig::Lexical { dims: 384 }));
        assert_eq!(
            config(&[
                ("ZERODB_MINILM_DIR", "/nonexistent"),
                ("ZERODB_EMBEDDINGS_DIMS", "256")
            ]),
            Ok(EmbedderConfig::Lexical { dims: 256 })
        );
    }

    #[test]
    fn default_is_minilm_when_the_model_is_there() {
        let dir = model_dir();
        let d = dir.path().to_str().expect("utf-8 temp dir");
        assert_eq!(
            config(&[("ZERODB_MINILM_DIR", d)]),
            Ok(EmbedderConfig::MiniLm {
                dir: dir.path().to_path_buf()
            })
        );
    }

    #[test]
    fn explicit_minilm_needs_its_files() {
        let err = config(&[("ZERODB_EMBEDDER", "minilm")]).unwrap_err();
        assert!(err.0[0].contains("ZERODB_MINILM_DIR is not set"), "{err}");
        let err = config(&[
            ("ZERODB_EMBEDDER", "minilm"),
            ("ZERODB_MINILM_DIR", "/nonexistent"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }

    #[test]
    fn http_names_every_missing_variable() {
        let err = config(&[("ZERODB_EMBEDDER", "http")]).unwrap_err();
        let text = err.to_string();
        for var in [
            "ZERODB_EMBEDDINGS_URL",
            "ZERODB_EMBEDDINGS_MODEL",
            "ZERODB_EMBEDDINGS_DIMS",
        ] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
        assert_eq!(err.0.len(), 3);

        let err = config(&[
            ("ZERODB_EMBEDDER", "http"),
            ("ZERODB_EMBEDDINGS_URL", "ftp://x"),
            ("ZERODB_EMBEDDINGS_MODEL", "m"),
            ("ZERODB_EMBEDDINGS_DIMS", "zero"),
            ("ZERODB_EMBEDDINGS_API_KEY_ENV", "MY_KEY"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 3, "{text}");
        assert!(text.contains("http:// or https://"), "{text}");
        assert!(text.contains("ZERODB_EMBEDDINGS_DIMS must be"), "{text}");
        assert!(text.contains("names MY_KEY, which is not set"), "{text}");
    }

    #[test]
    fn http_reads_the_key_from_the_named_variable_and_never_shows_it() {
        let c = config(&[
            ("ZERODB_EMBEDDER", "http"),
            ("ZERODB_EMBEDDINGS_URL", "https://api.example.test/v1"),
            ("ZERODB_EMBEDDINGS_MODEL", "text-embedding-3-small"),
            ("ZERODB_EMBEDDINGS_DIMS", "1536"),
            ("ZERODB_EMBEDDINGS_API_KEY_ENV", "MY_KEY"),
            ("MY_KEY", "sk-secret-value"),
        ])
        .expect("valid");
        assert_eq!(
            c,
            EmbedderConfig::Http {
                base_url: "https://api.example.test/v1".into(),
                model: "text-embedding-3-small".into(),
                api_key: Some("sk-secret-value".into()),
                dims: 1536,
            }
        );
        assert!(!format!("{c:?}").contains("sk-secret"));
        let built = c.build().expect("client builds");
        assert_eq!(built.name(), "http:text-embedding-3-small");
        assert_eq!(built.dims(), 1536);
    }

    #[test]
    fn unknown_provider_is_refused() {
        let err = config(&[("ZERODB_EMBEDDER", "bert")]).unwrap_err();
        assert!(err.to_string().contains("not 'bert'"), "{err}");
    }
}
