//! The two routes, the envelope `{"operation", "params"}`, how an operation reads its
//! params (a 422 names `["body", "params", <key>]`), and the paging every list operation
//! shares (`limit`/`offset` and a `total` over the services' cursors).

use std::future::Future;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use zerodb_domain::auth::Principal;
use zerodb_domain::store::Cursor;
use zerodb_domain::{At, DomainError, Loc};
use zerodb_http::extract::{body_bytes, parse_json};
use zerodb_http::{ApiResult, Auth};

use crate::McpApi;

/// Where the operations are listed.
pub const OPERATIONS_PATH: &str = "/api/v1/public/zerodb/mcp/operations";

/// One call of `POST …/mcp/execute`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Envelope {
    /// The operation, e.g. `create_table` (`GET …/mcp/operations` lists them).
    pub operation: String,
    /// The operation's parameters (a JSON object; absent or null is `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Shape>,
}

/// What `params` holds, without keeping it (each operation reads its own params from the
/// body: a 4 MiB upload is not copied twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Shape, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Shape, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// One operation being run: who calls, its name, and the request it came in.
pub struct Call<'a> {
    pub caller: &'a Principal,
    pub operation: &'a str,
    /// The whole request body; [`Call::params`] reads `params` from it.
    body: &'a [u8],
    /// Where the request was sent, for URLs this server signs itself.
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Wrapped<T> {
    #[serde(default)]
    params: Option<T>,
}

impl Call<'_> {
    /// The operation's params as `T`; a missing or mistyped one is a 422 at
    /// `["body", "params", <key>]`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, DomainError> {
        match parse_json::<Wrapped<T>>(self.body)?.params {
            Some(p) => Ok(p),
            // Absent or null: the params of `{}` (or the fields they lack).
            None => parse_json::<Wrapped<T>>(br#"{"params": {}}"#)?
                .params
                .ok_or_else(|| At::body("params").invalid("params is required")),
        }
    }
}

/// Where a param is: `["body", "params", key]`.
pub fn param(key: &str) -> At {
    At::body("params").field(key)
}

/// The 422 of an operation this server does not serve.
pub fn not_served(operation: &str) -> DomainError {
    let name: String = operation.chars().take(80).collect();
    At::body("operation").invalid(format!(
        "operation '{name}' is not served by this server; GET {OPERATIONS_PATH} lists the operations it serves"
    ))
}

/// Moves the locations of a 422 that a shared check or service gave in terms of a REST
/// route (`["body", "rows", 3]`, `["query", "limit"]`) under the params
/// (`["body", "params", "rows", 3]`), renaming the first key where the operation names it
/// otherwise (`topic` → `event_type`). Locations already under the params stay, and so
/// does the envelope's `["body", "operation"]` ([`not_served`]).
pub fn in_params(e: DomainError, renames: &[(&str, &str)]) -> DomainError {
    let DomainError::Validation(errors) = e else {
        return e;
    };
    let is = |l: Option<&Loc>, s: &str| matches!(l, Some(Loc::Field(f)) if f == s);
    DomainError::Validation(
        errors
            .into_iter()
            .map(|mut fe| {
                let envelope = is(fe.loc.first(), "body")
                    && (is(fe.loc.get(1), "params") || is(fe.loc.get(1), "operation"));
                let request_part = ["body", "query", "path"]
                    .iter()
                    .any(|p| is(fe.loc.first(), p));
                if request_part && !envelope {
                    let mut rest: Vec<Loc> = fe.loc.split_off(1);
                    if let Some(Loc::Field(f)) = rest.first_mut()
                        && let Some((_, to)) = renames.iter().find(|(from, _)| from == f)
                    {
                        *f = (*to).to_owned();
                    }
                    fe.loc = vec![Loc::from("body"), Loc::from("params")];
                    fe.loc.extend(rest);
                }
                fe
            })
            .collect(),
    )
}

/// A whole number param within `lo..=hi` (`default` when absent), with the message the
/// REST route gives.
pub fn bounded(
    v: Option<i64>,
    key: &str,
    default: usize,
    lo: usize,
    hi: usize,
    msg: &str,
) -> Result<usize, DomainError> {
    match v {
        None => Ok(default),
        Some(n) if n >= lo as i64 && n <= hi as i64 => Ok(n as usize),
        Some(_) => Err(param(key).invalid(msg)),
    }
}

/// A list operation's `limit` (1–1000, default 100) and `offset` (0–`max_offset`).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: usize,
    pub offset: usize,
}

impl Window {
    pub fn parse(
        limit: Option<i64>,
        offset: Option<i64>,
        max_offset: usize,
    ) -> Result<Window, DomainError> {
        Ok(Window {
            limit: bounded(limit, "limit", 100, 1, 1000, "limit is 1–1000")?,
            offset: bounded(
                offset,
                "offset",
                0,
                0,
                max_offset,
                &format!("offset is 0–{max_offset}"),
            )?,
        })
    }
}

/// How much a list reads to count its `total` past the page it returns.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Calls of the service's list (each one page of its own).
    pub calls: usize,
    /// Bytes of items read.
    pub bytes: usize,
}

