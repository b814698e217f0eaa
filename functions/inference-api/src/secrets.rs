//! Provider keys kept in AWS Secrets Manager (`api_key_secret`), read once at start so no
//! call pays for a lookup. A secret's value is the key itself, or a JSON object with an
//! `api_key` field (the console's key/value form).

use std::collections::HashMap;

use zerodb_inference::Catalog;
use zerodb_inference::catalog::KeySource;

/// Every secret the catalog's providers name, by secret id. A secret that cannot be read
/// is left out with a warning: that provider's calls then fail with 503 saying so, and the
/// other providers keep working.
pub async fn read_all(
    catalog: &Catalog,
    client: &aws_sdk_secretsmanager::Client,
) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    for p in catalog.providers() {
        let KeySource::Secret(id) = &p.key else {
            continue;
        };
        if keys.contains_key(id) {
            continue;
        }
        match client.get_secret_value().secret_id(id).send().await {
            Ok(out) => match out.secret_string().map(key_of) {
                Some(Some(key)) => {
                    keys.insert(id.clone(), key);
                }
                _ => tracing::warn!(provider = %p.name, secret = %id, "secret holds no key: store the key itself or {{\"api_key\": \"...\"}}"),
            },
            // The SDK's error names the secret and the reason, never its value.
            Err(e) => tracing::warn!(provider = %p.name, secret = %id, error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "secret not readable"),
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
