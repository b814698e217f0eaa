//! Scopes: `<service>:<permission>[:<namespace>]`, parsed into types, with the two
//! questions every endpoint asks: does a key's scope set grant this operation, and may a
//! key mint a key holding that scope.
//!
//! Grammar (also in the README):
//! ```text
//! scope      = service ":" permission [ ":" namespace ]
//! service    = "zerodb" | "inference" | "memory" | "file" | "agent" | "mcp" | "*"
//! permission = "read" | "write" | "call" | "admin" | "*"
//! namespace  = "*" | "global" | "default" | kind "/" ( id | "*" ) | name
//! kind       = "session" | "project" | "user"
//! name       = id                ; a bare-name namespace (`opencode`), not a kind word
//! ```
//! A scope without a namespace (or with `*`) covers every namespace except writes to
//! `global`, which need an explicit `:global` scope, because `global` is shared by every
//! key of the account.

use std::fmt;
use std::str::FromStr;

use crate::namespace::{Namespace, NamespaceKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Zerodb,
    Inference,
    Memory,
    File,
    Agent,
    Mcp,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Zerodb,
        Service::Inference,
        Service::Memory,
        Service::File,
        Service::Agent,
        Service::Mcp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Zerodb => "zerodb",
            Service::Inference => "inference",
            Service::Memory => "memory",
            Service::File => "file",
            Service::Agent => "agent",
            Service::Mcp => "mcp",
        }
    }

    /// Services whose operations act inside a memory namespace.
    fn takes_namespace(self) -> bool {
        matches!(
            self,
            Service::Memory | Service::Zerodb | Service::File | Service::Agent
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Write,
    Call,
    Admin,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Call => "call",
            Permission::Admin => "admin",
        }
    }
}

/// `Some(x)` is exactly `x`; `None` is the wildcard `*`.
type Pick<T> = Option<T>;

/// Which namespaces a scope reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NamespaceSel {
    /// Every namespace, except writes to `global`.
    All,
    /// Every namespace of one kind (`session/*`).
    AnyOf(NamespaceKind),
    Exact(Namespace),
}

impl NamespaceSel {
    fn reaches(&self, ns: &Namespace, permission: Permission) -> bool {
        match self {
            NamespaceSel::All => !(*ns == Namespace::Global && permission == Permission::Write),
            NamespaceSel::AnyOf(kind) => ns.kind() == Some(*kind),
            NamespaceSel::Exact(x) => x == ns,
        }
    }
}

/// One parsed scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    service: Pick<Service>,
    permission: Pick<Permission>,
    namespace: NamespaceSel,
}

/// Why a scope string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope '{scope}': {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: String,
}

impl Scope {
    pub fn new(service: Service, permission: Permission) -> Self {
        Scope {
            service: Some(service),
            permission: Some(permission),
            namespace: NamespaceSel::All,
        }
    }

    /// Everything except writing `global` (`*:*`).
    pub fn everything() -> Self {
        Scope {
            service: None,
            permission: None,
            namespace: NamespaceSel::All,
        }
    }

    pub fn in_namespace(mut self, ns: Namespace) -> Self {
        self.namespace = NamespaceSel::Exact(ns);
        self
    }

    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let err = |reason: String| ScopeError {
            scope: text.to_owned(),
            reason,
        };
        if text.len() > 200 {
            return Err(err("scopes are at most 200 characters".into()));
        }
        let mut parts = text.splitn(3, ':');
        let service = parts.next().unwrap_or_default();
        let permission = parts
            .next()
            .ok_or_else(|| err("expected <service>:<permission>[:<namespace>]".into()))?;
        let namespace = parts.next();

