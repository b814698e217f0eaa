//! A project's published events (seed 003's `{topic, event_payload}`): kept for a stated
//! retention (the `ttl` attribute), listed newest first, by topic through the secondary
//! index, within a time window. Each publish emits `zerodb.event.published` after commit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zerodb_domain::clock::{Clock, rfc3339};
use zerodb_domain::events::EventSink;
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::store::{
    Cursor, GSI1PK, GSI1SK, Index, Query, SortKey, Table, TxOp, Value as V,
};
use zerodb_domain::{At, Context, DomainError, Settings, ids, keys};

use crate::project::{
    ANSWER_BYTES, Project, STAT_EVENT_BYTES, STAT_EVENTS, count, json_string_bytes,
};

/// Seed 003's batch limit.
pub const MAX_BATCH: usize = 100;
/// Largest payload, as JSON.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most events one list returns.
pub const MAX_PAGE: usize = 1000;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: String,
    pub topic: String,
    /// The payload as JSON text.
    pub payload: String,
    /// Epoch milliseconds.
    pub at: i64,
}

impl StoredEvent {
    pub fn payload(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or(Value::Null)
    }
    pub fn timestamp(&self) -> String {
        rfc3339(chrono::DateTime::from_timestamp_millis(self.at).unwrap_or_default())
    }
}

/// Topics: 1–256 characters of letters, digits and `. _ - : /`.
pub fn check_topic(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 256 {
        return Err("topic is 1–256 characters, e.g. \"agent.task.completed\"".into());
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
    {
        return Err("topic holds letters, digits and . _ - : / only".into());
    }
    Ok(())
}

/// The event service.
#[derive(Clone)]
pub struct ProjectEvents {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    sink: EventSink,
    retention_secs: i64,
}

/// A list's window and page.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub topic: Option<String>,
    /// Epoch milliseconds, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl ProjectEvents {
    pub fn new(ctx: &Context, retention_days: i64) -> Self {
        ProjectEvents {
            table: ctx.stores().table.clone(),
            clock: ctx.clock().clone(),
            sink: ctx.events().clone(),
            retention_secs: retention_days * 24 * 3600,
        }
    }

    /// `ZERODB_EVENT_RETENTION_DAYS` (default 30).
    pub fn retention_days(s: &Settings) -> Result<i64, String> {
        s.whole_number("ZERODB_EVENT_RETENTION_DAYS", 30i64, 1)
    }

    pub fn retention_days_now(&self) -> i64 {
        self.retention_secs / 86_400
    }

    /// Checks one `{topic, event_payload}` (under `at`).
    pub fn check(topic: &str, payload: &Value, at: &At) -> Result<String, DomainError> {
        check_topic(topic).map_err(|m| at.clone().field("topic").invalid(m))?;
        if !payload.is_object() {
            return Err(at
                .clone()
                .field("event_payload")
                .invalid("event_payload is a JSON object"));
        }
        let text = payload.to_string();
        if text.len() > MAX_PAYLOAD_BYTES {
            return Err(at.clone().field("event_payload").invalid(format!(
                "event_payload is {} bytes as JSON; the limit is {MAX_PAYLOAD_BYTES}",
                text.len()
            )));
        }
        Ok(text)
    }

    /// Stores checked events (≤ 100) in transactions with the project's counters, then
    /// announces each.
    pub async fn publish(
        &self,
        p: &Project,
        events: Vec<(String, String)>,
    ) -> Result<Vec<StoredEvent>, DomainError> {
        let now = self.clock.now();
        let millis = now.timestamp_millis();
        let expires = now.timestamp() + self.retention_secs;
        let stored: Vec<StoredEvent> = events
            .into_iter()
            .map(|(topic, payload)| StoredEvent {
                id: ids::prefixed_id("evt"),
                topic,
                payload,
                at: millis,
            })
            .collect();
        let cost = |e: &StoredEvent| (1, e.payload.len() + 2 * e.topic.len() + 300);
        for chunk in crate::project::transaction_runs(&stored, 1, cost) {
            let mut ops = Vec::with_capacity(chunk.len() + 1);
            let mut bytes = 0i64;
            for e in chunk {
                let key = keys::event(&p.id, e.at, &e.id);
                let mut item = to_item(&key, e, Some(expires))?;
                item.insert(
                    GSI1PK.into(),
                    V::S(keys::event_topic_index(&p.id, &hex::encode(&e.topic))),
                );
                item.insert(GSI1SK.into(), V::S(key.sk.clone()));
                bytes += e.payload.len() as i64;
                ops.push(TxOp::Put {
                    item,
                    condition: None,
                });
            }
            ops.push(count(
                &p.id,
                &[(STAT_EVENTS, chunk.len() as i64), (STAT_EVENT_BYTES, bytes)],
            ));
            self.table.transact(ops).await?;
        }
        self.sink
            .emit(
                stored
                    .iter()
                    .map(|e| {
                        (
                            "zerodb.event.published".to_owned(),
                            "zerodb".to_owned(),
                            json!({"event_id": e.id, "project_id": p.id, "topic": e.topic, "user_id": p.account_id}),
                        )
                    })
                    .collect(),
            )
            .await;
        Ok(stored)
    }

    /// Events newest first, one page. A page stops before its payloads pass
    /// [`ANSWER_BYTES`] (a Lambda answers at most 6 MB: 1,000 events of 64 KB would not
    /// fit), its cursor then going on after the last event returned.
    pub async fn list(
        &self,
        p: &Project,
        q: EventQuery,
    ) -> Result<(Vec<StoredEvent>, Option<Cursor>), DomainError> {
        let lo = format!("{:013}", q.since.unwrap_or(0).max(0));
        let hi = format!("{:013}~", q.until.unwrap_or(9_999_999_999_999).max(0));
        let index = if q.topic.is_some() {
            Index::Gsi1
        } else {
            Index::Primary
        };
        let query = match &q.topic {
            Some(t) => Query::partition(keys::event_topic_index(&p.id, &hex::encode(t))).on(index),
            None => Query::partition(keys::events_partition(&p.id)),
        }
        .sort(SortKey::Between(lo, hi))
        .backward()
        .limit(q.limit.clamp(1, MAX_PAGE))
        .after(q.cursor);
        let page = self.table.query(query).await?;
        let mut out: Vec<StoredEvent> = Vec::with_capacity(page.items.len());
        let (mut bytes, mut last) = (0usize, None);
        for item in page.items {
            let after = Cursor::after(&item, index);
            let e: StoredEvent = from_item(item)?;
            let size = e.payload.len() + json_string_bytes(&e.topic);
            if !out.is_empty() && bytes + size > ANSWER_BYTES {
                return Ok((out, last));
            }
            bytes += size;
            out.push(e);
            last = after;
        }
        Ok((out, page.cursor))
    }
}
