//! The alias table: the model names clients send (`claude-sonnet`, `llama-3.3-70b`, …),
//! each bound to a provider, the provider's own model id, a price and an optional fallback.
//! Clients never name provider model ids (seed 000: those change when providers retire
//! models), so an unknown name is refused with the list of valid ones.

use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::config::ProviderKind;
use crate::config::{ConfigError, PriceEntry, ProvidersFile};

/// Where a provider's API key comes from. The key itself is read once at start-up by the
/// function that calls the provider, never stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// No key (a local model server).
    None,
    /// The named environment variable.
    Env(String),
    /// An AWS Secrets Manager secret id or ARN.
    Secret(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub key: KeySource,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Extra attempts after a 429 or 5xx that came before any byte was sent to the client.
    pub max_retries: u32,
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_MAX_RETRIES: u32 = 2;
/// Longest chain of fallbacks followed; a longer one is refused at load as a likely cycle.
const MAX_FALLBACK_CHAIN: usize = 4;

/// Credits per million tokens, i.e. micro-credits per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// Micro-credits a call with these token counts costs, rounded up so that no call is
    /// free by rounding.
    pub fn cost_micro(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        let cost =
            input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok;
        cost.ceil() as u64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub provider: String,
    /// The provider's own model id.
    pub model: String,
    pub fallback: Option<String>,
    pub price: Price,
}

/// An alias with its provider: what a call needs.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub alias: &'a Alias,
    pub provider: &'a Provider,
}

/// A model name this deployment does not serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown model `{model}`: use one of {}", valid.join(", "))]
pub struct UnknownModel {
    pub model: String,
    pub valid: Vec<String>,
}

/// Providers and aliases of one deployment: the built-in table, plus the providers file.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
    aliases: BTreeMap<String, Alias>,
}

/// Prefix clients may put before any alias (seed 000); stripped.
const VENDOR_PREFIX: &str = "ainative/";

impl Catalog {
    /// Seed 000's aliases on their public providers, keys from the providers' usual
    /// environment variables. Prices are the providers' list prices (credits = USD) at the
    /// time of writing; a providers file overrides any of them.
    pub fn builtin() -> Catalog {
        let provider = |name: &str, kind, base_url: &str, env: &str| {
            (
                name.to_owned(),
                Provider {
                    name: name.to_owned(),
                    kind,
                    base_url: base_url.to_owned(),
                    key: KeySource::Env(env.to_owned()),
                    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                    timeout: DEFAULT_TIMEOUT,
                    max_retries: DEFAULT_MAX_RETRIES,
                },
            )
        };
        let providers = BTreeMap::from([
            provider(
                "anthropic",
                ProviderKind::Anthropic,
                "https://api.anthropic.com",
                "ANTHROPIC_API_KEY",
            ),
            provider(
                "nim",
                ProviderKind::Openai,
                "https://integrate.api.nvidia.com/v1",
                "NVIDIA_API_KEY",
            ),
            provider(
                "cerebras",
                ProviderKind::Openai,
                "https://api.cerebras.ai/v1",
                "CEREBRAS_API_KEY",
            ),
        ]);
        let alias = |name: &str, provider: &str, model: &str, input: f64, output: f64| {
            (
                name.to_owned(),
                Alias {
                    name: name.to_owned(),
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    fallback: None,
                    price: Price {
                        input_per_mtok: input,
                        output_per_mtok: output,
                    },
                },
            )
        };
        let aliases = BTreeMap::from([
            alias(
                "claude-sonnet",
                "anthropic",
                "claude-sonnet-4-20250514",
                3.0,
                15.0,
            ),
            alias(
                "claude-haiku",
                "anthropic",
                "claude-haiku-4-5-20251001",
                1.0,
                5.0,
            ),
            alias(
                "claude-opus",
                "anthropic",
                "claude-opus-4-20250514",
                15.0,
                75.0,
            ),
            alias(
                "qwen-coder-32b",
                "nim",
                "qwen/qwen2.5-coder-32b-instruct",
                0.2,
                0.6,
            ),
            alias(
                "llama-3.3-70b",
                "nim",
                "meta/llama-3.3-70b-instruct",
                0.6,
                0.6,
            ),
            alias(
                "llama-4-maverick",
                "nim",
                "meta/llama-4-maverick-17b-128e-instruct",
                0.3,
                0.9,
            ),
            alias(
                "deepseek-v4-flash",
                "nim",
                "deepseek-ai/deepseek-v4-flash",
                0.3,
                1.2,
            ),
            alias(
                "mistral-large-3",
                "nim",
                "mistralai/mistral-large-3-675b-instruct-2512",
                0.5,
                1.5,
            ),
            alias("llama3.1-8b", "cerebras", "llama3.1-8b", 0.1, 0.1),
            alias(
                "qwen3-235b-cerebras",
                "cerebras",
                "qwen-3-235b-a22b-instruct-2507",
                0.6,
                1.2,
            ),
        ]);
        Catalog { providers, aliases }
    }

