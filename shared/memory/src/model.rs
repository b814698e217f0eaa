//! Memory records and their validated parts. Every constructor checks its limits, so a
//! `Memory` in hand is always storable and every refusal names the field and the fix.

use serde_json::{Map, Value as Json};
use zerodb_domain::Namespace;

/// Longest content, in characters. With UTF-8 at up to 4 bytes a character this keeps a
/// record (content, vector, tags, metadata) under DynamoDB's 400 KB item limit.
pub const MAX_CONTENT_CHARS: usize = 50_000;
/// Largest `metadata` object, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 32 * 1024;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 128;
pub const MAX_ENTITY_ID_CHARS: usize = 256;
/// Seed 003's limit for every batch memory operation.
pub const MAX_BATCH: usize = 500;
/// Most results one recall returns.
pub const MAX_RECALL_LIMIT: usize = 1000;

/// The four kinds of memory of the ZeroMemory API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemoryType {
    #[default]
    Episodic,
    Semantic,
    Procedural,
    Working,
}

impl MemoryType {
    pub const ALL: [MemoryType; 4] = [
        MemoryType::Episodic,
        MemoryType::Semantic,
        MemoryType::Procedural,
        MemoryType::Working,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryType::Episodic => "episodic",
            MemoryType::Semantic => "semantic",
            MemoryType::Procedural => "procedural",
            MemoryType::Working => "working",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        MemoryType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown memory_type '{s}': use episodic, semantic, procedural or working")
            })
    }
}

/// How much a memory matters, 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Importance(f64);

impl Importance {
    pub const DEFAULT: Importance = Importance(0.5);

    pub fn new(v: f64) -> Result<Self, String> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(Importance(v))
        } else {
            Err(format!("importance must be between 0 and 1, got {v}"))
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

/// Memory text: not blank, at most [`MAX_CONTENT_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn new(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("content must not be empty".into());
        }
        let chars = s.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(format!(
                "content is {chars} characters; the limit is {MAX_CONTENT_CHARS}: split it into several memories"
            ));
        }
        Ok(Content(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Tags: at most [`MAX_TAGS`], each 1–128 characters, duplicates dropped, order kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    pub fn new(tags: Vec<String>) -> Result<Self, String> {
        if tags.len() > MAX_TAGS {
            return Err(format!(
                "{} tags given; at most {MAX_TAGS} are allowed",
                tags.len()
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(tags.len());
        for t in tags {
            let t = t.trim().to_owned();
            if t.is_empty() || t.chars().count() > MAX_TAG_CHARS {
                return Err(format!("each tag must be 1-{MAX_TAG_CHARS} characters"));
            }
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(Tags(out))
    }
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// The entity a memory is about (a user id, a person's name, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef(String);

impl EntityRef {
    pub fn new(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > MAX_ENTITY_ID_CHARS {
            return Err(format!(
                "entity_id must be 1-{MAX_ENTITY_ID_CHARS} characters"
            ));
        }
        Ok(EntityRef(t.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form entities are matched by: case and spacing do not make a new entity.
    pub fn normalized(&self) -> String {
        normalize_name(&self.0)
    }
}

/// Lowercase, whitespace collapsed: "Alice  Smith" and "alice smith" are one entity.
pub fn normalize_name(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Free-form JSON object attached to a memory.
pub fn check_metadata(meta: &Map<String, Json>) -> Result<(), String> {
    let size = serde_json::to_vec(meta)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}"
        ));
    }
    Ok(())
}

/// Memory ids: `mem_` and a time-ordered 26-character id, so a namespace reads newest
/// first by sort key alone.
pub fn new_memory_id() -> String {
    zerodb_domain::ids::prefixed_id("mem")
}

/// Whether `s` could be an id this API issued (cheap check before any lookup).
pub fn is_memory_id(s: &str) -> bool {
    s.strip_prefix("mem_").is_some_and(|r| {
        r.len() == 26
            && r.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

/// A stored memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub id: String,
    pub namespace: Namespace,
    pub content: String,
    pub memory_type: MemoryType,
    pub importance: f64,
    pub tags: Vec<String>,
    pub entity_id: Option<String>,
    pub metadata: Map<String, Json>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// Short hash of the content: a vector computed for other content is never stored.
    pub content_hash: String,
    /// The embedding, if computed, and the embedder that made it.
    pub vector: Option<crate::vector::StoredVector>,
}

impl Memory {
    /// Tags set on the record, plus `metadata.tags` (where some clients keep theirs).
    pub fn all_tags(&self) -> impl Iterator<Item = &str> {
        let meta = self
            .metadata
            .get("tags")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str);
        self.tags.iter().map(String::as_str).chain(meta)
    }

    pub fn has_all_tags(&self, wanted: &[String]) -> bool {
        wanted
            .iter()
            .all(|w| self.all_tags().any(|t| t == w.as_str()))
    }
}

pub fn content_hash(content: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(content.as_bytes())[..8])
}

/// What a caller asks to store, validated.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub content: Content,
    pub namespace: Namespace,
    pub memory_type: MemoryType,
    pub importance: Importance,
    pub tags: Tags,
    pub entity_id: Option<EntityRef>,
    pub metadata: Map<String, Json>,
}

/// A partial update (batch update); absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct MemoryPatch {
    pub content: Option<Content>,
    pub memory_type: Option<MemoryType>,
    pub importance: Option<Importance>,
    pub tags: Option<Tags>,
    pub metadata: Option<Map<String, Json>>,
}

impl MemoryPatch {
    pub fn is_empty(&self) -> bool {
        self.content.is_none()
            && self.memory_type.is_none()
            && self.importance.is_none()
            && self.tags.is_none()
            && self.metadata.is_none()
    }
}

/// Milliseconds as RFC 3339 with millisecond precision (`2026-06-10T08:00:00.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_range_is_closed_and_finite() {
        assert!(Importance::new(0.0).is_ok());
        assert!(Importance::new(1.0).is_ok());
        assert!(Importance::new(1.01).is_err());
        assert!(Importance::new(f64::NAN).is_err());
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_limited() {
        let t = Tags::new(vec![" a ".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(t.as_slice(), ["a", "b"]);
        assert!(Tags::new(vec!["".into()]).is_err());
        assert!(Tags::new((0..51).map(|i| i.to_string()).collect()).is_err());
    }

    #[test]
    fn memory_type_parses_case_insensitively_and_names_the_choices() {
        assert_eq!(MemoryType::parse("Semantic").unwrap(), MemoryType::Semantic);
        assert!(
            MemoryType::parse("long-term")
                .unwrap_err()
                .contains("episodic")
        );
    }

    #[test]
    fn ids_are_recognised() {
        assert!(is_memory_id(&new_memory_id()));
        assert!(!is_memory_id("mem_x"));
        assert!(!is_memory_id("MEM#x"));
    }
}
