//! Application state: configuration, storage and services, built once at start (in
//! Lambda's init phase) and shared by every request.

use std::ops::Deref;
use std::sync::Arc;

use zerodb_domain::auth::{AuthService, AuthSettings};
use zerodb_domain::clock::Clock;
use zerodb_domain::events::EventSink;
use zerodb_domain::store::Stores;

pub struct AppInner {
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
    pub auth: AuthService,
    pub events: EventSink,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl AppState {
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, settings: &AuthSettings) -> Self {
        let auth = AuthService::new(stores.table.clone(), clock.clone(), settings);
        let events = EventSink::new(stores.events.clone(), clock.clone());
        AppState(Arc::new(AppInner {
            stores,
            clock,
            auth,
            events,
        }))
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
