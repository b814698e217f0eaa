//! The knowledge graph of an account: entities and directed, labelled edges.
//!
//! | Item | PK | SK |
//! |---|---|---|
//! | entity | `GRAPH#<account>` | `E#<name>` |
//! | edge, outgoing | `GRAPH#<account>` | `X#<source>#<predicate>#<target>` |
//! | edge, incoming | `GRAPH#<account>` | `R#<target>#<predicate>#<source>` |
//!
//! Names are normalised (lowercase, single spaces) and base64url-encoded inside keys, so
//! any text is a valid name and `#` never collides. An entity's id is `ent_` plus that
//! encoding, so an id leads to its item without a lookup table. Both edge items are
//! written in one transaction; neighbours are two prefix queries.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value as Json};
use zerodb_domain::DomainError;
use zerodb_domain::store::{Condition, Item, Key, Query, StoreError, Table, TxOp, Value};

use zerodb_domain::{At, keys};

use crate::model::{normalize_name, rfc3339_ms};

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_PREDICATE_CHARS: usize = 128;
pub const MAX_ALIASES: usize = 20;
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
pub const MAX_HOPS: usize = 5;
/// Most entities a traversal visits.
pub const MAX_TRAVERSE_NODES: usize = 500;
/// Type given to entities created implicitly (by an edge or a memory's `entity_id`).
pub const DEFAULT_ENTITY_TYPE: &str = "entity";

#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub id: String,
    pub canonical_name: String,
    pub entity_type: String,
    pub aliases: Vec<String>,
    pub properties: Map<String, Json>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub id: String,
    pub source_id: String,
    pub target_id: String,
    pub source: String,
    pub target: String,
    pub predicate: String,
    pub confidence: f64,
    pub properties: Map<String, Json>,
    pub created_at: String,
}

#[derive(Debug, Clone, Default)]
pub struct GraphPath {
    pub nodes: Vec<Entity>,
    pub edges: Vec<Edge>,
    pub hops: usize,
}

#[derive(Debug, Clone)]
pub struct GraphStats {
    pub entity_count: usize,
    pub edge_count: usize,
    pub density: f64,
    /// Best-connected entities with their degree, most connected first.
    pub top_entities: Vec<(Entity, usize)>,
}

/// A validated entity name.
pub fn check_name(field: &str, s: &str) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > MAX_NAME_CHARS {
        return Err(At::body_path(&[field])
            .invalid(format!("{field} must be 1-{MAX_NAME_CHARS} characters")));
    }
    Ok(t.to_owned())
}

pub fn check_predicate(field: &str, s: &str) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > MAX_PREDICATE_CHARS {
        return Err(At::body_path(&[field]).invalid(format!(
            "{field} must be 1-{MAX_PREDICATE_CHARS} characters, e.g. \"works_at\""
        )));
    }
    Ok(t.to_owned())
}

pub fn check_confidence(field: &str, c: f64) -> Result<f64, DomainError> {
    if c.is_finite() && (0.0..=1.0).contains(&c) {
        Ok(c)
    } else {
        Err(At::body_path(&[field]).invalid(format!("{field} must be between 0 and 1, got {c}")))
    }
}

pub fn check_properties(field: &str, p: &Map<String, Json>) -> Result<(), DomainError> {
    let size = serde_json::to_vec(p).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_PROPERTIES_BYTES {
        return Err(At::body_path(&[field]).invalid(format!(
            "{field} is {size} bytes as JSON; the limit is {MAX_PROPERTIES_BYTES}"
        )));
    }
    Ok(())
}

fn enc(norm: &str) -> String {
    B64.encode(norm.as_bytes())
}

/// The id of the entity with this name.
pub fn entity_id(name: &str) -> String {
    format!("ent_{}", enc(&normalize_name(name)))
}

/// The normalised name behind an entity id, if it is one.
pub fn name_of_id(id: &str) -> Option<String> {
    let raw = B64.decode(id.strip_prefix("ent_")?).ok()?;
    let name = String::from_utf8(raw).ok()?;
    (!name.is_empty() && name == normalize_name(&name)).then_some(name)
}

