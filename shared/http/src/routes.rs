//! Routes declared once: a handler's `#[utoipa::path]` gives its method and path, and
//! [`routes!`](crate::routes) turns a list of such handlers into the axum routes, their
//! OpenAPI operations (with every schema they use) and an index entry naming the handler,
//! all from that one declaration.
//!
//! Credentials are declared per set of routes, not per handler:
//! [`Routes::authenticated`] adds the security schemes and the shared 401/403/429
//! responses to every operation of the set; [`Routes::public`] marks a set that needs no
//! credential. A set must be one or the other before it joins a group.

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::Route;
use std::convert::Infallible;
use tower::{Layer, Service};
use utoipa::IntoResponses;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{OpenApi, RefOr, Schema};

/// One served route, and the handler behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteInfo {
    pub method: String,
    pub path: String,
    /// `crate::module::handler`.
    pub handler: String,
}

/// Handlers collected by [`routes!`](crate::routes), before their credentials are said.
pub struct RouteSet<S> {
    router: Router<S>,
    doc: OpenApi,
    index: Vec<RouteInfo>,
}

/// What `utoipa_axum::routes!` yields for one handler.
#[doc(hidden)]
pub type One<S> = (
    Vec<(String, RefOr<Schema>)>,
    utoipa::openapi::path::Paths,
    axum::routing::MethodRouter<S>,
);

impl<S: Clone + Send + Sync + 'static> RouteSet<S> {
    #[doc(hidden)]
    pub fn new() -> Self {
        RouteSet {
            router: Router::new(),
            doc: OpenApi::default(),
            index: Vec::new(),
        }
    }

    /// Adds one handler (what the macro expands to).
    #[doc(hidden)]
    pub fn add(mut self, (schemas, paths, method_router): One<S>, handler: &str) -> Self {
        let handler = handler.to_owned();
        for (path, item) in paths.paths {
            for method in methods_of(&item) {
                self.index.push(RouteInfo {
                    method: method.to_owned(),
                    path: path.clone(),
                    handler: handler.clone(),
                });
            }
            self.router = self.router.route(&path, method_router.clone());
            match self.doc.paths.paths.get_mut(&path) {
                Some(existing) => existing.merge_operations(item),
                None => {
                    self.doc.paths.paths.insert(path, item);
                }
            }
        }
        self.doc
            .components
            .get_or_insert_with(Default::default)
            .schemas
            .extend(schemas);
        self
    }
}

/// Collects handlers annotated with `#[utoipa::path]` into a [`RouteSet`]: each one's
/// method and path come from its annotation, its name (`crate::module::handler`) goes into
/// the route index.
///
/// ```text
/// Routes::authenticated(zerodb_http::routes!(memory::remember, memory::recall))
/// ```
#[macro_export]
macro_rules! routes {
    ($($handler:path),+ $(,)?) => {{
        let set = $crate::routes::RouteSet::new();
        $(
            let set = set.add(
                $crate::__private::utoipa_axum::routes!($handler),
                ::std::any::type_name_of_val(&$handler),
            );
        )+
        set
    }};
}

fn methods_of(item: &PathItem) -> Vec<&'static str> {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
        ("HEAD", &item.head),
        ("OPTIONS", &item.options),
    ]
    .into_iter()
    .filter(|(_, op)| op.is_some())
    .map(|(m, _)| m)
    .collect()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
        &mut item.head,
        &mut item.options,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Routes whose credentials are declared, ready to join a group.
pub struct Routes<S> {
    router: Router<S>,
    doc: OpenApi,
    index: Vec<RouteInfo>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            doc: OpenApi::default(),
            index: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// Routes that take a credential (`X-API-Key` or `Authorization: Bearer`): each
    /// operation lists both schemes and the 401, 403 and 429 every such route may give.
    pub fn authenticated(mut set: RouteSet<S>) -> Self {
        let shared = crate::openapi::AuthErrors::responses();
        for item in set.doc.paths.paths.values_mut() {
            for op in operations(item) {
                op.security = Some(vec![
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                ]);
                for (status, response) in &shared {
                    op.responses
                        .responses
                        .entry(status.clone())
                        .or_insert_with(|| response.clone());
                }
            }
        }
        Routes {
            router: set.router,
            doc: set.doc,
            index: set.index,
        }
    }

    /// Routes that need no credential.
    pub fn public(set: RouteSet<S>) -> Self {
        Routes {
            router: set.router,
            doc: set.doc,
            index: set.index,
        }
    }

    /// Adds these responses to every operation that does not document its own for the
    /// same status (the refusals a whole group shares: a project's 404, a 409, a 422).
    pub fn responding<R: IntoResponses>(mut self) -> Self {
        let extra = R::responses();
        for item in self.doc.paths.paths.values_mut() {
            for op in operations(item) {
                for (status, response) in &extra {
                    op.responses
                        .responses
                        .entry(status.clone())
                        .or_insert_with(|| response.clone());
                }
            }
        }
        self
    }

    /// Both sets, as one.
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.doc.merge(other.doc);
        self.index.extend(other.index);
        self
    }

    /// A middleware for these routes only (e.g. the vendor error objects of the
    /// inference formats); it runs after routing, like axum's `route_layer`.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.route_layer(layer);
        self
    }

    pub fn index(&self) -> &[RouteInfo] {
        &self.index
    }

    pub(crate) fn into_parts(self) -> (Router<S>, OpenApi, Vec<RouteInfo>) {
        (self.router, self.doc, self.index)
    }
}
