//! Event operations on [`ProjectEvents`], as database-api publishes and lists them: the
//! client's `event_type` is the topic and its `event_data` the payload.

use database_api::events::millis;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use zerodb_domain::DomainError;
use zerodb_projects::Access;
use zerodb_projects::events::{EventQuery, MAX_PAGE, ProjectEvents, StoredEvent, check_topic};

use crate::McpApi;
use crate::rpc::{Budget, Call, Window, in_params, param, window};

/// How much `list_events` reads to count its `total`.
const LIST_BUDGET: Budget = Budget {
    calls: 20,
    bytes: 16 * 1024 * 1024,
};

/// Longest `source`.
const MAX_SOURCE_CHARS: usize = 256;

fn view(e: &StoredEvent) -> Value {
    json!({
        "event_id": e.id,
        "id": e.id,
        "event_type": e.topic,
        "event_data": e.payload(),
        "created_at": e.timestamp(),
        "timestamp": e.timestamp(),
    })
}

#[derive(Deserialize)]
struct Create {
    project_id: String,
    event_type: String,
    #[serde(default)]
    event_data: Option<Map<String, Value>>,
    #[serde(default)]
    source: Option<String>,
}

/// `create_event`; emits `zerodb.event.published`. `source` is echoed, not stored.
pub async fn create(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Create = c.params()?;
    let source = req.source.unwrap_or_else(|| "sdk".to_owned());
    if source.chars().count() > MAX_SOURCE_CHARS {
        return Err(
            param("source").invalid(format!("source is at most {MAX_SOURCE_CHARS} characters"))
        );
    }
    let payload = Value::Object(req.event_data.unwrap_or_default());
    let text = ProjectEvents::check(&req.event_type, &payload, &zerodb_domain::At::body_root())
        .map_err(|e| {
            in_params(
                e,
                &[("topic", "event_type"), ("event_payload", "event_data")],
            )
        })?;
    let p = s
        .tables
        .project(c.caller, &req.project_id, Access::Write)
        .await?;
    let stored = s.events.publish(&p, vec![(req.event_type, text)]).await?;
    let e = &stored[0];
    let mut v = view(e);
    v["source"] = source.into();
    Ok(v)
}

#[derive(Deserialize)]
struct List {
    project_id: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
}

/// `list_events`: newest first, of one `event_type` and within `start_date`–`end_date`
/// (RFC 3339 or epoch seconds, inclusive) when given.
pub async fn list(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: List = c.params()?;
    let w = Window::parse(req.limit, req.offset, zerodb_projects::tables::MAX_OFFSET)?;
    let topic = req.event_type.filter(|t| !t.is_empty());
    if let Some(t) = &topic {
        check_topic(t).map_err(|m| param("event_type").invalid(m))?;
    }
    let since = req
        .start_date
        .as_deref()
        .map(|d| millis(d, "start_date"))
        .transpose()?;
    let until = req
        .end_date
        .as_deref()
        .map(|d| millis(d, "end_date"))
        .transpose()?;
    if let (Some(a), Some(b)) = (since, until)
        && a > b
    {
        return Err(param("end_date").invalid("end_date is before start_date"));
    }
    let p = s
        .tables
        .project(c.caller, &req.project_id, Access::Read)
        .await?;
    let found = window(
        w,
        LIST_BUDGET,
        |e: &StoredEvent| e.payload.len() + e.topic.len(),
        |_| true,
        |cursor| {
            s.events.list(
                &p,
                EventQuery {
                    topic: topic.clone(),
                    since,
                    until,
                    limit: MAX_PAGE,
                    cursor,
                },
            )
        },
    )
    .await?;
    Ok(json!({
        "events": found.items.iter().map(view).collect::<Vec<_>>(),
        "total": found.total,
        "total_exact": found.exact,
        "has_more": found.has_more(&w),
        "limit": w.limit,
        "offset": w.offset,
        "retention_days": s.events.retention_days_now(),
    }))
}
