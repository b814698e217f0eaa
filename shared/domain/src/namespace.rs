//! Memory namespaces: the unit of isolation inside an account.

use std::fmt;

/// The kinds of namespace that carry an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceKind {
    Session,
    Project,
    User,
}

impl NamespaceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceKind::Session => "session",
            NamespaceKind::Project => "project",
            NamespaceKind::User => "user",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "session" => Some(NamespaceKind::Session),
            "project" => Some(NamespaceKind::Project),
            "user" => Some(NamespaceKind::User),
            _ => None,
        }
    }
}

/// A validated namespace: `global`, `default`, `<kind>:<id>`, or a bare name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Shared by all of an account's keys; writing needs an explicit scope.
    Global,
    /// The account's private namespace for writes that name none.
    Default,
    Scoped(NamespaceKind, NamespaceId),
    /// A bare name (`opencode`): a namespace of its own, as clients that keep their
    /// memories under one word expect. It holds no `:` or `/`, so it never collides with a
    /// `<kind>:<id>` namespace, and the kind words themselves are not names.
    Named(NamespaceId),
}

/// The id part of a namespace: 1–128 characters of `[A-Za-z0-9._@-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamespaceId(String);

impl NamespaceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 128 {
            return Err("namespace id must be 1-128 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
        {
            return Err("namespace id may only use letters, digits, '.', '_', '@' and '-'".into());
        }
        Ok(NamespaceId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Namespace {
    /// Parses the memory form `session:<id>`, `project:<id>`, `user:<id>`, `global`,
    /// `default`, or a bare name.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_with(s, ':')
    }

    /// Parses the scope form, where the separator is `/` (`session/run-42`).
    pub fn parse_scope_form(s: &str) -> Result<Self, String> {
        Self::parse_with(s, '/')
    }

    fn parse_with(s: &str, sep: char) -> Result<Self, String> {
        match s {
            "global" => return Ok(Namespace::Global),
            "default" => return Ok(Namespace::Default),
            _ => {}
        }
        let Some((kind, id)) = s.split_once(sep) else {
            if NamespaceKind::parse(s).is_some() {
                return Err(format!(
                    "'{s}' needs an id: use {s}{sep}<id>, e.g. {s}{sep}run-42"
                ));
            }
            return NamespaceId::parse(s).map(Namespace::Named).map_err(|m| {
                format!(
                    "'{s}' is not a namespace ({}): use global, default, a bare name such as opencode, or session{sep}<id>, project{sep}<id>, user{sep}<id>",
                    m.replacen("namespace id", "a bare name", 1)
                )
            });
        };
        let kind = NamespaceKind::parse(kind).ok_or_else(|| {
            format!("unknown namespace kind '{kind}': use session, project or user")
        })?;
        Ok(Namespace::Scoped(kind, NamespaceId::parse(id)?))
    }

    pub fn kind(&self) -> Option<NamespaceKind> {
        match self {
            Namespace::Scoped(k, _) => Some(*k),
            _ => None,
        }
    }

    /// The scope spelling (`session/run-42`).
    pub fn scope_form(&self) -> String {
        match self {
            Namespace::Global => "global".into(),
            Namespace::Default => "default".into(),
            Namespace::Scoped(k, id) => format!("{}/{}", k.as_str(), id.as_str()),
            Namespace::Named(name) => name.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Namespace::Global => f.write_str("global"),
            Namespace::Default => f.write_str("default"),
            Namespace::Scoped(k, id) => write!(f, "{}:{}", k.as_str(), id.as_str()),
            Namespace::Named(name) => f.write_str(name.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memory_and_scope_forms_to_the_same_namespace() {
        let a = Namespace::parse("session:run-42").unwrap();
        let b = Namespace::parse_scope_form("session/run-42").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "session:run-42");
        assert_eq!(a.scope_form(), "session/run-42");
    }

    #[test]
    fn rejects_unknown_kinds_and_bad_ids() {
        assert!(
            Namespace::parse("team:x")
                .unwrap_err()
                .contains("unknown namespace kind")
        );
        assert!(Namespace::parse("session:").is_err());
        assert!(Namespace::parse("session:a b").is_err());
        assert!(
            Namespace::parse("session")
                .unwrap_err()
                .contains("needs an id")
        );
        assert!(
            Namespace::parse("open code")
                .unwrap_err()
                .contains("bare name")
        );
    }

    #[test]
    fn a_bare_name_is_a_namespace_of_its_own() {
        let oc = Namespace::parse("opencode").unwrap();
        assert_eq!(oc, Namespace::parse_scope_form("opencode").unwrap());
        assert_eq!(oc.to_string(), "opencode");
        assert_eq!(oc.scope_form(), "opencode");
        assert_eq!(oc.kind(), None);
        assert_ne!(oc, Namespace::Default);
        assert_eq!(Namespace::parse("global").unwrap(), Namespace::Global);
        assert_eq!(Namespace::parse("default").unwrap(), Namespace::Default);
    }
}
