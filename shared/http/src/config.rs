//! Configuration, read once at start from the environment; a missing or malformed
//! variable fails start-up with a message naming every one.

use zerodb_domain::auth::AuthSettings;

/// Default per-key request budget per minute.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 6000;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Names of the AWS resources a function uses (set by template.yaml).
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table: String,
    pub bucket: String,
    pub events_queue_url: String,
}

/// Everything a Lambda function needs.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    pub auth: AuthSettings,
    pub resources: AwsResources,
}

fn var(name: &str, problems: &mut Vec<String>) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            problems.push(format!("{name} is not set"));
            String::new()
        }
    }
}

/// `ZERODB_RATE_LIMIT_PER_MINUTE` (default 6000; 0 turns the limit off).
pub fn rate_limit_from_env(problems: &mut Vec<String>) -> u32 {
    match std::env::var("ZERODB_RATE_LIMIT_PER_MINUTE") {
        Err(_) => DEFAULT_RATE_LIMIT_PER_MINUTE,
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            problems.push(format!(
                "ZERODB_RATE_LIMIT_PER_MINUTE must be a whole number, not '{v}'"
            ));
            0
        }),
    }
}

/// Checks a signing secret is long enough for HS256.
pub fn check_jwt_secret(secret: &[u8], problems: &mut Vec<String>) {
    if secret.len() < 32 {
        problems.push("ZERODB_JWT_SECRET must be at least 32 bytes".into());
    }
}

impl LambdaConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let jwt = var("ZERODB_JWT_SECRET", &mut problems).into_bytes();
        if !jwt.is_empty() {
            check_jwt_secret(&jwt, &mut problems);
        }
        let rate = rate_limit_from_env(&mut problems);
        let resources = AwsResources {
            table: var("ZERODB_TABLE", &mut problems),
            bucket: var("ZERODB_BUCKET", &mut problems),
            events_queue_url: var("ZERODB_EVENTS_QUEUE_URL", &mut problems),
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
