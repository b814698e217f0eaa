//! RLHF interactions (seed 003's `{prompt, response, metadata}`, with optional feedback):
//! logged one at a time or up to 1,000 per call, listed newest first within a time
//! window, with a Mongo-style filter over the interaction applied as pages are read
//! (every list reads a bounded number of items and hands back a cursor).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zerodb_domain::clock::{Clock, rfc3339};
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::store::{Cursor, Index, Query, SortKey, Table, TxOp};
use zerodb_domain::{At, Context, DomainError, ids, keys};

use crate::filter::Filter;
use crate::project::{ANSWER_BYTES, Project, STAT_RLHF, STAT_RLHF_BYTES, count, json_string_bytes};

/// Seed 003's batch limit.
pub const MAX_BATCH: usize = 1000;
/// Longest prompt or response, in characters.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// Largest metadata, as JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Reads a filtered list makes before it returns what it found (and a cursor).
const MAX_READS: usize = 50;
/// Largest interaction as stored: prompt, response, metadata and feedback bytes plus
/// [`ITEM_OVERHEAD_BYTES`], below DynamoDB's 400 KB item limit (checked for every
/// interaction before any is written, so a batch never stops half-written).
pub const MAX_ITEM_BYTES: usize = 380 * 1024;
/// What an interaction's item holds besides its texts: keys, id, time, attribute names.
pub const ITEM_OVERHEAD_BYTES: usize = 1024;

/// One logged interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: String,
    pub prompt: String,
    pub response: String,
    /// JSON text of an object.
    #[serde(default)]
    pub metadata: String,
    /// A rating or label a reviewer gave, as JSON text (number, string or object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// Epoch milliseconds.
    pub at: i64,
}

impl Interaction {
    /// Bytes its texts take in a JSON answer.
    fn answer_bytes(&self) -> usize {
        json_string_bytes(&self.prompt)
            + json_string_bytes(&self.response)
            + self.metadata.len()
            + self.feedback.as_ref().map_or(0, String::len)
    }

    /// The interaction as clients see it (and as filters match it).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("prompt".into(), self.prompt.clone().into());
        m.insert("response".into(), self.response.clone().into());
        m.insert(
            "metadata".into(),
            serde_json::from_str(&self.metadata).unwrap_or(Value::Object(Map::new())),
        );
        if let Some(f) = &self.feedback {
            m.insert(
                "feedback".into(),
                serde_json::from_str(f).unwrap_or(Value::Null),
            );
        }
        m.insert(
            "created_at".into(),
            rfc3339(chrono::DateTime::from_timestamp_millis(self.at).unwrap_or_default()).into(),
        );
        Value::Object(m)
    }
}

/// A checked interaction, before it has an id.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub prompt: String,
    pub response: String,
    pub metadata: String,
    pub feedback: Option<String>,
}

impl NewInteraction {
    /// Checks one interaction (under `at`).
    pub fn check(
        prompt: String,
        response: String,
        metadata: Option<Value>,
        feedback: Option<Value>,
        at: &At,
    ) -> Result<NewInteraction, DomainError> {
        for (name, text) in [("prompt", &prompt), ("response", &response)] {
            let n = text.chars().count();
            if n > MAX_TEXT_CHARS {
                return Err(at.clone().field(name).invalid(format!(
                    "{name} is {n} characters; the limit is {MAX_TEXT_CHARS}"
                )));
            }
        }
        let metadata = match metadata {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(v @ Value::Object(_)) => v.to_string(),
            Some(_) => {
                return Err(at
                    .clone()
                    .field("metadata")
                    .invalid("metadata is a JSON object"));
            }
        };
        if metadata.len() > MAX_METADATA_BYTES {
            return Err(at.clone().field("metadata").invalid(format!(
                "metadata is {} bytes as JSON; the limit is {MAX_METADATA_BYTES}",
                metadata.len()
            )));
        }
        let feedback = feedback.filter(|f| !f.is_null()).map(|f| f.to_string());
        if feedback
            .as_ref()
            .is_some_and(|f| f.len() > MAX_METADATA_BYTES)
        {
            return Err(at.clone().field("feedback").invalid(format!(
                "feedback is over {MAX_METADATA_BYTES} bytes as JSON"
            )));
        }
        // Characters are not bytes: 100,000 CJK characters are 300,000 bytes.
        let stored = prompt.len()
            + response.len()
            + metadata.len()
            + feedback.as_ref().map_or(0, String::len)
            + ITEM_OVERHEAD_BYTES;
        if stored > MAX_ITEM_BYTES {
            return Err(at.clone().invalid(format!(
                "this interaction is {stored} bytes as stored (prompt {}, response {}, metadata {}, feedback {} bytes, and {ITEM_OVERHEAD_BYTES} of overhead); the limit is {MAX_ITEM_BYTES} bytes: shorten the prompt or response",
                prompt.len(),
                response.len(),
                metadata.len(),
                feedback.as_ref().map_or(0, String::len),
            )));
        }
        Ok(NewInteraction {
            prompt,
            response,
            metadata,
            feedback,
        })
    }
}

