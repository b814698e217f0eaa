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

/// A validated namespace: `global`, `default`, or `<kind>:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Shared by all of an account's keys; writing needs an explicit scope.
    Global,
    /// The account's private namespace for writes that name none.
    Default,
    Scoped(NamespaceKind, NamespaceId),
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
    /// Parses the memory form `session:<id>`, `project:<id>`, `user:<id>`, `global`, `default`.
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
        let (kind, id) = s.split_once(sep).ok_or_else(|| {
            format!(
                "'{s}' is not a namespace: use global, default, or session{sep}<id>, project{sep}<id>, user{sep}<id>"
            )
        })?;
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
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Namespace::Global => f.write_str("global"),
            Namespace::Default => f.write_str("default"),
            Namespace::Scoped(k, id) => write!(f, "{}:{}", k.as_str(), id.as_str()),
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
        assert!(Namespace::parse("opencode").is_err());
    }
}
