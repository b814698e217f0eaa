//! The knowledge graph of an account: entities and directed, labelled edges.
//!
//! | Item | PK | SK |
//! |---|---|---|
//! | entity | `GRAPH#<account>` | `E#<name>` |
//! | edge, outgoing | `GRAPH#<account>` | `X#<source>#<predicate>#<target>` |
//! | edge, incoming | `GRAPH#<account>` | `R#<target>#<predicate>#<source>` |
//! | totals | `GRAPH#<account>` | `META` |
//!
//! Names are normalised (lowercase, single spaces) and base64url-encoded inside keys, so
//! any text is a valid name and `#` never collides. An entity's id is `ent_` plus that
//! encoding, so an id leads to its item without a lookup table. Both edge items are
//! written in one transaction; neighbours are two prefix queries.
//!
//! Counts are kept, never counted on a read: an entity carries its degree (`deg`, written
//! in the transaction that adds an edge) and how many memories name it (`mcount`, moved
//! by the memory repository as memories naming it are stored and deleted); the totals
//! item carries the entity and edge counts. Every read is bounded: lists are pages,
//! traversals and neighbour lists stop at [`MAX_TRAVERSE_NODES`] / [`MAX_TRAVERSE_EDGES`]
//! and say so, and statistics rank at most [`MAX_STATS_SCAN`] entities ([`GraphLimits`]).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value as Json};
use zerodb_domain::DomainError;
use zerodb_domain::auth::Principal;
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::store::{
    Condition, Cursor, Item, Key, Query, StoreError, Table, TxOp, Update, Value,
};

use zerodb_domain::{At, keys};

use crate::model::{normalize_name, rfc3339_ms};

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_PREDICATE_CHARS: usize = 128;
pub const MAX_ALIASES: usize = 20;
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
pub const MAX_HOPS: usize = 5;
/// Most entities a traversal (or a neighbour list) returns.
pub const MAX_TRAVERSE_NODES: usize = 500;
/// Most edges a traversal returns.
pub const MAX_TRAVERSE_EDGES: usize = 1000;
/// Most entities statistics read to rank the best connected.
pub const MAX_STATS_SCAN: usize = 1000;

/// The bounds on one graph read; the defaults are the constants above. Tests lower them
/// to reach them with a few items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphLimits {
    pub traverse_nodes: usize,
    pub traverse_edges: usize,
    pub stats_scan: usize,
}

impl Default for GraphLimits {
    fn default() -> Self {
        GraphLimits {
            traverse_nodes: MAX_TRAVERSE_NODES,
            traverse_edges: MAX_TRAVERSE_EDGES,
            stats_scan: MAX_STATS_SCAN,
        }
    }
}
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
    /// How many memories name this entity (kept on the entity, not counted on read).
    pub memory_count: usize,
    /// How many edges touch it, either direction.
    pub degree: usize,
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
    /// Why the walk stopped short of `max_hops`, when a cap stopped it.
    pub truncated: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GraphStats {
    pub entity_count: usize,
    pub edge_count: usize,
    pub density: f64,
    /// Best-connected entities with their degree, most connected first.
    pub top_entities: Vec<(Entity, usize)>,
    /// True when the graph holds more entities than statistics read
    /// ([`MAX_STATS_SCAN`] unless configured), so `top_entities` ranks only the first.
    pub top_entities_partial: bool,
}

/// The graph rule: the graph is account-wide, so reading it needs `memory:read` and
/// changing it (an entity, an edge, or a memory naming an entity) `memory:write`, both
/// without a namespace restriction.
pub fn require_graph(caller: &Principal, permission: Permission) -> Result<(), DomainError> {
    caller.require(Service::Memory, permission, None)
}

