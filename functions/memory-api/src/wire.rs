//! The JSON forms of the memory API: requests as the official clients send them, and
//! responses with every field those clients read (strings never null).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use zerodb_domain::namespace::NamespaceId;
use zerodb_domain::{At, DomainError, FieldError, Namespace, Problems};
use zerodb_memory::model::{
    Content, EntityRef, Importance, MemoryType, NewMemory, Tags, check_metadata, rfc3339_ms,
};
use zerodb_memory::{Edge, Entity, Memory};

/// Parses the id part of a namespace (`<id>` of `session:<id>`) found `at` (e.g.
/// `At::path("session_id")`), naming that place in the 422 on failure.
pub fn namespace_id_at(at: At, text: &str) -> Result<NamespaceId, DomainError> {
    NamespaceId::parse(text).map_err(|m| at.invalid(m))
}

/// Parses a namespace field, naming it on failure.
pub fn namespace_at(path: &[&str], text: &str) -> Result<Namespace, FieldError> {
    Namespace::parse(text.trim()).map_err(|m| At::body_path(path).problem(m))
}

/// `POST /v2/remember`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RememberRequest {
    /// The text to remember (1–50,000 characters).
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub content: String,
    /// `session:<id>`, `project:<id>`, `user:<id>`, `global` or `default`. Omitted (and not
    /// in `metadata.namespace`): the account's private `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `episodic` (default), `semantic`, `procedural` or `working`.
    #[serde(default)]
    #[schema(pattern = "^(episodic|semantic|procedural|working)$")]
    pub memory_type: Option<String>,
    /// 0–1, default 0.5.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub importance: Option<f64>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// The entity (user, person, project) the memory is about.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub entity_id: Option<String>,
    /// Free-form JSON object (≤ 32 KB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Json>>,
}

/// The fields of a new memory, shared by remember and batch upsert. `prefix` is the
/// location of the record in the body (`[]` or `["records", "3"]`).
#[allow(clippy::too_many_arguments)]
pub fn new_memory(
    prefix: &[&str],
    content: String,
    namespace: Option<String>,
    default_ns: Namespace,
    memory_type: Option<String>,
    importance: Option<f64>,
    tags: Option<Vec<String>>,
    entity_id: Option<String>,
    metadata: Option<Map<String, Json>>,
) -> Result<(NewMemory, bool), Vec<FieldError>> {
    let at = |f: &'static str| -> Vec<&str> {
        let mut p = prefix.to_vec();
        p.push(f);
        p
    };
    let mut p = Problems::default();
    let content = p.check(At::body_path(&at("content")), Content::new(content));
    let metadata = metadata.unwrap_or_default();
    p.check(At::body_path(&at("metadata")), check_metadata(&metadata));
    // Some clients keep the namespace inside metadata.
    let meta_ns = metadata
        .get("namespace")
        .and_then(Json::as_str)
        .map(str::to_owned);
    let (namespace, defaulted) = match (namespace.filter(|n| !n.trim().is_empty()), meta_ns) {
        (Some(n), _) => (
            namespace_at(&at("namespace"), &n)
                .map_err(|e| p.push(e))
                .ok(),
            false,
        ),
        (None, Some(n)) => (
            namespace_at(&at("metadata"), &n)
                .map_err(|e| p.push(e))
                .ok(),
            false,
        ),
        (None, None) => (Some(default_ns), true),
    };
    let memory_type = match memory_type {
        Some(t) => p.check(At::body_path(&at("memory_type")), MemoryType::parse(&t)),
        None => Some(MemoryType::default()),
    };
    let importance = match importance {
        Some(i) => p.check(At::body_path(&at("importance")), Importance::new(i)),
        None => Some(Importance::DEFAULT),
    };
    let tags = p.check(
        At::body_path(&at("tags")),
        Tags::new(tags.unwrap_or_default()),
    );
    let entity_id = match entity_id.filter(|e| !e.trim().is_empty()) {
        Some(e) => p
            .check(At::body_path(&at("entity_id")), EntityRef::new(&e))
            .map(Some),
        None => Some(None),
    };
    match (content, namespace, memory_type, importance, tags, entity_id) {
        (
            Some(content),
            Some(namespace),
            Some(memory_type),
            Some(importance),
            Some(tags),
            Some(entity_id),
        ) if p.is_empty() => Ok((
            NewMemory {
                content,
                namespace,
                memory_type,
                importance,
                tags,
                entity_id,
                metadata,
            },
            defaulted,
        )),
        _ => Err(p.into_vec()),
    }
}

