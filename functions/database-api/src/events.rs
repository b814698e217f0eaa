//! Published events under `/api/v1/projects/{project_id}/database/events`: publish one,
//! publish up to 100 (seed 003), list newest first by topic and time window, paged.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::store::Cursor;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_projects::events::{EventQuery, MAX_BATCH, ProjectEvents, StoredEvent, check_topic};
use zerodb_projects::{Access, Tables};

#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishEvent {
    /// e.g. `agent.task.completed`: letters, digits and `. _ - : /`, at most 256.
    #[serde(default)]
    pub topic: Option<String>,
    /// Seed 004's agent example names the topic `event_type`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// A JSON object of at most 64 KB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub event_payload: Option<serde_json::Map<String, Value>>,
    /// Seed 004's example names the payload `data`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub event_id: String,
    pub topic: String,
    #[schema(value_type = Object)]
    pub event_payload: Value,
    pub timestamp: String,
    pub created_at: String,
}

fn view(e: &StoredEvent) -> EventView {
    EventView {
        id: e.id.clone(),
        event_id: e.id.clone(),
        topic: e.topic.clone(),
        event_payload: e.payload(),
        timestamp: e.timestamp(),
        created_at: e.timestamp(),
    }
}

fn parse(e: PublishEvent, at: At) -> Result<(String, String), DomainError> {
    let topic = e.topic.or(e.event_type).ok_or_else(|| {
        DomainError::from(
            at.clone()
                .field("topic")
                .problem_of("field required", "value_error.missing"),
        )
    })?;
    let payload = Value::Object(e.event_payload.or(e.data).unwrap_or_default());
    let text = ProjectEvents::check(&topic, &payload, &at)?;
    Ok((topic, text))
}

/// Publishes one event (`zerodb:write`); emits `zerodb.event.published`.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/events", tag = "events",
    params(("project_id" = String, Path)), request_body = PublishEvent,
    responses((status = 201, body = EventView)))]
pub async fn publish(
    State(t): State<Tables>,
    State(ev): State<ProjectEvents>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<PublishEvent>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let one = parse(req, At::body_root())?;
    let p = t.project(&caller, &pid, Access::Write).await?;
    let stored = ev.publish(&p, vec![one]).await?;
    Ok((StatusCode::CREATED, Json(view(&stored[0]))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PublishBatch {
    /// 1–100 `{topic, event_payload}`.
    #[schema(min_items = 1, max_items = 100)]
    pub events: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub published: usize,
    pub event_ids: Vec<String>,
}

/// Publishes up to 100 events (`zerodb:write`); one over, or any invalid, writes nothing.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/events/batch", tag = "events",
    params(("project_id" = String, Path)), request_body = PublishBatch,
    responses((status = 201, body = Published),
        (status = 422, body = zerodb_http::error::ValidationErrorBody)))]
pub async fn publish_batch(
    State(t): State<Tables>,
    State(ev): State<ProjectEvents>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<PublishBatch>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    let checked = crate::batch_items(
        req.events,
        "events",
        MAX_BATCH,
        "an event",
        |e: PublishEvent, at| parse(e, at),
    )?;
    let p = t.project(&caller, &pid, Access::Write).await?;
    let stored = ev.publish(&p, checked).await?;
    Ok((
        StatusCode::CREATED,
        Json(Published {
            published: stored.len(),
            event_ids: stored.into_iter().map(|e| e.id).collect(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    #[serde(default)]
    pub topic: Option<String>,
    /// RFC 3339 or epoch seconds, inclusive.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
    pub count: usize,
    pub next_cursor: Option<String>,
    /// Days events are kept.
    pub retention_days: i64,
}

/// A time as epoch milliseconds: RFC 3339 or epoch seconds.
pub fn millis(s: &str, name: &str) -> Result<i64, DomainError> {
    let s = s.trim();
    // Keys hold 13 digits of milliseconds (until the year 2286).
    let clamp = |ms: i64| ms.clamp(0, 9_999_999_999_999);
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(clamp(secs.saturating_mul(1000)));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| clamp(t.timestamp_millis()))
        .map_err(|_| {
            At::query(name).invalid(format!("{name} is an RFC 3339 time or epoch seconds"))
        })
}

/// `since` and `until`, in order.
pub fn window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), DomainError> {
    let since = since.map(|s| millis(s, "since")).transpose()?;
    let until = until.map(|s| millis(s, "until")).transpose()?;
    if let (Some(a), Some(b)) = (since, until)
        && a > b
    {
        return Err(At::query("until").invalid("until is before since"));
    }
    Ok((since, until))
}

/// Events newest first (`zerodb:read`), optionally of one topic, within a window.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/events", tag = "events",
    params(("project_id" = String, Path), EventParams),
    responses((status = 200, body = EventList)))]
pub async fn list(
    State(t): State<Tables>,
    State(ev): State<ProjectEvents>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiQuery(q): ApiQuery<EventParams>,
) -> ApiResult<Json<EventList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit").invalid("limit is 1–1000").into());
    }
    if let Some(topic) = &q.topic {
        check_topic(topic).map_err(|m| At::query("topic").invalid(m))?;
    }
    let (since, until) = window(q.since.as_deref(), q.until.as_deref())?;
    let cursor = q.cursor.as_deref().map(Cursor::from_client).transpose()?;
    let p = t.project(&caller, &pid, Access::Read).await?;
    let (events, next) = ev
        .list(
            &p,
            EventQuery {
                topic: q.topic,
                since,
                until,
                limit,
                cursor,
            },
        )
        .await?;
    Ok(Json(EventList {
        count: events.len(),
        events: events.iter().map(view).collect(),
        next_cursor: next.map(|c| c.as_str().to_owned()),
        retention_days: ev.retention_days_now(),
    }))
}