    /// The built-in table with `file`'s providers and aliases added (a name already
    /// present is replaced), then checked as a whole: every alias names a known provider,
    /// every fallback a known alias, with no cycle.
    pub fn with_file(file: ProvidersFile) -> Result<Catalog, ConfigError> {
        let mut catalog = Catalog::builtin();
        for (name, p) in file.providers {
            let bad = |reason: String| ConfigError::Provider {
                provider: name.clone(),
                reason,
            };
            let base_url = p.base_url.trim_end_matches('/').to_owned();
            let host = base_url
                .strip_prefix("https://")
                .or_else(|| base_url.strip_prefix("http://"));
            if host.is_none_or(str::is_empty) {
                return Err(bad(format!(
                    "base_url `{}` must be an http:// or https:// URL",
                    p.base_url
                )));
            }
            let key = match (p.api_key_env, p.api_key_secret) {
                (Some(_), Some(_)) => {
                    return Err(bad("set api_key_env or api_key_secret, not both".to_owned()));
                }
                (Some(env), None) if env.is_empty() => {
                    return Err(bad("api_key_env is empty".to_owned()));
                }
                (Some(env), None) => KeySource::Env(env),
                (None, Some(secret)) if secret.is_empty() => {
                    return Err(bad("api_key_secret is empty".to_owned()));
                }
                (None, Some(secret)) => KeySource::Secret(secret),
                (None, None) => KeySource::None,
            };
            let timeout = p.timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis);
            let connect_timeout = p
                .connect_timeout_ms
                .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis);
            if timeout.is_zero() || connect_timeout.is_zero() {
                return Err(bad("timeouts must be above 0 ms".to_owned()));
            }
            catalog.providers.insert(
                name.clone(),
                Provider {
                    name,
                    kind: p.kind,
                    base_url,
                    key,
                    connect_timeout,
                    timeout,
                    max_retries: p.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                },
            );
        }
        for (name, a) in file.aliases {
            let bad = |reason: String| ConfigError::Alias {
                alias: name.clone(),
                reason,
            };
            if name.is_empty() || name.starts_with(VENDOR_PREFIX) {
                return Err(bad(format!(
                    "an alias name must be non-empty and not start with `{VENDOR_PREFIX}` (clients' prefix, stripped before lookup)"
                )));
            }
            if a.model.is_empty() {
                return Err(bad("model is empty".to_owned()));
            }
            // An override without a price keeps the built-in alias's price.
            let price = match (a.price, catalog.aliases.get(&name)) {
                (Some(PriceEntry { input, output }), _) => {
                    if !(input.is_finite() && output.is_finite() && input >= 0.0 && output >= 0.0) {
                        return Err(bad(
                            "price.input and price.output must be numbers ≥ 0 (credits per million tokens)".to_owned(),
                        ));
                    }
                    Price {
                        input_per_mtok: input,
                        output_per_mtok: output,
                    }
                }
                (None, Some(existing)) => existing.price,
                (None, None) => Price {
                    input_per_mtok: 0.0,
                    output_per_mtok: 0.0,
                },
            };
            catalog.aliases.insert(
                name.clone(),
                Alias {
                    name,
                    provider: a.provider,
                    model: a.model,
                    fallback: a.fallback,
                    price,
                },
            );
        }
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> Result<(), ConfigError> {
        for alias in self.aliases.values() {
            let bad = |reason: String| ConfigError::Alias {
                alias: alias.name.clone(),
                reason,
            };
            if !self.providers.contains_key(&alias.provider) {
                return Err(bad(format!(
                    "provider `{}` is not defined (known: {})",
                    alias.provider,
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let mut seen = vec![alias.name.as_str()];
            let mut next = alias.fallback.as_deref();
            while let Some(f) = next {
                let Some(target) = self.aliases.get(f) else {
                    return Err(bad(format!("fallback `{f}` is not an alias")));
                };
                if seen.contains(&f) || seen.len() > MAX_FALLBACK_CHAIN {
                    return Err(bad(format!(
                        "fallbacks loop or chain more than {MAX_FALLBACK_CHAIN} deep: {} → {f}",
                        seen.join(" → ")
                    )));
                }
                seen.push(f);
                next = target.fallback.as_deref();
            }
        }
        Ok(())
    }

    /// The route for the model a client sent (an alias, optionally prefixed `ainative/`).
    pub fn resolve(&self, model: &str) -> Result<Route<'_>, UnknownModel> {
        let name = model.strip_prefix(VENDOR_PREFIX).unwrap_or(model);
        self.aliases
            .get(name)
            .and_then(|alias| self.route(alias))
            .ok_or_else(|| UnknownModel {
                model: model.to_owned(),
                valid: self.aliases.keys().cloned().collect(),
            })
    }

    /// The route of `route`'s fallback alias, if it has one.
    pub fn fallback_of(&self, route: &Route<'_>) -> Option<Route<'_>> {
        let name = route.alias.fallback.as_deref()?;
        self.route(self.aliases.get(name)?)
    }

    fn route<'a>(&'a self, alias: &'a Alias) -> Option<Route<'a>> {
        Some(Route {
            alias,
            provider: self.providers.get(&alias.provider)?,
        })
    }

    /// Every alias, by name.
    pub fn aliases(&self) -> impl Iterator<Item = &Alias> {
        self.aliases.values()
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_serves_seed_000s_aliases_with_or_without_the_prefix() {
        let c = Catalog::builtin();
        for (alias, provider, model) in [
            ("claude-sonnet", "anthropic", "claude-sonnet-4-20250514"),
            ("claude-haiku", "anthropic", "claude-haiku-4-5-20251001"),
            ("claude-opus", "anthropic", "claude-opus-4-20250514"),
            ("llama-3.3-70b", "nim", "meta/llama-3.3-70b-instruct"),
            ("llama3.1-8b", "cerebras", "llama3.1-8b"),
        ] {
            for name in [alias.to_owned(), format!("ainative/{alias}")] {
                let r = c.resolve(&name).unwrap();
                assert_eq!(r.alias.name, alias);
                assert_eq!(r.provider.name, provider);
                assert_eq!(r.alias.model, model);
            }
        }
        for name in [
            "qwen-coder-32b",
            "llama-4-maverick",
            "deepseek-v4-flash",
            "mistral-large-3",
            "qwen3-235b-cerebras",
        ] {
            assert!(c.resolve(name).is_ok(), "{name}");
        }
        assert_eq!(
            c.resolve("claude-sonnet").unwrap().provider.kind,
            ProviderKind::Anthropic
        );
        assert_eq!(
            c.resolve("llama-3.3-70b").unwrap().provider.kind,
            ProviderKind::Openai
        );
    }

    #[test]
    fn an_unknown_model_names_the_valid_aliases() {
        let err = Catalog::builtin().resolve("gpt-4o").unwrap_err();
        assert_eq!(err.model, "gpt-4o");
        assert_eq!(err.valid.len(), 10);
        let msg = err.to_string();
        assert!(msg.contains("unknown model `gpt-4o`"), "{msg}");
        assert!(
            msg.contains("claude-sonnet") && msg.contains("llama3.1-8b"),
            "{msg}"
        );
        // Provider ids are not aliases, and the prefix is only stripped once.
        assert!(
            Catalog::builtin()
                .resolve("claude-sonnet-4-20250514")
                .is_err()
        );
        assert!(
            Catalog::builtin()
                .resolve("ainative/ainative/claude-sonnet")
                .is_err()
        );
        assert!(Catalog::builtin().resolve("").is_err());
    }

    #[test]
    fn a_providers_file_adds_and_overrides() {
        let file = ProvidersFile::parse(
            r#"
            [providers.fake]
            kind = "anthropic"
            base_url = "http://127.0.0.1:9/"
            connect_timeout_ms = 250
            timeout_ms = 1000
            max_retries = 0

            [providers.local]
            kind = "openai"
            base_url = "http://127.0.0.1:8/v1"
            api_key_env = "LOCAL_KEY"

            [aliases]
            claude-sonnet = { provider = "fake", model = "claude-sonnet-test" }
            tiny = { provider = "local", model = "tiny-1b", fallback = "claude-sonnet", price = { input = 0.5, output = 2 } }
            "#,
        )
        .unwrap();
        let c = Catalog::with_file(file).unwrap();
        let sonnet = c.resolve("claude-sonnet").unwrap();
        assert_eq!(sonnet.provider.name, "fake");
        assert_eq!(sonnet.provider.base_url, "http://127.0.0.1:9");
        assert_eq!(sonnet.provider.key, KeySource::None);
        assert_eq!(sonnet.provider.timeout, Duration::from_secs(1));
        assert_eq!(sonnet.provider.connect_timeout, Duration::from_millis(250));
        assert_eq!(sonnet.provider.max_retries, 0);
        assert_eq!(sonnet.alias.model, "claude-sonnet-test");
        // The override kept the built-in price.
        assert_eq!(sonnet.alias.price.output_per_mtok, 15.0);
        let tiny = c.resolve("ainative/tiny").unwrap();
        assert_eq!(tiny.provider.key, KeySource::Env("LOCAL_KEY".into()));
        assert_eq!(tiny.provider.kind, ProviderKind::Openai);
        assert_eq!(c.fallback_of(&tiny).unwrap().alias.name, "claude-sonnet");
        assert!(c.fallback_of(&sonnet).is_none());
        assert_eq!(tiny.alias.price.cost_micro(1_000, 3), 506);
        // Built-ins not overridden are still there.
        assert_eq!(
            c.resolve("claude-haiku").unwrap().provider.name,
            "anthropic"
        );
    }

    #[test]
    fn bad_files_are_refused_with_what_to_fix() {
        let cases = [
            (
                "[providers.x]\nkind = \"grpc\"\nbase_url = \"http://a\"",
                "grpc",
            ),
            (
                "[providers.x]\nkind = \"openai\"\nbase_url = \"ftp://a\"",
                "base_url",
            ),
            (
                "[providers.x]\nkind = \"openai\"\nbase_url = \"http://a\"\nurl = 1",
                "url",
            ),
            (
                "[providers.x]\nkind = \"openai\"\nbase_url = \"http://a\"\napi_key_env = \"A\"\napi_key_secret = \"B\"",
                "not both",
            ),
            (
                "[aliases]\nm = { provider = \"nowhere\", model = \"m\" }",
                "`nowhere` is not defined",
            ),
            (
                "[aliases]\nm = { provider = \"nim\", model = \"\" }",
                "model is empty",
            ),
            (
                "[aliases]\nm = { provider = \"nim\", model = \"x\", fallback = \"nope\" }",
                "fallback `nope`",
            ),
            (
                "[aliases]\na = { provider = \"nim\", model = \"x\", fallback = \"b\" }\nb = { provider = \"nim\", model = \"y\", fallback = \"a\" }",
                "loop",
            ),
            (
                "[aliases]\nm = { provider = \"nim\", model = \"x\", price = { input = -1, output = 0 } }",
                "price",
            ),
            (
                "[aliases]\n\"ainative/m\" = { provider = \"nim\", model = \"x\" }",
                "ainative/",
            ),
        ];
        for (text, expected) in cases {
            let err = ProvidersFile::parse(text)
                .and_then(Catalog::with_file)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn cost_rounds_up_to_a_micro_credit() {
        let p = Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        };
        assert_eq!(p.cost_micro(0, 0), 0);
        assert_eq!(p.cost_micro(1_000_000, 0), 3_000_000);
        assert_eq!(p.cost_micro(10, 10), 180);
        let cheap = Price {
            input_per_mtok: 0.1,
            output_per_mtok: 0.0,
        };
        assert_eq!(cheap.cost_micro(1, 0), 1);
    }
}