/// The items of a window and what was counted.
#[derive(Debug)]
pub struct Windowed<T> {
    pub items: Vec<T>,
    /// Items that matched, all of them when `exact`; else those the budget reached.
    pub total: usize,
    pub exact: bool,
}

impl<T> Windowed<T> {
    /// Whether matching items follow this page.
    pub fn has_more(&self, w: &Window) -> bool {
        !self.exact || w.offset + self.items.len() < self.total
    }
}

/// Pages through a service's cursor list (`next` reads one page after a cursor), keeping
/// the items of the window among those `keep` accepts and counting them all, until the
/// list ends or the budget is spent (then `total` is what was counted, and not `exact`).
pub async fn window<T, F, Fut>(
    w: Window,
    budget: Budget,
    size: impl Fn(&T) -> usize,
    keep: impl Fn(&T) -> bool,
    mut next: F,
) -> Result<Windowed<T>, DomainError>
where
    F: FnMut(Option<Cursor>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<Cursor>), DomainError>>,
{
    let (mut items, mut total, mut bytes, mut calls) = (Vec::new(), 0usize, 0usize, 0usize);
    let mut cursor = None;
    loop {
        let (page, more) = next(cursor).await?;
        calls += 1;
        for it in page {
            bytes += size(&it);
            if !keep(&it) {
                continue;
            }
            if total >= w.offset && items.len() < w.limit {
                items.push(it);
            }
            total += 1;
        }
        match more {
            None => {
                return Ok(Windowed {
                    items,
                    total,
                    exact: true,
                });
            }
            Some(c) if calls < budget.calls && bytes < budget.bytes => cursor = Some(c),
            Some(_) => {
                return Ok(Windowed {
                    items,
                    total,
                    exact: false,
                });
            }
        }
    }
}

/// Runs one operation (`{"operation": <name>, "params": {...}}`) and answers 200 with
/// its result. Errors keep the status and code they have on the REST routes (404
/// `PROJECT_NOT_FOUND`, 403 `PERM_001`, 409 `TABLE_EXISTS`, …); a bad param is a 422 at
/// `["body", "params", <key>]`, and an operation this server does not serve a 422 at
/// `["body", "operation"]`.
#[utoipa::path(post, path = "/api/v1/public/zerodb/mcp/execute", tag = "mcp",
    request_body = Envelope,
    responses((status = 200, description = "The operation's result (an object; `list_embedding_models` a list)", body = Object),
        (status = 422, description = "A bad param, or an operation not served", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn execute(
    State(s): State<McpApi>,
    Auth(caller): Auth,
    headers: HeaderMap,
    uri: Uri,
    req: Request,
) -> ApiResult<Json<Value>> {
    let body = body_bytes(req, &()).await?;
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(DomainError::from(At::body_root().problem_of(
                "request body is required: {\"operation\": ..., \"params\": {...}}",
                "value_error.missing",
            ))
            .into());
        }
        Some(_) => {
            return Err(DomainError::from(At::body_root().problem_of(
                "request body must be a JSON object: {\"operation\": ..., \"params\": {...}}",
                "type_error.dict",
            ))
            .into());
        }
    }
    let envelope: Envelope = parse_json(&body)?;
    if envelope.params == Some(Shape::Other) {
        return Err(DomainError::from(At::body("params").problem_of(
            "params is a JSON object of the operation's parameters",
            "type_error.dict",
        ))
        .into());
    }
    let call = Call {
        caller: &caller,
        operation: envelope.operation.as_str(),
        body: &body,
        headers: &headers,
        uri: &uri,
    };
    let result = crate::dispatch(&s, &call)
        .await
        .map_err(|e| in_params(e, &[]));
    if let Err(e) = &result {
        tracing::debug!(operation = call.operation, error = %e, "mcp operation refused");
    }
    Ok(Json(result?))
}

/// One served operation, as `GET …/operations` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationView {
    pub name: &'static str,
    /// projects, tables, files, events, rlhf or embeddings.
    pub area: &'static str,
    /// The scope the credential needs.
    pub scope: &'static str,
    pub description: &'static str,
    /// Each param with its type, and `required` or its default.
    #[schema(value_type = Object)]
    pub params: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperationList {
    pub operations: Vec<OperationView>,
    pub total: usize,
    /// How to call them.
    pub execute: &'static str,
    /// What any other operation name gets.
    pub not_served: &'static str,
}

/// The operations this server serves, with their params.
#[utoipa::path(get, path = "/api/v1/public/zerodb/mcp/operations", tag = "mcp",
    responses((status = 200, body = OperationList)))]
pub async fn operations(Auth(_caller): Auth) -> Json<OperationList> {
    let operations: Vec<OperationView> = crate::catalog::OPERATIONS
        .iter()
        .map(|o| OperationView {
            name: o.name,
            area: o.area,
            scope: o.scope,
            description: o.description,
            params: Value::Object(
                o.params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                    .collect(),
            ),
        })
        .collect();
    Json(OperationList {
        total: operations.len(),
        operations,
        execute: "POST /api/v1/public/zerodb/mcp/execute {\"operation\": <name>, \"params\": {...}}",
        not_served: "any other operation is a 422 naming it (detail at [\"body\", \"operation\"])",
    })
}