/// The graph rule for a memory that names an entity: it adds the memory to that entity's
/// count in the account-wide graph, so it needs what any graph write needs.
pub fn require_entity_write(caller: &Principal) -> Result<(), DomainError> {
    require_graph(caller, Permission::Write).map_err(|_| {
        DomainError::Forbidden(
            "entity_id links the memory into the account-wide knowledge graph, which needs the \
             scope 'memory:write' without a namespace restriction; leave entity_id out, or use \
             a key holding memory:write"
                .into(),
        )
    })
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
fn count(item: &Item, name: &str) -> usize {
    item.get(name)
        .and_then(Value::as_i64)
        .map_or(0, |n| n.max(0) as usize)
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
        memory_count: count(item, "mcount"),
        degree: count(item, "deg"),
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
    limits: GraphLimits,
}

impl GraphRepo {
    pub fn new(table: Arc<dyn Table>) -> Self {
        GraphRepo {
            table,
            limits: GraphLimits::default(),
        }
    }

    /// The same repository with these read bounds.
    pub fn with_limits(mut self, limits: GraphLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> GraphLimits {
        self.limits
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
        let item = Self::entity_item(account, name, etype, aliases, props, now_ms);
        if self.create(account, &item).await? {
            return Ok(entity_from(&item).expect("built with a name"));
        }
        // An update, not a put: the counts on the entity and its creation time stay.
        let mut changes = vec![
            Update::Set("name".into(), Value::S(name.to_owned())),
            Update::Set("etype".into(), Value::S(etype.to_owned())),
            Update::Set(
                "aliases".into(),
                Value::L(aliases.iter().cloned().map(Value::S).collect()),
            ),
        ];
        changes.push(if props.is_empty() {
            Update::Remove("props".into())
        } else {
            Update::Set(
                "props".into(),
                Value::S(Json::Object(props.clone()).to_string()),
            )
        });
        let key = entity_key(account, &normalize_name(name));
        let written = self.table.update(&key, changes, None).await?;
        Ok(entity_from(&written).expect("written with a name"))
    }

    /// Writes a new entity item and counts it in the totals; false when it exists.
    async fn create(&self, account: &str, item: &Item) -> Result<bool, StoreError> {
        match self
            .table
            .transact(vec![
                TxOp::Put {
                    item: item.clone(),
                    condition: Some(Condition::NotExists),
                },
                TxOp::Update {
                    key: keys::graph_meta(account),
                    updates: vec![Update::Add("entities".into(), 1)],
                    condition: None,
                },
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Moves the count of memories naming an entity by `delta`. An entity that does not
    /// exist is left alone (its memories are counted from the next one stored).
    pub async fn add_memory_count(
        &self,
        account: &str,
        name: &str,
        delta: i64,
    ) -> Result<(), StoreError> {
        let key = entity_key(account, &normalize_name(name));
        match self
            .table
            .update(
                &key,
                vec![Update::Add("mcount".into(), delta)],
                Some(Condition::Exists),
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The entity with this name, creating a bare one if there is none.
    pub async fn ensure_entity(
        &self,
        account: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Entity, StoreError> {
        let item = Self::entity_item(account, name, DEFAULT_ENTITY_TYPE, &[], &Map::new(), now_ms);
        if self.create(account, &item).await? {
            return Ok(entity_from(&item).expect("built with a name"));
        }
        Ok(self
            .get_entity(account, name)
            .await?
            .unwrap_or_else(|| entity_from(&item).expect("built with a name")))
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

    /// One page of entities (at most `limit`, in key order, stable across pages),
    /// optionally only those of one type, and where the next page starts. A page filtered
    /// by type may hold fewer than `limit` (even none) while more follow.
    pub async fn list_entities(
        &self,
        account: &str,
        etype: Option<&str>,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Entity>, Option<Cursor>), StoreError> {
        let page = self
            .table
            .query(
                Query::partition(keys::graph_partition(account))
                    .begins_with(keys::GRAPH_ENTITY_PREFIX)
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let out = page
            .items
            .iter()
            .filter_map(entity_from)
            .filter(|e| etype.is_none_or(|t| e.entity_type.eq_ignore_ascii_case(t)))
            .collect();
        Ok((out, page.cursor))
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
        let puts = |condition: Option<Condition>| {
            vec![
                TxOp::Put {
                    item: out_item.clone(),
                    condition,
                },
                TxOp::Put {
                    item: in_item.clone(),
                    condition: None,
                },
            ]
        };
        // A new edge moves both degrees and the total with it; a replaced one moves none.
        let degree = |norm: &str, n: i64| TxOp::Update {
            key: entity_key(account, norm),
            updates: vec![Update::Add("deg".into(), n)],
            condition: None,
        };
        let mut create = puts(Some(Condition::NotExists));
        if src == dst {
            create.push(degree(&src, 2));
        } else {
            create.push(degree(&src, 1));
            create.push(degree(&dst, 1));
        }
        create.push(TxOp::Update {
            key: keys::graph_meta(account),
            updates: vec![Update::Add("edges".into(), 1)],
            condition: None,
        });
        match self.table.transact(create).await {
            Err(StoreError::Conflict) => self.table.transact(puts(None)).await?,
            other => other?,
        }
        Ok(edge_from(&out_item).expect("built with names"))
    }

    /// Edges touching an entity, at most `max` each way (outgoing then incoming), and
    /// whether `max` cut either direction short.
    async fn edges_capped(
        &self,
        account: &str,
        norm: &str,
        max: usize,
    ) -> Result<(Vec<Edge>, bool), StoreError> {
        let out = self
            .all_with_prefix(
                account,
                &format!("{}{}#", keys::GRAPH_OUT_PREFIX, enc(norm)),
                max,
            )
            .await?;
        let inc = self
            .all_with_prefix(
                account,
                &format!("{}{}#", keys::GRAPH_IN_PREFIX, enc(norm)),
                max,
            )
            .await?;
        let cut = out.len() >= max || inc.len() >= max;
        Ok((
            out.iter().chain(inc.iter()).filter_map(edge_from).collect(),
            cut,
        ))
    }

    /// Entities one edge away (either direction), each once, in name order: at most
    /// `traverse_nodes` of them, read from at most `traverse_edges + 1` edges each way;
    /// the flag says whether either bound left some out.
    pub async fn neighbors(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(Vec<Entity>, bool), StoreError> {
        let norm = normalize_name(name);
        let (edges, mut cut) = self
            .edges_capped(account, &norm, self.limits.traverse_edges + 1)
            .await?;
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
        if others.len() > self.limits.traverse_nodes {
            others.truncate(self.limits.traverse_nodes);
            cut = true;
        }
        let mut out = Vec::with_capacity(others.len());
        for n in others {
            if let Some(e) = self.get_entity(account, &n).await? {
                out.push(e);
            }
        }
        Ok((out, cut))
    }

    /// Breadth-first walk from `start` along edges in either direction, up to `max_hops`,
    /// following only `predicates` when given. Returns at most `traverse_nodes` entities
    /// and `traverse_edges` edges, every edge between two returned entities, reading at
    /// most `traverse_edges + 1` edges each way of any one entity; when a bound stops the
    /// walk, `truncated` says which.
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
        let GraphLimits {
            traverse_nodes: max_nodes,
            traverse_edges: max_edges,
            ..
        } = self.limits;
        let narrow = "narrow the walk with predicate_filter or a smaller max_hops";
        'walk: while let Some((norm, depth)) = queue.pop_front() {
            if depth >= max_hops {
                continue;
            }
            // One more than the cap each way is enough to reach the cap; each edge item is
            // read at most once per walk, so the reads stay bounded too.
            let (edges, cut) = self.edges_capped(account, &norm, max_edges + 1).await?;
            if cut {
                // Filtered or already-seen edges may leave the cap unreached while
                // unread edges remain: the answer is partial and says so. A filter does
                // not help here (edges are read before they are filtered).
                path.truncated = Some(format!(
                    "'{norm}' has more than {} edges one way and only the first {} were read, so edges past them (and where they lead) are missing; start the walk from a less connected entity",
                    max_edges + 1,
                    max_edges + 1
                ));
            }
            for edge in edges {
                if !predicates.is_empty()
                    && !predicates
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(&edge.predicate))
                {
                    continue;
                }
                if seen_edges.contains(&edge.id) {
                    continue;
                }
                if path.edges.len() >= max_edges {
                    path.truncated = Some(format!(
                        "stopped at {max_edges} edges, the most a traversal returns; {narrow}"
                    ));
                    break 'walk;
                }
                let other = if normalize_name(&edge.source) == norm {
                    edge.target.clone()
                } else {
                    edge.source.clone()
                };
                let other_norm = normalize_name(&other);
                if !seen.contains(&other_norm) {
                    if path.nodes.len() >= max_nodes {
                        path.truncated = Some(format!(
                            "stopped at {max_nodes} entities, the most a traversal returns; {narrow}"
                        ));
                        break 'walk;
                    }
                    seen.insert(other_norm.clone());
                    match self.get_entity(account, &other).await? {
                        Some(e) => {
                            path.nodes.push(e);
                            path.hops = path.hops.max(depth + 1);
                            queue.push_back((other_norm, depth + 1));
                        }
                        // An edge to an entity that is gone leads nowhere.
                        None => continue,
                    }
                }
                seen_edges.insert(edge.id.clone());
                path.edges.push(edge);
            }
        }
        Ok(path)
    }

    /// Entity and edge totals (kept in the totals item), density, and the `top` best
    /// connected among the first `stats_scan` entities (by their kept degree).
    pub async fn stats(&self, account: &str, top: usize) -> Result<GraphStats, StoreError> {
        let totals = self.table.get(&keys::graph_meta(account)).await?;
        let total = |name: &str| totals.as_ref().map_or(0, |t| count(t, name));
        let (n, edges) = (total("entities"), total("edges"));
        let page = self
            .table
            .query(
                Query::partition(keys::graph_partition(account))
                    .begins_with(keys::GRAPH_ENTITY_PREFIX)
                    .limit(self.limits.stats_scan),
            )
            .await?;
        let density = if n > 1 {
            edges as f64 / (n as f64 * (n as f64 - 1.0))
        } else {
            0.0
        };
        let mut ranked: BTreeMap<(std::cmp::Reverse<usize>, String), Entity> = BTreeMap::new();
        for e in page.items.iter().filter_map(entity_from) {
            ranked.insert(
                (std::cmp::Reverse(e.degree), e.canonical_name.to_lowercase()),
                e,
            );
        }
        Ok(GraphStats {
            entity_count: n,
            edge_count: edges,
            density,
            top_entities: ranked
                .into_iter()
                .filter(|((d, _), _)| d.0 > 0)
                .take(top)
                .map(|((d, _), e)| (e, d.0))
                .collect(),
            top_entities_partial: page.cursor.is_some(),
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
