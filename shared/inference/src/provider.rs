//! Calls to providers: one HTTP client per provider (connect timeout, whole-call timeout),
//! the provider's own auth headers, and retries with backoff on 429 and 5xx, honouring
//! Retry-After, before anything has been sent to our client. Once a response is handed
//! back its bytes are the caller's: dropping it (a client that went away) closes the
//! upstream connection, which cancels the provider's work.

use std::collections::HashMap;
use std::time::Duration;

use crate::ProviderKind;
use crate::catalog::{KeySource, Provider};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

/// The Anthropic API version sent to Anthropic providers.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Longest Retry-After the gateway waits out itself; a longer one goes back to the client
/// as its own Retry-After rather than holding the request open.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// First backoff when the provider gave no Retry-After; doubles per attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Bytes of a provider's error body kept for the message (they can be pages of HTML).
const MAX_ERROR_BODY: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status after the retries it was due.
    #[error("provider `{provider}` answered {status}: {message}")]
    Status {
        provider: String,
        status: u16,
        retry_after: Option<u64>,
        message: String,
    },
    #[error("provider `{provider}` did not answer within {seconds} s")]
    Timeout { provider: String, seconds: u64 },
    #[error("provider `{provider}` could not be reached: {reason}")]
    Unreachable { provider: String, reason: String },
    #[error("provider `{provider}` has no API key: set {hint}")]
    NoKey { provider: String, hint: String },
}

impl ProviderError {
    /// Whether a fallback alias is worth trying: the provider failed, not the request.
    pub fn is_provider_fault(&self) -> bool {
        match self {
            ProviderError::Status { status, .. } => *status == 429 || *status >= 500,
            ProviderError::Timeout { .. } | ProviderError::Unreachable { .. } => true,
            ProviderError::NoKey { .. } => false,
        }
    }
}

/// A provider ready to call.
pub struct ProviderClient {
    provider: Provider,
    http: reqwest::Client,
    headers: Result<HeaderMap, String>,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headers hold the key: never printed.
        f.debug_struct("ProviderClient")
            .field("provider", &self.provider.name)
            .field("base_url", &self.provider.base_url)
            .finish_non_exhaustive()
    }
}

impl ProviderClient {
    /// `key` is the provider's API key, already read from where `provider.key` says (None
    /// when it names none, or when it could not be read: calls then fail with a message
    /// saying what to set).
    pub fn new(provider: Provider, key: Option<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(provider.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let headers = auth_headers(&provider, key);
        Ok(ProviderClient {
            provider,
            http,
            headers,
        })
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Whether calls can be authenticated (a key was found, or none is needed).
    pub fn is_ready(&self) -> bool {
        self.headers.is_ok()
    }

    fn url(&self) -> String {
        match self.provider.kind {
            ProviderKind::Anthropic => format!("{}/v1/messages", self.provider.base_url),
            ProviderKind::Openai => format!("{}/chat/completions", self.provider.base_url),
        }
    }

    /// POSTs `body` (already in this provider's format) and returns the successful
    /// response with its body unread, retrying 429/5xx and connection failures up to the
    /// provider's `max_retries`.
    pub async fn send(&self, body: bytes::Bytes) -> Result<reqwest::Response, ProviderError> {
        let headers = self.headers.clone().map_err(|hint| ProviderError::NoKey {
            provider: self.provider.name.clone(),
            hint,
        })?;
        let url = self.url();
        let mut attempt = 0u32;
        loop {
            let sent = self
                .http
                .post(&url)
                .headers(headers.clone())
                .timeout(self.provider.timeout)
                // A clone of Bytes shares the buffer: retries copy nothing.
                .body(body.clone())
                .send()
                .await;
            let retries_left = attempt < self.provider.max_retries;
            let backoff = FIRST_BACKOFF * 2u32.saturating_pow(attempt);
            attempt += 1;
            let failure = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    let retryable =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    let wait = retry_after.map_or(backoff, Duration::from_secs);
                    if retryable && retries_left && wait <= MAX_RETRY_WAIT {
                        tracing::info!(
                            provider = %self.provider.name,
                            status = status.as_u16(),
                            wait_ms = wait.as_millis() as u64,
                            attempt,
                            "provider refused; retrying"
                        );
                        drop(resp);
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let message = error_message(resp).await;
                    ProviderError::Status {
                        provider: self.provider.name.clone(),
                        status: status.as_u16(),
                        retry_after,
                        message,
                    }
                }
                Err(e) if e.is_timeout() => ProviderError::Timeout {
                    provider: self.provider.name.clone(),
                    seconds: self.provider.timeout.as_secs().max(1),
                },
                Err(e) => {
                    if retries_left && e.is_connect() {
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    ProviderError::Unreachable {
                        provider: self.provider.name.clone(),
                        reason: without_url(&e),
                    }
                }
            };
            return Err(failure);
        }
    }
}

/// The provider's auth and format headers, or what to set when its key is missing.
fn auth_headers(provider: &Provider, key: Option<String>) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if provider.kind == ProviderKind::Anthropic {
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    let key = match (&provider.key, key) {
        (KeySource::None, _) => return Ok(headers),
        (_, Some(k)) if !k.is_empty() => k,
        (KeySource::Env(var), _) => return Err(format!("the environment variable {var}")),
        (KeySource::Secret(id), _) => {
            return Err(format!("the secret {id} in AWS Secrets Manager"));
        }
    };
    let (name, value) = match provider.kind {
        ProviderKind::Anthropic => ("x-api-key", key),
        ProviderKind::Openai => ("authorization", format!("Bearer {key}")),
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "a key made of visible ASCII characters".to_owned())?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(headers)
}

/// Retry-After in whole seconds (the HTTP-date form is rare from APIs and treated as
/// absent).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s.ceil() as u64)
}

/// The provider's own error message when its body is one of the two formats' error
/// envelopes, else the start of the body.
async fn error_message(resp: reqwest::Response) -> String {
    let bytes = resp.bytes().await.unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(m) = v
            .pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(|m| m.as_str())
    {
        return m.chars().take(MAX_ERROR_BODY).collect();
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(MAX_ERROR_BODY)
        .collect()
}

/// A reqwest error's text without the URL (which may carry a key in a query string).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<provider>");
    }
    s
}

