//! Provider keys, found once at start so no call pays for a lookup: a provider's
//! `api_key_env` variable; or its `api_key_secret` in the secret store (the key itself,
//! or a JSON object with an `api_key` field, the console's key/value form); or, for a
//! provider whose variable is unset, its entry in one bundle secret holding a JSON object
//! of keys by provider name (`ZERODB_PROVIDER_KEYS_SECRET`, for the built-in providers).

use std::collections::HashMap;

use zerodb_domain::Settings;
use zerodb_domain::context::Secrets;

use crate::Catalog;
use crate::catalog::KeySource;

/// Keys by provider name. A secret that cannot be read is left out with a warning: that
/// provider's calls then fail with 503 saying so, and the other providers keep working.
pub async fn provider_keys(
    catalog: &Catalog,
    settings: &Settings,
    secrets: &dyn Secrets,
    bundle: Option<&str>,
) -> HashMap<String, String> {
    let bundle: Option<serde_json::Value> = match bundle {
        Some(id) => secrets
            .get(id)
            .await
            .and_then(|text| serde_json::from_str(&text).ok())
            .or_else(|| {
                tracing::warn!(secret = %id, "provider keys secret is not a JSON object of keys by provider name");
                None
            }),
        None => None,
    };
    let mut keys = HashMap::new();
    for p in catalog.providers() {
        let key = match &p.key {
            KeySource::Env(name) => match settings.raw(name).filter(|k| !k.is_empty()) {
                Some(k) => Some(k.to_owned()),
                None => bundle
                    .as_ref()
                    .and_then(|b| b.get(&p.name))
                    .and_then(|k| k.as_str())
                    .map(str::to_owned),
            },
            KeySource::Secret(id) => secrets.get(id).await.as_deref().and_then(key_of),
            KeySource::None => None,
        };
        if let Some(key) = key {
            keys.insert(p.name.clone(), key);
        }
    }
    keys
}

fn key_of(value: &str) -> Option<String> {
    let value = value.trim();
    if value.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(value).ok()?;
        return v.get("api_key")?.as_str().map(str::to_owned);
    }
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn a_secret_is_the_key_or_an_object_holding_it() {
        assert_eq!(key_of(" sk-abc\n").as_deref(), Some("sk-abc"));
        assert_eq!(key_of(r#"{"api_key": "sk-x"}"#).as_deref(), Some("sk-x"));
        assert_eq!(key_of(r#"{"other": "sk-x"}"#), None);
        assert_eq!(key_of(""), None);
    }
}
