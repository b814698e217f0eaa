//! Provider keys kept in AWS Secrets Manager, read once at start so no call pays for a
//! lookup: a provider's own `api_key_secret` (the key itself, or a JSON object with an
//! `api_key` field, the console's key/value form), or one bundle secret holding a JSON
//! object of keys by provider name (`ZERODB_PROVIDER_KEYS_SECRET`, for the built-in
//! providers, whose keys are otherwise read from the environment).

use std::collections::HashMap;

use zerodb_inference::Catalog;
use zerodb_inference::catalog::KeySource;

/// Keys by provider name, for the providers whose key is in a secret: their own, or the
/// bundle's entry for them. A secret that cannot be read is left out with a warning: that
/// provider's calls then fail with 503 saying so, and the other providers keep working.
pub async fn provider_keys(
    catalog: &Catalog,
    client: &aws_sdk_secretsmanager::Client,
    bundle: Option<&str>,
) -> HashMap<String, String> {
    let bundle: Option<serde_json::Value> = match bundle {
        Some(id) => read(client, id)
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
            KeySource::Secret(id) => read(client, id).await.as_deref().and_then(key_of),
            KeySource::Env(name) if std::env::var_os(name).is_none() => bundle
                .as_ref()
                .and_then(|b| b.get(&p.name))
                .and_then(|k| k.as_str())
                .map(str::to_owned),
            _ => None,
        };
        if let Some(key) = key {
            keys.insert(p.name.clone(), key);
        }
    }
    keys
}

async fn read(client: &aws_sdk_secretsmanager::Client, id: &str) -> Option<String> {
    match client.get_secret_value().secret_id(id).send().await {
        Ok(out) => out.secret_string().map(str::to_owned),
        Err(e) => {
            // The SDK's error names the secret and the reason, never a value.
            tracing::warn!(secret = %id, error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "secret not readable");
            None
        }
    }
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