/// The RLHF service.
#[derive(Clone)]
pub struct Rlhf {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

/// A list's window, filter and page.
#[derive(Debug, Clone, Default)]
pub struct RlhfQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub filter: Option<Filter>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl Rlhf {
    pub fn new(ctx: &Context) -> Self {
        Rlhf {
            table: ctx.stores().table.clone(),
            clock: ctx.clock().clone(),
        }
    }

    /// Stores checked interactions in transactions with the project's counters.
    pub async fn log(
        &self,
        p: &Project,
        new: Vec<NewInteraction>,
    ) -> Result<Vec<Interaction>, DomainError> {
        let at = self.clock.now().timestamp_millis();
        let stored: Vec<Interaction> = new
            .into_iter()
            .map(|n| Interaction {
                id: ids::prefixed_id("rlhf"),
                prompt: n.prompt,
                response: n.response,
                metadata: n.metadata,
                feedback: n.feedback,
                at,
            })
            .collect();
        let cost = |i: &Interaction| {
            (
                1,
                i.prompt.len()
                    + i.response.len()
                    + i.metadata.len()
                    + i.feedback.as_ref().map_or(0, String::len)
                    + 300,
            )
        };
        for chunk in crate::project::transaction_runs(&stored, 1, cost) {
            let mut ops = Vec::with_capacity(chunk.len() + 1);
            let mut bytes = 0i64;
            for i in chunk {
                bytes += (i.prompt.len() + i.response.len() + i.metadata.len()) as i64;
                ops.push(TxOp::Put {
                    item: to_item(&keys::rlhf(&p.id, i.at, &i.id), i, None)?,
                    condition: None,
                });
            }
            ops.push(count(
                &p.id,
                &[(STAT_RLHF, chunk.len() as i64), (STAT_RLHF_BYTES, bytes)],
            ));
            self.table.transact(ops).await?;
        }
        Ok(stored)
    }

    /// Interactions newest first; with a filter, pages are read until the page is full
    /// or a bounded number of items has been read (the cursor then goes on from there).
    /// A page also stops before its texts pass [`ANSWER_BYTES`] (a Lambda answers at
    /// most 6 MB), its cursor then going on after the last interaction returned.
    pub async fn list(
        &self,
        p: &Project,
        q: RlhfQuery,
    ) -> Result<(Vec<Interaction>, Option<Cursor>), DomainError> {
        let lo = format!("{:013}", q.since.unwrap_or(0).max(0));
        let hi = format!("{:013}~", q.until.unwrap_or(9_999_999_999_999).max(0));
        let limit = q.limit.clamp(1, 1000);
        let mut out = Vec::new();
        let mut cursor = q.cursor;
        let mut reads = 0;
        let mut bytes = 0usize;
        // The position after the last interaction read (returned, or passed over by the
        // filter).
        let mut last: Option<Cursor> = None;
        loop {
            // A page never holds more than the rest of the answer, so the adapter's own
            // cursor always says where the next call goes on.
            let page = self
                .table
                .query(
                    Query::partition(keys::rlhf_partition(&p.id))
                        .sort(SortKey::Between(lo.clone(), hi.clone()))
                        .backward()
                        .limit(limit - out.len())
                        .after(cursor),
                )
                .await?;
            reads += 1;
            for item in page.items {
                let after = Cursor::after(&item, Index::Primary);
                let it: Interaction = from_item(item)?;
                if q.filter.as_ref().is_none_or(|f| f.matches(&it.to_json())) {
                    let size = it.answer_bytes();
                    if !out.is_empty() && bytes + size > ANSWER_BYTES {
                        // The next call starts at this one: after the last read.
                        return Ok((out, last));
                    }
                    bytes += size;
                    out.push(it);
                }
                last = after;
            }
            match page.cursor {
                Some(c) if out.len() < limit && reads < MAX_READS => cursor = Some(c),
                other => return Ok((out, other)),
            }
        }
    }
}