fn entity_key(account: &str, norm: &str) -> Key {
    keys::graph_entity(account, &enc(norm))
}

fn s(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
fn json_map(item: &Item, name: &str) -> Map<String, Json> {
    item.get(name)
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

fn entity_from(item: &Item) -> Option<Entity> {
    let name = item.get("name")?.as_str()?.to_owned();
    Some(Entity {
        id: entity_id(&name),
        canonical_name: name,
        entity_type: s(item, "etype"),
        aliases: item
            .get("aliases")
            .and_then(Value::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        properties: json_map(item, "props"),
        created_at: rfc3339_ms(item.get("at").and_then(Value::as_i64).unwrap_or(0)),
    })
}

fn edge_from(item: &Item) -> Option<Edge> {
    let src = item.get("src")?.as_str()?.to_owned();
    let dst = item.get("dst")?.as_str()?.to_owned();
    // Display names as written, falling back to the normalised names.
    let name = |attr: &str, norm: &str| {
        Some(s(item, attr))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| norm.to_owned())
    };
    Some(Edge {
        id: s(item, "id"),
        source_id: entity_id(&src),
        target_id: entity_id(&dst),
        source: name("srcname", &src),
        target: name("dstname", &dst),
        predicate: s(item, "pred"),
        confidence: item.get("conf").and_then(Value::as_f64).unwrap_or(1.0),
        properties: json_map(item, "props"),
        created_at: rfc3339_ms(item.get("at").and_then(Value::as_i64).unwrap_or(0)),
    })
}

/// The graph repository.
#[derive(Clone)]
pub struct GraphRepo {
    table: Arc<dyn Table>,
}

impl GraphRepo {
    pub fn new(table: Arc<dyn Table>) -> Self {
        GraphRepo { table }
    }

    fn entity_item(
        account: &str,
        name: &str,
        etype: &str,
        aliases: &[String],
        props: &Map<String, Json>,
        now_ms: i64,
    ) -> Item {
        let mut item = entity_key(account, &normalize_name(name)).item();
        item.insert("name".into(), Value::S(name.to_owned()));
        item.insert("etype".into(), Value::S(etype.to_owned()));
        item.insert(
            "aliases".into(),
            Value::L(aliases.iter().cloned().map(Value::S).collect()),
        );
        if !props.is_empty() {
            item.insert(
                "props".into(),
                Value::S(Json::Object(props.clone()).to_string()),
            );
        }
        item.insert("at".into(), Value::int(now_ms));
        item
    }

    /// Creates an entity, or updates the type, aliases and properties of the one with
    /// this name (keeping its creation time).
    pub async fn upsert_entity(
        &self,
        account: &str,
        name: &str,
        etype: &str,
        aliases: &[String],
        props: &Map<String, Json>,
        now_ms: i64,
    ) -> Result<Entity, StoreError> {
        let created = match self.get_entity(account, name).await? {
            Some(e) => chrono::DateTime::parse_from_rfc3339(&e.created_at)
                .map(|d| d.timestamp_millis())
                .unwrap_or(now_ms),
            None => now_ms,
        };
        let item = Self::entity_item(account, name, etype, aliases, props, created);
        self.table.put(item.clone(), None).await?;
        Ok(entity_from(&item).expect("built with a name"))
    }

    /// The entity with this name, creating a bare one if there is none.
    pub async fn ensure_entity(
        &self,
        account: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Entity, StoreError> {
        let item = Self::entity_item(account, name, DEFAULT_ENTITY_TYPE, &[], &Map::new(), now_ms);
        match self
            .table
            .put(item.clone(), Some(Condition::NotExists))
            .await
        {
            Ok(()) => Ok(entity_from(&item).expect("built with a name")),
            Err(StoreError::Conflict) => Ok(self
                .get_entity(account, name)
                .await?
                .unwrap_or_else(|| entity_from(&item).expect("built with a name"))),
            Err(e) => Err(e),
        }
    }

    pub async fn get_entity(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<Entity>, StoreError> {
        Ok(self
            .table
            .get(&entity_key(account, &normalize_name(name)))
            .await?
            .as_ref()
            .and_then(entity_from))
    }

    /// Resolves an entity reference that may be an id (`ent_…`) or a name.
    pub async fn resolve(
        &self,
        account: &str,
        reference: &str,
    ) -> Result<Option<Entity>, StoreError> {
        if let Some(name) = name_of_id(reference)
            && let Some(e) = self.get_entity(account, &name).await?
        {
            return Ok(Some(e));
        }
        self.get_entity(account, reference).await
    }

    async fn all_with_prefix(
        &self,
        account: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let q = Query::partition(keys::graph_partition(account))
            .begins_with(prefix)
            .limit(1000);
        crate::repo::query_all(self.table.as_ref(), q, max).await
    }

    /// Entities, optionally of one type, in name order.
    pub async fn list_entities(
        &self,
        account: &str,
        etype: Option<&str>,
        max: usize,
    ) -> Result<Vec<Entity>, StoreError> {
        let items = self
            .all_with_prefix(account, keys::GRAPH_ENTITY_PREFIX, usize::MAX)
            .await?;
        let mut out: Vec<Entity> = items
            .iter()
            .filter_map(entity_from)
            .filter(|e| etype.is_none_or(|t| e.entity_type.eq_ignore_ascii_case(t)))
            .collect();
        out.sort_by(|a, b| {
            a.canonical_name
                .to_lowercase()
                .cmp(&b.canonical_name.to_lowercase())
        });
        out.truncate(max);
        Ok(out)
    }

    /// Adds (or replaces) the edge `source -predicate-> target`, creating missing
    /// entities.
    pub async fn add_edge(
        &self,
        account: &str,
        source: &Entity,
        target: &Entity,
        predicate: &str,
        confidence: f64,
        props: &Map<String, Json>,
        now_ms: i64,
    ) -> Result<Edge, StoreError> {
        let src = normalize_name(&source.canonical_name);
        let dst = normalize_name(&target.canonical_name);
        let pred = predicate.to_owned();
        let id = {
            use sha2::{Digest, Sha256};
            let h = Sha256::digest(format!("{src}\u{1f}{pred}\u{1f}{dst}").as_bytes());
            format!("edge_{}", hex::encode(&h[..12]))
        };
        let mut attrs = Item::new();
        attrs.insert("id".into(), Value::S(id));
        attrs.insert("src".into(), Value::S(src.clone()));
        attrs.insert("dst".into(), Value::S(dst.clone()));
        attrs.insert("srcname".into(), Value::S(source.canonical_name.clone()));
        attrs.insert("dstname".into(), Value::S(target.canonical_name.clone()));
        attrs.insert("pred".into(), Value::S(pred.clone()));
        attrs.insert("conf".into(), Value::float(confidence));
        if !props.is_empty() {
            attrs.insert(
                "props".into(),
                Value::S(Json::Object(props.clone()).to_string()),
            );
        }
        attrs.insert("at".into(), Value::int(now_ms));
        let mut out_item = keys::graph_out(account, &enc(&src), &enc(&pred), &enc(&dst)).item();
        let mut in_item = keys::graph_in(account, &enc(&dst), &enc(&pred), &enc(&src)).item();
        out_item.extend(attrs.clone());
        in_item.extend(attrs);
        self.table
            .transact(vec![
                TxOp::Put {
                    item: out_item.clone(),
                    condition: None,
                },
                TxOp::Put {
                    item: in_item,
                    condition: None,
                },
            ])
            .await?;
        Ok(edge_from(&out_item).expect("built with names"))
    }

    /// Edges touching an entity: outgoing then incoming.
    pub async fn edges_of(&self, account: &str, norm: &str) -> Result<Vec<Edge>, StoreError> {
        let out = self
            .all_with_prefix(
                account,
                &format!("{}{}#", keys::GRAPH_OUT_PREFIX, enc(norm)),
                10_000,
            )
            .await?;
        let inc = self
            .all_with_prefix(
                account,
                &format!("{}{}#", keys::GRAPH_IN_PREFIX, enc(norm)),
                10_000,
            )
            .await?;
        Ok(out.iter().chain(inc.iter()).filter_map(edge_from).collect())
    }

    /// Entities one edge away (either direction), each once, in name order.
    pub async fn neighbors(&self, account: &str, name: &str) -> Result<Vec<Entity>, StoreError> {
        let norm = normalize_name(name);
        let edges = self.edges_of(account, &norm).await?;
        let mut others: Vec<String> = edges
            .iter()
            .map(|e| {
                if e.source_id == entity_id(&norm) {
                    e.target.clone()
                } else {
                    e.source.clone()
                }
            })
            .collect();
        others.sort_by_key(|n| normalize_name(n));
        others.dedup_by_key(|n| normalize_name(n));
        let mut out = Vec::with_capacity(others.len());
        for n in others {
            if let Some(e) = self.get_entity(account, &n).await? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Breadth-first walk from `start` along edges in either direction, up to `max_hops`,
    /// following only `predicates` when given.
    pub async fn traverse(
        &self,
        account: &str,
        start: &Entity,
        max_hops: usize,
        predicates: &[String],
    ) -> Result<GraphPath, StoreError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut seen_edges: HashSet<String> = HashSet::new();
        let mut path = GraphPath::default();
        let mut queue = VecDeque::new();
        let start_norm = normalize_name(&start.canonical_name);
        seen.insert(start_norm.clone());
        path.nodes.push(start.clone());
        queue.push_back((start_norm, 0usize));
        while let Some((norm, depth)) = queue.pop_front() {
            if depth >= max_hops || path.nodes.len() >= MAX_TRAVERSE_NODES {
                continue;
            }
            for edge in self.edges_of(account, &norm).await? {
                if !predicates.is_empty()
                    && !predicates
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(&edge.predicate))
                {
                    continue;
                }
                let other = if normalize_name(&edge.source) == norm {
                    edge.target.clone()
                } else {
                    edge.source.clone()
                };
                if seen_edges.insert(edge.id.clone()) {
                    path.edges.push(edge);
                }
                let other_norm = normalize_name(&other);
                if seen.insert(other_norm.clone())
                    && let Some(e) = self.get_entity(account, &other).await?
                {
                    path.nodes.push(e);
                    path.hops = path.hops.max(depth + 1);
                    queue.push_back((other_norm, depth + 1));
                }
            }
        }
        Ok(path)
    }

    pub async fn stats(&self, account: &str, top: usize) -> Result<GraphStats, StoreError> {
        let entities: Vec<Entity> = self
            .all_with_prefix(account, keys::GRAPH_ENTITY_PREFIX, usize::MAX)
            .await?
            .iter()
            .filter_map(entity_from)
            .collect();
        let edges: Vec<Edge> = self
            .all_with_prefix(account, keys::GRAPH_OUT_PREFIX, usize::MAX)
            .await?
            .iter()
            .filter_map(edge_from)
            .collect();
        let mut degree: HashMap<String, usize> = HashMap::new();
        for e in &edges {
            *degree.entry(e.source_id.clone()).or_default() += 1;
            *degree.entry(e.target_id.clone()).or_default() += 1;
        }
        let n = entities.len();
        let density = if n > 1 {
            edges.len() as f64 / (n as f64 * (n as f64 - 1.0))
        } else {
            0.0
        };
        let mut ranked: BTreeMap<(std::cmp::Reverse<usize>, String), Entity> = BTreeMap::new();
        for e in entities {
            let d = degree.get(&e.id).copied().unwrap_or(0);
            ranked.insert((std::cmp::Reverse(d), e.canonical_name.to_lowercase()), e);
        }
        Ok(GraphStats {
            entity_count: n,
            edge_count: edges.len(),
            density,
            top_entities: ranked
                .into_iter()
                .filter(|((d, _), _)| d.0 > 0)
                .take(top)
                .map(|((d, _), e)| (e, d.0))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_round_trip_through_normalised_names() {
        let id = entity_id("Alice  Smith");
        assert_eq!(id, entity_id("alice smith"));
        assert_eq!(name_of_id(&id).as_deref(), Some("alice smith"));
        assert_eq!(name_of_id("ent_!!"), None);
        assert_eq!(name_of_id("alice"), None);
    }
}