/// A stored memory as every client reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryView {
    pub id: String,
    /// The same as `id` (some clients read this name).
    pub memory_id: String,
    pub content: String,
    pub namespace: String,
    pub memory_type: String,
    pub importance: f64,
    pub tags: Vec<String>,
    /// Absent when the memory names no entity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Json>,
    pub created_at: String,
    pub updated_at: String,
    /// Whether its embedding has been computed yet (recall finds it either way).
    pub embedded: bool,
}

impl From<Memory> for MemoryView {
    fn from(m: Memory) -> Self {
        MemoryView {
            memory_id: m.id.clone(),
            id: m.id,
            content: m.content,
            namespace: m.namespace.to_string(),
            memory_type: m.memory_type.as_str().to_owned(),
            importance: m.importance,
            tags: m.tags,
            entity_id: m.entity_id,
            metadata: m.metadata,
            created_at: rfc3339_ms(m.created_at),
            updated_at: rfc3339_ms(m.updated_at),
            embedded: m.vector.is_some(),
        }
    }
}

/// What an agent may do next (seed 000's `next_steps`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NextSteps {
    pub action: String,
    pub suggestion: String,
    pub endpoint: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RememberResponse {
    #[serde(flatten)]
    pub memory: MemoryView,
    /// True when the request named no namespace and the memory went to `default`.
    pub namespace_defaulted: bool,
    pub next_steps: NextSteps,
}

/// Where a recall looks, as some clients send it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RecallFilter {
    #[serde(default)]
    pub namespace: Option<String>,
    /// At most 50, each 1–128 characters.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub memory_type: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
}

/// `POST /v2/recall`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecallRequest {
    /// What to look for, in words; `*` lists everything in scope, newest first.
    #[schema(max_length = 10000)]
    pub query: String,
    /// The namespace to search (default `default`); also accepted as `filter.namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// 1–1000, default 10.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    #[serde(default)]
    #[schema(pattern = "^(episodic|semantic|procedural|working)$")]
    pub memory_type: Option<String>,
    /// Only memories carrying every one of these tags (in `tags` or `metadata.tags`); at
    /// most 50, each 1–128 characters.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_importance: Option<f64>,
    /// `{namespace, tags, memory_type, entity_id}`, as some clients send them.
    #[serde(default, deserialize_with = "object")]
    #[schema(value_type = Option<RecallFilter>)]
    pub filter: Option<RecallFilter>,
}

