//! RLHF operations on [`zerodb_projects::rlhf::Rlhf`]: an interaction is logged as
//! database-api logs one, `user_input` its prompt and `agent_response` its response, with
//! `{session_id, interaction_type, context}` as its metadata; a session's interactions
//! are those whose `metadata.session_id` is it.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use zerodb_domain::{At, DomainError, Problems};
use zerodb_projects::Access;
use zerodb_projects::filter::Filter;
use zerodb_projects::rlhf::{Interaction, NewInteraction, RlhfQuery};

use crate::McpApi;
use crate::rpc::{Budget, Call, Window, in_params, param, window};

/// How much `rlhf_get_session_interactions` reads to count its `total` (each call reads
/// up to 50 pages of interactions looking for the session's).
const LIST_BUDGET: Budget = Budget {
    calls: 4,
    bytes: 16 * 1024 * 1024,
};

/// A session id or interaction type: 1–`max` characters, no control characters.
fn label(v: &str, name: &str, max: usize) -> Result<(), String> {
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(format!("{name} is 1–{max} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{name} must not hold control characters"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Collect {
    session_id: String,
    project_id: String,
    interaction_type: String,
    user_input: String,
    agent_response: String,
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

/// `rlhf_collect_interaction`.
pub async fn collect_interaction(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Collect = c.params()?;
    let mut problems = Problems::default();
    problems.check(
        param("session_id"),
        label(&req.session_id, "session_id", 256),
    );
    problems.check(
        param("interaction_type"),
        label(&req.interaction_type, "interaction_type", 64),
    );
    problems.into_result()?;
    let metadata = json!({
        "session_id": req.session_id,
        "interaction_type": req.interaction_type,
        "context": Value::Object(req.context.unwrap_or_default()),
    });
    let one = NewInteraction::check(
        req.user_input,
        req.agent_response,
        Some(metadata),
        None,
        &At::body_root(),
    )
    .map_err(|e| {
        in_params(
            e,
            &[
                ("prompt", "user_input"),
                ("response", "agent_response"),
                ("metadata", "context"),
            ],
        )
    })?;
    let p = s
        .tables
        .project(c.caller, &req.project_id, Access::Write)
        .await?;
    let stored = s.rlhf.log(&p, vec![one]).await?;
    let i = &stored[0];
    let v = view(i);
    Ok(json!({
        "interaction_id": i.id,
        "session_id": v["session_id"],
        "interaction_type": v["interaction_type"],
        "created_at": v["created_at"],
    }))
}

/// An interaction as the client reads it.
fn view(i: &Interaction) -> Value {
    let doc = i.to_json();
    let meta = &doc["metadata"];
    json!({
        "interaction_id": i.id,
        "id": i.id,
        "session_id": meta["session_id"],
        "interaction_type": meta["interaction_type"],
        "user_input": i.prompt,
        "agent_response": i.response,
        "context": meta.get("context").cloned().unwrap_or_else(|| json!({})),
        "feedback": doc.get("feedback").cloned().unwrap_or(Value::Null),
        "created_at": doc["created_at"],
    })
}

#[derive(Deserialize)]
struct Session {
    project_id: String,
    session_id: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
}

/// `rlhf_get_session_interactions`: newest first.
pub async fn session_interactions(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Session = c.params()?;
    label(&req.session_id, "session_id", 256).map_err(|m| param("session_id").invalid(m))?;
    let w = Window::parse(req.limit, req.offset, zerodb_projects::tables::MAX_OFFSET)?;
    let filter = Filter::parse(&json!({"metadata.session_id": req.session_id}))
        .map_err(|e| param("session_id").invalid(e.msg))?;
    let p = s
        .tables
        .project(c.caller, &req.project_id, Access::Read)
        .await?;
    let found = window(
        w,
        LIST_BUDGET,
        |i: &Interaction| i.prompt.len() + i.response.len() + i.metadata.len(),
        |_| true,
        |cursor| {
            s.rlhf.list(
                &p,
                RlhfQuery {
                    since: None,
                    until: None,
                    filter: Some(filter.clone()),
                    limit: 1000,
                    cursor,
                },
            )
        },
    )
    .await?;
    Ok(json!({
        "interactions": found.items.iter().map(view).collect::<Vec<_>>(),
        "total": found.total,
        "total_exact": found.exact,
        "has_more": found.has_more(&w),
        "session_id": req.session_id,
        "limit": w.limit,
        "offset": w.offset,
    }))
}