/// Every configured provider's client, by provider name.
#[derive(Debug, Default)]
pub struct Providers(HashMap<String, ProviderClient>);

impl Providers {
    pub fn new(clients: impl IntoIterator<Item = ProviderClient>) -> Self {
        Providers(
            clients
                .into_iter()
                .map(|c| (c.provider.name.clone(), c))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&ProviderClient> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::HeaderMap as AxumHeaders;
    use axum::routing::post;

    use super::*;

    /// A provider that answers each call with the next of `replies` (status, Retry-After),
    /// then 200; it records the headers of each call.
    async fn fake(
        replies: Vec<(u16, Option<&'static str>)>,
    ) -> (
        String,
        Arc<AtomicUsize>,
        Arc<std::sync::Mutex<Vec<AxumHeaders>>>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, s) = (calls.clone(), seen.clone());
        let handler = move |headers: AxumHeaders| {
            let (c, s, replies) = (c.clone(), s.clone(), replies.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push(headers);
                let (status, retry) = replies.get(n).copied().unwrap_or((200, None));
                let mut resp =
                    axum::response::Response::new(axum::body::Body::from(if status == 200 {
                        r#"{"ok":true}"#.to_owned()
                    } else {
                        format!(r#"{{"error":{{"type":"x","message":"busy {n}"}}}}"#)
                    }));
                *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                if let Some(r) = retry {
                    resp.headers_mut().insert("retry-after", r.parse().unwrap());
                }
                resp
            }
        };
        let app = axum::Router::new()
            .route("/v1/messages", post(handler.clone()))
            .route("/v1/chat/completions", post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), calls, seen)
    }

    fn provider(
        kind: ProviderKind,
        base_url: String,
        key: KeySource,
        max_retries: u32,
    ) -> Provider {
        Provider {
            name: "fake".into(),
            kind,
            base_url,
            key,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            max_retries,
        }
    }

    #[tokio::test]
    async fn retries_429_and_5xx_honouring_retry_after_then_succeeds() {
        let (base, calls, seen) = fake(vec![(429, Some("0")), (503, None)]).await;
        let client = ProviderClient::new(
            provider(ProviderKind::Anthropic, base, KeySource::Env("K".into()), 2),
            Some("sk-test".into()),
        )
        .unwrap();
        let resp = client.send(bytes::Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(resp.text().await.unwrap(), r#"{"ok":true}"#);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let h = &seen.lock().unwrap()[0];
        assert_eq!(h["x-api-key"], "sk-test");
        assert_eq!(h["anthropic-version"], ANTHROPIC_VERSION);
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_with_the_providers_message() {
        let (base, calls, seen) = fake(vec![(500, None), (500, None), (500, None)]).await;
        let client = ProviderClient::new(
            provider(
                ProviderKind::Openai,
                format!("{base}/v1"),
                KeySource::Env("K".into()),
                1,
            ),
            Some("key-1".into()),
        )
        .unwrap();
        let err = client
            .send(bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one try and one retry");
        match &err {
            ProviderError::Status {
                status, message, ..
            } => {
                assert_eq!(*status, 500);
                assert_eq!(message, "busy 1");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_provider_fault());
        assert_eq!(seen.lock().unwrap()[0]["authorization"], "Bearer key-1");
    }

    #[tokio::test]
    async fn a_long_retry_after_is_passed_back_not_waited_out() {
        let (base, calls, _) = fake(vec![(429, Some("120"))]).await;
        let client = ProviderClient::new(
            provider(ProviderKind::Anthropic, base, KeySource::None, 3),
            None,
        )
        .unwrap();
        match client
            .send(bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err()
        {
            ProviderError::Status {
                status: 429,
                retry_after: Some(120),
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried_and_a_missing_key_says_what_to_set() {
        let (base, calls, _) = fake(vec![(400, None)]).await;
        let client = ProviderClient::new(
            provider(ProviderKind::Anthropic, base.clone(), KeySource::None, 3),
            None,
        )
        .unwrap();
        let err = client
            .send(bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(!err.is_provider_fault());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let client = ProviderClient::new(
            provider(
                ProviderKind::Openai,
                base,
                KeySource::Env("NIM_KEY".into()),
                3,
            ),
            None,
        )
        .unwrap();
        let err = client
            .send(bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("set the environment variable NIM_KEY"),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no call without a key");
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_reported_after_its_retries() {
        // A port nothing listens on: bind, note it, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = ProviderClient::new(
            provider(
                ProviderKind::Openai,
                format!("http://127.0.0.1:{port}/v1"),
                KeySource::None,
                1,
            ),
            None,
        )
        .unwrap();
        let err = client
            .send(bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable { .. }), "{err:?}");
        assert!(
            !err.to_string().contains("127.0.0.1"),
            "no URL in the message: {err}"
        );
    }
}