/// A nested object field. serde would also accept a struct written as an array of its
/// fields (`[null, null]`), which no client means; this refuses it.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match Option::<Json>::deserialize(d)? {
        None | Some(Json::Null) => Ok(None),
        Some(v @ Json::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(other) => Err(D::Error::custom(format!(
            "invalid type: expected an object, found {}",
            match other {
                Json::Array(_) => "an array",
                Json::String(_) => "a string",
                Json::Number(_) => "a number",
                _ => "a boolean",
            }
        ))),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecalledMemory {
    #[serde(flatten)]
    pub memory: MemoryView,
    /// The ranking score, 0–1 (formula in the README).
    pub score: f64,
    /// Cosine similarity of query and memory, clamped to 0–1; for a memory not embedded
    /// yet (`embedded: false`), the share of the query's terms it contains instead.
    pub similarity: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecallResponse {
    pub results: Vec<RecalledMemory>,
    /// The same list as `results`.
    pub memories: Vec<RecalledMemory>,
    pub total: usize,
    pub namespace: String,
    /// Memories in scope not embedded yet (older than the newest few a recall embeds
    /// itself): ranked by their words until the events worker embeds them.
    pub not_embedded: usize,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ForgetFilter {
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only memories carrying every one of these tags (in `tags` or `metadata.tags`); at
    /// most 50, each 1–128 characters.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
}

/// `POST /v2/forget`: exactly one of `memory_id`, `namespace`, `filter`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ForgetRequest {
    #[serde(default)]
    pub memory_id: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "object")]
    #[schema(value_type = Option<ForgetFilter>)]
    pub filter: Option<ForgetFilter>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedCount {
    pub deleted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub entity_id: String,
    pub preferences: Vec<String>,
    pub behaviors: Vec<String>,
    pub facts: Vec<String>,
    pub summary: String,
    pub memory_count: usize,
}

/// `POST /v2/graph/entity`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EntityRequest {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub name: String,
    /// The entity's type (`person`, `organization`, …); default `entity`.
    #[serde(default, alias = "entity_type")]
    #[serde(rename = "type")]
    #[schema(max_length = 64)]
    pub entity_type: Option<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub aliases: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Json>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntityView {
    pub id: String,
    pub canonical_name: String,
    pub name: String,
    pub entity_type: String,
    pub aliases: Vec<String>,
    #[schema(value_type = Object)]
    pub properties: Map<String, Json>,
    pub memory_count: usize,
    pub created_at: String,
}

impl From<Entity> for EntityView {
    fn from(e: Entity) -> Self {
        EntityView {
            id: e.id,
            name: e.canonical_name.clone(),
            canonical_name: e.canonical_name,
            entity_type: if e.entity_type.is_empty() {
                "entity".into()
            } else {
                e.entity_type
            },
            aliases: e.aliases,
            properties: e.properties,
            memory_count: e.memory_count,
            created_at: e.created_at,
        }
    }
}

/// `POST /v2/graph/edge`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EdgeRequest {
    /// Source entity: its name or id; created if missing.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub source: String,
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub target: String,
    #[schema(min_length = 1, max_length = 128, pattern = r"\S")]
    pub predicate: String,
    /// 0–1, default 1.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: Option<f64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Json>>,
}

/// `POST /v2/relate`: `{source_id, target_id, relationship_type}` or
/// `{subject, predicate, object}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RelateRequest {
    #[serde(default)]
    pub source_id: Option<String>,
    #[serde(default)]
    pub target_id: Option<String>,
    #[serde(default)]
    pub relationship_type: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub predicate: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: Option<f64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Json>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EdgeView {
    pub id: String,
    pub source_id: String,
    pub target_id: String,
    pub source: String,
    pub target: String,
    pub predicate: String,
    pub confidence: f64,
    #[schema(value_type = Object)]
    pub properties: Map<String, Json>,
    pub created_at: String,
}

impl From<Edge> for EdgeView {
    fn from(e: Edge) -> Self {
        EdgeView {
            id: e.id,
            source_id: e.source_id,
            target_id: e.target_id,
            source: e.source,
            target: e.target,
            predicate: e.predicate,
            confidence: e.confidence,
            properties: e.properties,
            created_at: e.created_at,
        }
    }
}

/// `POST /v2/graph/traverse`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TraverseRequest {
    /// Starting entity: name or id.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub start: String,
    /// 1–5, default 2.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(minimum = 1, maximum = 5)]
    pub max_hops: Option<i64>,
    /// Follow only edges with these predicates (a string or a list of at most 50, each
    /// 1–128 characters).
    #[serde(default)]
    pub predicate_filter: Option<OneOrMany>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PathView {
    /// At most 500 entities.
    pub nodes: Vec<EntityView>,
    /// At most 1,000 edges, each between two of `nodes`.
    pub edges: Vec<EdgeView>,
    pub hops: usize,
    /// True when a cap stopped the walk before `max_hops`: the path is partial.
    pub truncated: bool,
    /// Which cap, and how to narrow the walk; absent when not truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RankedEntity {
    #[serde(flatten)]
    pub entity: EntityView,
    pub degree: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub entity_count: usize,
    pub edge_count: usize,
    pub density: f64,
    pub top_entities: Vec<RankedEntity>,
    /// True when the graph has more than 1,000 entities: `top_entities` then ranks the
    /// first 1,000 (in key order) only. The counts are always exact.
    pub top_entities_partial: bool,
}
