//! DynamoDB expression building: conditions, updates and key conditions, always through
//! `#name`/`:value` placeholders so reserved words (`name`, `count`, `ttl`) are safe.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use zerodb_domain::store::{Condition, PK, SortKey, TTL, Update, Value};

use crate::convert::to_attr;

/// Attribute placeholders of one request. DynamoDB rejects unused placeholders and empty
/// maps, so names and values are only added when an expression uses them.
pub(crate) struct Expr {
    now: i64,
    names: HashMap<String, String>,
    by_attr: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    ttl_values: Option<(String, String)>,
}

impl Expr {
    /// `now` is the epoch second against which `ttl` decides expiry.
    pub(crate) fn new(now: i64) -> Self {
        Expr {
            now,
            names: HashMap::new(),
            by_attr: HashMap::new(),
            values: HashMap::new(),
            ttl_values: None,
        }
    }

    pub(crate) fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.by_attr.get(attr) {
            return p.clone();
        }
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), attr.to_owned());
        self.by_attr.insert(attr.to_owned(), p.clone());
        p
    }

    pub(crate) fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    /// True for an expired item, matching `store::is_expired`: only a numeric `ttl`
    /// counts (its type is checked first, which also keeps emulators from comparing a
    /// string with a number), and a fractional `ttl` expires once its whole part is
    /// reached, hence `ttl < now + 1`.
    pub(crate) fn expired(&mut self) -> String {
        let ttl = self.name(TTL);
        let (n, exp) = match &self.ttl_values {
            Some(v) => v.clone(),
            None => {
                let n = self.value(AttributeValue::S("N".to_owned()));
                let exp = self.value(AttributeValue::N(self.now.saturating_add(1).to_string()));
                self.ttl_values = Some((n.clone(), exp.clone()));
                (n, exp)
            }
        };
        format!("(attribute_type({ttl}, {n}) AND {ttl} < {exp})")
    }

    /// True for an absent item and for a live one.
    pub(crate) fn not_expired(&mut self) -> String {
        format!("(NOT {})", self.expired())
    }

    /// The condition with expired items treated as absent; `None` when it always holds.
    pub(crate) fn condition(&mut self, c: &Condition) -> Option<String> {
        match c {
            Condition::NotExists => {
                let pk = self.name(PK);
                Some(format!(
                    "(attribute_not_exists({pk}) OR {})",
                    self.expired()
                ))
            }
            Condition::Exists => {
                let pk = self.name(PK);
                Some(format!(
                    "(attribute_exists({pk}) AND {})",
                    self.not_expired()
                ))
            }
            Condition::Equals(attr, v) => {
                let a = self.name(attr);
                let v = self.value(to_attr(v));
                Some(format!("({a} = {v} AND {})", self.not_expired()))
            }
            Condition::AttributeNotExists(attr) => {
                let a = self.name(attr);
                Some(format!("(attribute_not_exists({a}) OR {})", self.expired()))
            }
            Condition::AttributeExists(attr) => {
                let a = self.name(attr);
                Some(format!(
                    "(attribute_exists({a}) AND {})",
                    self.not_expired()
                ))
            }
            Condition::AtLeast(attr, n) => {
                let a = self.name(attr);
                let v = self.value(to_attr(&Value::int(*n)));
                Some(format!("({a} >= {v} AND {})", self.not_expired()))
            }
            Condition::All(cs) => {
                let parts: Vec<String> = cs.iter().filter_map(|c| self.condition(c)).collect();
                if parts.is_empty() {
                    None
                } else {
                    Some(format!("({})", parts.join(" AND ")))
                }
            }
        }
    }

    /// An expression that always holds, for a ConditionCheck whose condition is empty.
    pub(crate) fn always(&mut self) -> String {
        let pk = self.name(PK);
        format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
    }

    /// The update expression of already normalised updates.
    pub(crate) fn update(&mut self, updates: &[Update]) -> String {
        let (mut set, mut remove, mut add) = (Vec::new(), Vec::new(), Vec::new());
        for u in updates {
            match u {
                Update::Set(a, v) => {
                    let a = self.name(a);
                    let v = self.value(to_attr(v));
                    set.push(format!("{a} = {v}"));
                }
                Update::Remove(a) => remove.push(self.name(a)),
                Update::Add(a, n) => {
                    let a = self.name(a);
                    let v = self.value(AttributeValue::N(n.to_string()));
                    add.push(format!("{a} {v}"));
                }
            }
        }
        if set.is_empty() && remove.is_empty() && add.is_empty() {
            // Some emulators fail an UpdateItem without an update expression; removing an
            // attribute no item has is the same no-op (create-if-absent) everywhere.
            remove.push(self.name("zerodb:noop"));
        }
        let mut clauses = Vec::new();
        if !set.is_empty() {
            clauses.push(format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        clauses.join(" ")
    }

    /// Key condition on `pk_attr`/`sk_attr`; `sort` must be normalised (no empty bounds).
    pub(crate) fn key_condition(
        &mut self,
        pk_attr: &str,
        sk_attr: &str,
        partition: &str,
        sort: &SortKey,
    ) -> String {
        let pk = self.name(pk_attr);
        let p = self.value(AttributeValue::S(partition.to_owned()));
        let head = format!("{pk} = {p}");
        let mut bound = |op: &str, s: &str| {
            let sk = self.name(sk_attr);
            let v = self.value(AttributeValue::S(s.to_owned()));
            format!("{head} AND {sk} {op} {v}")
        };
        match sort {
            SortKey::Any => head.clone(),
            SortKey::Gt(s) => bound(">", s),
            SortKey::Ge(s) => bound(">=", s),
            SortKey::Lt(s) => bound("<", s),
            SortKey::Le(s) => bound("<=", s),
            SortKey::BeginsWith(s) => {
                let sk = self.name(sk_attr);
                let v = self.value(AttributeValue::S(s.clone()));
                format!("{head} AND begins_with({sk}, {v})")
            }
            SortKey::Between(a, b) => {
                let sk = self.name(sk_attr);
                let a = self.value(AttributeValue::S(a.clone()));
                let b = self.value(AttributeValue::S(b.clone()));
                format!("{head} AND {sk} BETWEEN {a} AND {b}")
            }
        }
    }

    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(crate) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// Rewrites a sort condition so no bound is the empty string, which DynamoDB refuses as a
/// key value; `None` when nothing can match (key strings are never empty, and a BETWEEN
/// with its bounds reversed matches nothing, where DynamoDB would reject it).
pub(crate) fn normalize_sort(sort: &SortKey) -> Option<SortKey> {
    Some(match sort {
        SortKey::BeginsWith(p) if p.is_empty() => SortKey::Any,
        SortKey::Gt(s) | SortKey::Ge(s) if s.is_empty() => SortKey::Any,
        SortKey::Lt(s) | SortKey::Le(s) if s.is_empty() => return None,
        SortKey::Between(a, b) if a > b || b.is_empty() => return None,
        SortKey::Between(a, b) if a.is_empty() => SortKey::Le(b.clone()),
        other => other.clone(),
    })
}

/// Whether a sort-key value lies inside the query's range (byte order, as DynamoDB's).
pub(crate) fn sort_matches(sort: &SortKey, sk: &str) -> bool {
    match sort {
        SortKey::Any => true,
        SortKey::BeginsWith(p) => sk.starts_with(p.as_str()),
        SortKey::Between(a, b) => a.as_str() <= sk && sk <= b.as_str(),
        SortKey::Gt(s) => sk > s.as_str(),
        SortKey::Ge(s) => sk >= s.as_str(),
        SortKey::Lt(s) => sk < s.as_str(),
        SortKey::Le(s) => sk <= s.as_str(),
    }
}

/// Folds several changes to one attribute into one, as applying them in order would:
/// DynamoDB refuses an update expression that names an attribute twice. Combinations
/// with no single equivalent are left for DynamoDB to reject.
pub(crate) fn normalize_updates(updates: Vec<Update>) -> Vec<Update> {
    let mut out: Vec<Update> = Vec::with_capacity(updates.len());
    for u in updates {
        let attr = attr_of(&u);
        let Some(pos) = out.iter().position(|o| attr_of(o) == attr) else {
            out.push(u);
            continue;
        };
        let merged = match (&out[pos], &u) {
            (_, Update::Set(..) | Update::Remove(_)) => Some(u.clone()),
            (Update::Add(a, n), Update::Add(_, m)) => {
                n.checked_add(*m).map(|s| Update::Add(a.clone(), s))
            }
            (Update::Remove(a), Update::Add(_, m)) => Some(Update::Set(a.clone(), Value::int(*m))),
            (Update::Set(a, v), Update::Add(_, m)) => {
                number_plus(v, *m).map(|n| Update::Set(a.clone(), n))
            }
        };
        match merged {
            Some(m) => out[pos] = m,
            None => out.push(u),
        }
    }
    out
}

fn number_plus(v: &Value, m: i64) -> Option<Value> {
    match v {
        Value::N(n) => n.parse::<i64>().ok()?.checked_add(m).map(Value::int),
        _ => None,
    }
}

fn attr_of(u: &Update) -> &str {
    match u {
        Update::Set(a, _) | Update::Remove(a) | Update::Add(a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_reused_and_only_used_ones_sent() {
        let mut x = Expr::new(100);
        let c = x.condition(&Condition::All(vec![
            Condition::Exists,
            Condition::AttributeNotExists("ttl".into()),
        ]));
        let c = c.unwrap_or_default();
        assert!(c.contains("attribute_exists(#n0)"), "{c}");
        let names = x.names().unwrap_or_default();
        assert_eq!(names.len(), 2, "PK and ttl: {names:?}");
        assert_eq!(
            x.values().map(|v| v.len()),
            Some(2),
            "type tag and expiry bound once"
        );
        assert!(Expr::new(0).names().is_none());
    }

    #[test]
    fn empty_all_is_no_condition() {
        assert_eq!(Expr::new(0).condition(&Condition::All(vec![])), None);
    }

    #[test]
    fn update_clauses() {
        let mut x = Expr::new(0);
        let e = x.update(&[
            Update::Set("name".into(), "x".into()),
            Update::Remove("a".into()),
            Update::Add("count".into(), 2),
        ]);
        assert_eq!(e, "SET #n0 = :v0 REMOVE #n1 ADD #n2 :v1");
        let mut x = Expr::new(0);
        assert_eq!(x.update(&[]), "REMOVE #n0");
    }

    #[test]
    fn updates_to_one_attribute_fold() {
        let got = normalize_updates(vec![
            Update::Set("a".into(), Value::int(5)),
            Update::Add("a".into(), 2),
            Update::Add("b".into(), 1),
            Update::Add("b".into(), 1),
            Update::Remove("c".into()),
            Update::Add("c".into(), 3),
            Update::Add("d".into(), 3),
            Update::Remove("d".into()),
        ]);
        assert_eq!(
            got,
            vec![
                Update::Set("a".into(), Value::int(7)),
                Update::Add("b".into(), 2),
                Update::Set("c".into(), Value::int(3)),
                Update::Remove("d".into()),
            ]
        );
    }

    #[test]
    fn sort_normalisation() {
        assert_eq!(
            normalize_sort(&SortKey::BeginsWith(String::new())),
            Some(SortKey::Any)
        );
        assert_eq!(
            normalize_sort(&SortKey::Between("b".into(), "a".into())),
            None
        );
        assert_eq!(normalize_sort(&SortKey::Lt(String::new())), None);
        assert_eq!(
            normalize_sort(&SortKey::Between(String::new(), "a".into())),
            Some(SortKey::Le("a".into()))
        );
        assert!(sort_matches(&SortKey::Between("a".into(), "c".into()), "c"));
        assert!(!sort_matches(&SortKey::Gt("c".into()), "c"));
    }
}
