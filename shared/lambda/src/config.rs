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
    /// The URL of every queue, from its spec's `url_env`.
    pub queue_urls: BTreeMap<QueueName, String>,
}

/// Everything every Lambda function needs.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
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
    match settings.get("ZERODB_RATE_LIMIT_PER_MINUTE") {
        None => DEFAULT_RATE_LIMIT_PER_MINUTE,
        Some(v) => v.parse().unwrap_or_else(|_| {
            problems.push(format!(
                "ZERODB_RATE_LIMIT_PER_MINUTE must be a whole number, not '{v}'"
            ));
            0
        }),
    }
}

impl LambdaConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let jwt = required(settings, "ZERODB_JWT_SECRET", &mut problems).into_bytes();
        if !jwt.is_empty() {
            problems.extend(jwt_secret_problem(&jwt));
        }
        let rate = rate_limit(settings, &mut problems);
        let resources = AwsResources {
            table: required(settings, "ZERODB_TABLE", &mut problems),
            bucket: required(settings, "ZERODB_BUCKET", &mut problems),
            queue_urls: QueueName::ALL
                .iter()
                .map(|q| (*q, required(settings, q.spec().url_env, &mut problems)))
                .collect(),
        };
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(LambdaConfig {
            auth: AuthSettings {
                jwt_secret: jwt,
                rate_limit_per_minute: rate,
                // Many Lambda instances serve one account: counts must be shared.
                rate_counting: zerodb_domain::rate::RateCounting::Shared,
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
        let err = LambdaConfig::from_settings(&Settings::from_pairs([
            ("ZERODB_JWT_SECRET", "short"),
            ("ZERODB_RATE_LIMIT_PER_MINUTE", "lots"),
        ]))
        .unwrap_err()
        .to_string();
        for part in [
            "ZERODB_TABLE is not set",
            "ZERODB_BUCKET is not set",
            "ZERODB_EVENTS_QUEUE_URL is not set",
            "at least 32 bytes",
            "not 'lots'",
        ] {
            assert!(err.contains(part), "{err}");
        }
    }
}
