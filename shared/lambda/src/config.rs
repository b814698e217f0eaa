//! The configuration every Lambda function shares, read once from the environment at
//! init; anything missing or malformed fails the init with a message naming every
//! problem at once.

use std::collections::BTreeMap;

use zerodb_domain::Settings;
use zerodb_domain::auth::{AuthSettings, DEFAULT_RATE_LIMIT_PER_MINUTE, jwt_secret_problem};
use zerodb_domain::queues::QueueName;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Names of the AWS resources a function uses (set by template.yaml).
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table: String,
    pub bucket: String,
    /// The S3 Vectors bucket holding every vector index.
    pub vector_bucket: String,
    /// The URL of every queue, from its spec's `url_env`.
    pub queue_urls: BTreeMap<QueueName, String>,
}

/// Where a function's token-signing key comes from.
#[derive(Clone)]
pub enum JwtSource {
    /// `ZERODB_JWT_SECRET_ID`: a Secrets Manager secret, read once in the init phase, so
    /// the key is in no function's environment (where the console and `GetFunction`
    /// show it). This is what template.yaml sets on the functions that verify tokens.
    SecretsManager(String),
    /// `ZERODB_JWT_SECRET`: the key itself (for deployments without Secrets Manager).
    Value(Vec<u8>),
    /// A function that serves no HTTP (a queue worker) verifies no token: it gets a
    /// random key no other function shares, so nothing it could sign would verify.
    Unused,
}

impl std::fmt::Debug for JwtSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtSource::SecretsManager(id) => write!(f, "SecretsManager({id})"),
            JwtSource::Value(_) => f.write_str("Value(***)"),
            JwtSource::Unused => f.write_str("Unused"),
        }
    }
}

/// Everything every Lambda function needs; the token key is resolved by
/// [`crate::context`], which can call Secrets Manager.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    pub jwt: JwtSource,
    /// The auth settings; `jwt_secret` is empty until the source is resolved.
    pub auth: AuthSettings,
    pub resources: AwsResources,
}

fn required(settings: &Settings, name: &str, problems: &mut Vec<String>) -> String {
    match settings.get(name) {
        Some(v) => v.to_owned(),
        None => {
            problems.push(format!("{name} is not set"));
            String::new()
        }
    }
}

/// `ZERODB_RATE_LIMIT_PER_MINUTE` (default 6000; 0 turns the limit off).
pub fn rate_limit(settings: &Settings, problems: &mut Vec<String>) -> u32 {
    settings
        .whole_number(
            "ZERODB_RATE_LIMIT_PER_MINUTE",
            DEFAULT_RATE_LIMIT_PER_MINUTE,
            0,
        )
        .unwrap_or_else(|problem| {
            problems.push(problem);
            0
        })
}

impl LambdaConfig {
    /// `verifies_tokens`: the function serves HTTP, so it needs the token key.
    pub fn from_settings(settings: &Settings, verifies_tokens: bool) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let jwt = match (
            settings.get("ZERODB_JWT_SECRET"),
            settings.get("ZERODB_JWT_SECRET_ID"),
        ) {
            (Some(value), _) => {
                problems.extend(jwt_secret_problem(value.as_bytes()));
                JwtSource::Value(value.as_bytes().to_vec())
            }
            (None, Some(id)) if !id.is_empty() => JwtSource::SecretsManager(id.to_owned()),
            _ if verifies_tokens => {
                problems.push(
                    "ZERODB_JWT_SECRET_ID (a Secrets Manager secret id) or ZERODB_JWT_SECRET is not set"
                        .to_owned(),
                );
                JwtSource::Unused
            }
            _ => JwtSource::Unused,
        };
        let rate = rate_limit(settings, &mut problems);
        let limits = zerodb_domain::auth::AuthLimits::from_settings(settings, &mut problems);
        let resources = AwsResources {
            table: required(settings, "ZERODB_TABLE", &mut problems),
            bucket: required(settings, "ZERODB_BUCKET", &mut problems),
            vector_bucket: required(settings, "ZERODB_VECTOR_BUCKET", &mut problems),
            queue_urls: QueueName::ALL
                .iter()
                .map(|q| (*q, required(settings, q.spec().url_env, &mut problems)))
                .collect(),
        };
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(LambdaConfig {
            jwt,
            auth: AuthSettings {
                jwt_secret: Vec::new(),
                rate_limit_per_minute: rate,
                // Many Lambda instances serve one account: counts must be shared.
                rate_counting: zerodb_domain::rate::RateCounting::Shared,
                limits,
            },
            resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_at_once() {
        let err = LambdaConfig::from_settings(
            &Settings::from_pairs([
                ("ZERODB_JWT_SECRET", "short"),
                ("ZERODB_RATE_LIMIT_PER_MINUTE", "lots"),
            ]),
            true,
        )
        .unwrap_err()
        .to_string();
        for part in [
            "ZERODB_TABLE is not set",
            "ZERODB_BUCKET is not set",
            "ZERODB_VECTOR_BUCKET is not set",
            "ZERODB_EVENTS_QUEUE_URL is not set",
            "at least 32 bytes",
            "not 'lots'",
        ] {
            assert!(err.contains(part), "{err}");
        }
    }

    #[test]
    fn a_function_serving_http_needs_a_token_key_and_a_worker_does_not() {
        let base = [
            ("ZERODB_TABLE", "t"),
            ("ZERODB_BUCKET", "b"),
            ("ZERODB_VECTOR_BUCKET", "vb"),
            ("ZERODB_EVENTS_QUEUE_URL", "q"),
        ];
        let err = LambdaConfig::from_settings(&Settings::from_pairs(base), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ZERODB_JWT_SECRET_ID"), "{err}");
        let worker = LambdaConfig::from_settings(&Settings::from_pairs(base), false).unwrap();
        assert!(matches!(worker.jwt, JwtSource::Unused));
        let mut with_id = base.to_vec();
        with_id.push((
            "ZERODB_JWT_SECRET_ID",
            "arn:aws:secretsmanager:us-east-1:1:secret:jwt",
        ));
        let http = LambdaConfig::from_settings(&Settings::from_pairs(with_id), true).unwrap();
        assert!(matches!(http.jwt, JwtSource::SecretsManager(ref id) if id.ends_with(":jwt")));
    }
}