        let service = match service {
            "*" => None,
            s => Some(Service::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
                err(format!("unknown service '{s}'; valid: zerodb, inference, memory, file, agent, mcp, *"))
            })?),
        };
        let permission = match permission {
            "*" => None,
            "read" => Some(Permission::Read),
            "write" => Some(Permission::Write),
            "call" => Some(Permission::Call),
            "admin" => Some(Permission::Admin),
            p => {
                return Err(err(format!(
                    "unknown permission '{p}'; valid: read, write, call, admin, *"
                )));
            }
        };
        let namespace = match namespace {
            None | Some("*") => NamespaceSel::All,
            Some(ns) => {
                if service.is_some_and(|s| !s.takes_namespace()) {
                    return Err(err(format!(
                        "service '{}' does not act on namespaces; drop the ':{ns}' part",
                        service.map(Service::as_str).unwrap_or("*")
                    )));
                }
                match ns.split_once('/') {
                    Some((kind, "*")) => {
                        NamespaceSel::AnyOf(NamespaceKind::parse(kind).ok_or_else(|| {
                            err(format!(
                                "unknown namespace kind '{kind}': use session, project or user"
                            ))
                        })?)
                    }
                    _ => NamespaceSel::Exact(Namespace::parse_scope_form(ns).map_err(err)?),
                }
            }
        };
        Ok(Scope {
            service,
            permission,
            namespace,
        })
    }

    fn permissions(&self) -> Vec<Permission> {
        match self.permission {
            Some(p) => vec![p],
            None => vec![
                Permission::Read,
                Permission::Write,
                Permission::Call,
                Permission::Admin,
            ],
        }
    }

    /// Whether this scope allows `permission` on `service`, inside `namespace` when the
    /// operation acts on one. A namespace-restricted scope grants only operations inside
    /// its namespaces.
    pub fn grants(
        &self,
        service: Service,
        permission: Permission,
        namespace: Option<&Namespace>,
    ) -> bool {
        if self.service.is_some_and(|s| s != service)
            || self.permission.is_some_and(|p| p != permission)
        {
            return false;
        }
        match namespace {
            Some(ns) => self.namespace.reaches(ns, permission),
            None => self.namespace == NamespaceSel::All,
        }
    }

    /// Whether a key holding `self` may mint a key holding `other`: everything `other`
    /// grants, `self` grants too.
    pub fn covers(&self, other: &Scope) -> bool {
        let service_ok = match (self.service, other.service) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        let permission_ok = match (self.permission, other.permission) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        if !service_ok || !permission_ok {
            return false;
        }
        match (&self.namespace, &other.namespace) {
            (NamespaceSel::All, NamespaceSel::All) => true,
            (_, NamespaceSel::All) => false,
            (NamespaceSel::All, NamespaceSel::AnyOf(_)) => true,
            (NamespaceSel::AnyOf(a), NamespaceSel::AnyOf(b)) => a == b,
            (NamespaceSel::Exact(_), NamespaceSel::AnyOf(_)) => false,
            (mine, NamespaceSel::Exact(ns)) => {
                other.permissions().into_iter().all(|p| mine.reaches(ns, p))
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.service.map(Service::as_str).unwrap_or("*"))?;
        f.write_str(":")?;
        f.write_str(self.permission.map(Permission::as_str).unwrap_or("*"))?;
        match &self.namespace {
            NamespaceSel::All => Ok(()),
            NamespaceSel::AnyOf(k) => write!(f, ":{}/*", k.as_str()),
            NamespaceSel::Exact(ns) => write!(f, ":{}", ns.scope_form()),
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

/// The scopes a credential holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn new(scopes: Vec<Scope>) -> Self {
        ScopeSet(scopes)
    }

    /// What an account's root key holds: everything, `global` writes included.
    pub fn root() -> Self {
        ScopeSet(vec![
            Scope::everything(),
            Scope::new(Service::Memory, Permission::Write).in_namespace(Namespace::Global),
        ])
    }

    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Self, ScopeError> {
        texts
            .iter()
            .map(|t| Scope::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(ScopeSet)
    }

    pub fn grants(
        &self,
        service: Service,
        permission: Permission,
        namespace: Option<&Namespace>,
    ) -> bool {
        self.0
            .iter()
            .any(|s| s.grants(service, permission, namespace))
    }

    /// Whether a key holding this set may mint `scope`.
    pub fn covers(&self, scope: &Scope) -> bool {
        self.0.iter().any(|s| s.covers(scope))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::parse(s).unwrap()
    }

    #[test]
    fn seed_scope_grants_its_session_namespace_only() {
        let s = Scope::parse("memory:write:session/run-42").unwrap();
        assert!(s.grants(
            Service::Memory,
            Permission::Write,
            Some(&ns("session:run-42"))
        ));
        assert!(!s.grants(
            Service::Memory,
            Permission::Write,
            Some(&ns("session:run-43"))
        ));
        assert!(!s.grants(
            Service::Memory,
            Permission::Read,
            Some(&ns("session:run-42"))
        ));
        assert!(!s.grants(Service::Memory, Permission::Write, None));
    }

    #[test]
    fn unrestricted_write_excludes_global_but_explicit_global_grants_it() {
        let any = Scope::parse("memory:write").unwrap();
        assert!(any.grants(Service::Memory, Permission::Write, Some(&ns("project:x"))));
        assert!(!any.grants(Service::Memory, Permission::Write, Some(&Namespace::Global)));
        assert!(Scope::parse("memory:read").unwrap().grants(
            Service::Memory,
            Permission::Read,
            Some(&Namespace::Global)
        ));
        let g = Scope::parse("memory:write:global").unwrap();
        assert!(g.grants(Service::Memory, Permission::Write, Some(&Namespace::Global)));
        assert!(!Scope::parse("*:*").unwrap().grants(
            Service::Memory,
            Permission::Write,
            Some(&Namespace::Global)
        ));
    }

    #[test]
    fn kind_wildcards_reach_every_namespace_of_that_kind() {
        let s = Scope::parse("memory:read:session/*").unwrap();
        assert!(s.grants(Service::Memory, Permission::Read, Some(&ns("session:a"))));
        assert!(!s.grants(Service::Memory, Permission::Read, Some(&ns("project:a"))));
    }

    #[test]
    fn invalid_scopes_name_the_problem() {
        for (text, needle) in [
            ("memory", "expected <service>:<permission>"),
            ("storage:read", "unknown service 'storage'"),
            ("memory:delete", "unknown permission 'delete'"),
            ("memory:read:team/x", "unknown namespace kind 'team'"),
            ("inference:call:session/x", "does not act on namespaces"),
            ("memory:read:session/", "namespace id"),
        ] {
            let e = Scope::parse(text).unwrap_err();
            assert_eq!(e.scope, text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_bare_name_scope_grants_that_namespace_only() {
        let s = Scope::parse("memory:write:opencode").unwrap();
        assert_eq!(s.to_string(), "memory:write:opencode");
        assert!(s.grants(Service::Memory, Permission::Write, Some(&ns("opencode"))));
        assert!(!s.grants(Service::Memory, Permission::Write, Some(&ns("other"))));
        assert!(!s.grants(
            Service::Memory,
            Permission::Write,
            Some(&Namespace::Default)
        ));
        assert!(!s.grants(Service::Memory, Permission::Write, None));
        assert!(Scope::parse("memory:write").unwrap().grants(
            Service::Memory,
            Permission::Write,
            Some(&ns("opencode"))
        ));
        assert!(
            Scope::parse("memory:read:session")
                .unwrap_err()
                .to_string()
                .contains("needs an id")
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "memory:write:session/run-42",
            "*:*",
            "inference:call",
            "memory:read:project/*",
            "memory:write:global",
        ] {
            assert_eq!(Scope::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_key_can_only_mint_what_it_holds() {
        let root = ScopeSet::root();
        for s in [
            "memory:write:session/run-42",
            "memory:read",
            "inference:call",
            "memory:write:global",
            "*:*",
        ] {
            assert!(
                root.covers(&Scope::parse(s).unwrap()),
                "root should cover {s}"
            );
        }
        let agent =
            ScopeSet::parse_all(&["memory:write:session/*", "memory:read:session/a"]).unwrap();
        assert!(agent.covers(&Scope::parse("memory:write:session/b").unwrap()));
        assert!(agent.covers(&Scope::parse("memory:read:session/a").unwrap()));
        assert!(!agent.covers(&Scope::parse("memory:read:session/b").unwrap()));
        assert!(!agent.covers(&Scope::parse("memory:write").unwrap()));
        assert!(!agent.covers(&Scope::parse("inference:call").unwrap()));
        let plain = ScopeSet::parse_all(&["memory:write"]).unwrap();
        assert!(!plain.covers(&Scope::parse("memory:write:global").unwrap()));
        assert!(!plain.covers(&Scope::parse("memory:*").unwrap()));
    }
}
