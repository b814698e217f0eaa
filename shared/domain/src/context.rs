//! What a process builds once at start and every endpoint group and worker shares:
//! storage, the clock, credentials, events, settings, secrets, and the services built on
//! them (each built once, on first use, and shared by whoever asks for it next).
//!
//! zerodb-local builds one context for all its groups and workers; a Lambda builds one in
//! its init phase. Groups and workers take what they need from it, so adding one touches
//! nothing but its own crate.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::auth::{AuthService, AuthSettings};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::queues::QueueName;
use crate::store::Stores;

/// Where the process runs, which decides what may be kept in memory and what may be
/// left running after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// One long-running process, the only writer of its storage (zerodb-local): whole
    /// namespaces may be cached, and work may finish after the response.
    Local,
    /// Many short-lived instances sharing storage, frozen as soon as they answer
    /// (Lambda): nothing is cached across writers, nothing runs after the response.
    Lambda,
}

/// Configuration as read once at start: the process environment, plus what a command
/// line adds. Blank values count as unset (`FOO= cmd` is how shells unset things).
#[derive(Clone, Default)]
pub struct Settings(Arc<BTreeMap<String, String>>);

impl Settings {
    /// A snapshot of the process environment.
    pub fn from_env() -> Self {
        Settings(Arc::new(std::env::vars().collect()))
    }

    /// These values only (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Settings(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }

    /// The same settings with `name` set (a command-line flag over the environment).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.0).insert(name.to_owned(), value.into());
        self
    }

    /// The value of `name`, trimmed; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value as it was set, untrimmed (secrets, file contents); `None` when unset.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A whole-number setting of at least `min`: `default` when unset, and a message
    /// naming the setting and what it must be when it is anything else.
    pub fn whole_number<T>(&self, name: &str, default: T, min: T) -> Result<T, String>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Default + Copy,
    {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.parse::<T>() {
            Ok(n) if n >= min => Ok(n),
            _ if min > T::default() => Err(format!(
                "{name} must be a whole number of at least {min}, not '{v}'"
            )),
            _ => Err(format!("{name} must be a whole number, not '{v}'")),
        }
    }

    /// A lookup for configuration readers that take one.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.get(name).map(str::to_owned)
    }
}

impl std::fmt::Debug for Settings {
    // Names only: values include secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Secrets kept outside the configuration (AWS Secrets Manager on AWS).
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The secret's text; `None` when it does not exist or cannot be read (the adapter
    /// logs why, never the value).
    async fn get(&self, id: &str) -> Option<String>;
}

/// A deployment with no secret store: every lookup finds nothing.
pub struct NoSecrets;

#[async_trait]
impl Secrets for NoSecrets {
    async fn get(&self, id: &str) -> Option<String> {
        tracing::warn!(secret = %id, "no secret store in this deployment; the secret is not read");
        None
    }
}

/// What [`Context::new`] is built from.
pub struct Parts {
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
    pub auth: AuthSettings,
    pub settings: Settings,
    pub deployment: Deployment,
    pub secrets: Arc<dyn Secrets>,
}

struct Inner {
    stores: Stores,
    clock: Arc<dyn Clock>,
    auth: AuthService,
    events: EventSink,
    settings: Settings,
    deployment: Deployment,
    secrets: Arc<dyn Secrets>,
    /// One cell per service type; see [`Context::service`].
    services: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

/// The shared state of a process. Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct Context(Arc<Inner>);

impl Context {
    pub fn new(parts: Parts) -> Self {
        let auth = AuthService::new(parts.stores.table.clone(), parts.clock.clone(), &parts.auth);
        let events = EventSink::new(
            parts.stores.queue(QueueName::Events).clone(),
            parts.clock.clone(),
        );
        Context(Arc::new(Inner {
            stores: parts.stores,
            clock: parts.clock,
            auth,
            events,
            settings: parts.settings,
            deployment: parts.deployment,
            secrets: parts.secrets,
            services: Mutex::default(),
        }))
    }

    pub fn stores(&self) -> &Stores {
        &self.0.stores
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }
    pub fn auth(&self) -> &AuthService {
        &self.0.auth
    }
    /// Where writes announce themselves, after commit.
    pub fn events(&self) -> &EventSink {
        &self.0.events
    }
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }
    pub fn deployment(&self) -> Deployment {
        self.0.deployment
    }
    pub fn secrets(&self) -> &Arc<dyn Secrets> {
        &self.0.secrets
    }

    fn cell<T: Send + Sync + 'static>(&self) -> Arc<tokio::sync::OnceCell<T>> {
        let mut services = self.0.services.lock().unwrap_or_else(|p| p.into_inner());
        let cell = services
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(tokio::sync::OnceCell::<T>::new()))
            .clone();
        cell.downcast::<tokio::sync::OnceCell<T>>()
            .unwrap_or_else(|_| unreachable!("a service cell is keyed by its own type"))
    }

    /// The one `T` of this process: built by `build` on first use, the same value for
    /// every later caller. Groups and workers that need the same service (the memory API
    /// and the embedding worker, say) ask for it here and so share one, with its caches.
    pub async fn service<T, F, Fut>(&self, build: F) -> anyhow::Result<T>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let cell = self.cell::<T>();
        cell.get_or_try_init(|| build(self.clone())).await.cloned()
    }

    /// Sets the `T` that [`Context::service`] returns from now on (tests, benchmarks and
    /// operators that configure a service themselves).
    pub fn provide<T: Clone + Send + Sync + 'static>(&self, value: T) {
        let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(value)));
        self.0
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<T>(), cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_settings_are_unset_and_debug_shows_no_values() {
        let s = Settings::from_pairs([("A", " x "), ("B", "  "), ("SECRET", "hunter2")]);
        assert_eq!(s.get("A"), Some("x"));
        assert_eq!(s.get("B"), None);
        assert_eq!(s.get("C"), None);
        assert_eq!(s.clone().with("C", "y").get("C"), Some("y"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
