//! `POST /api/v1/public/instant-db`: no credential; a new account with a project and a
//! key that expires (72 h), for clients that provision themselves
//! (ainative-opencode-memory, zerodb-mem0, zerodb-local's CLI). Open account creation:
//! on by default only in zerodb-local, off in the template unless a parameter enables
//! it, and limited per source address.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use zerodb_domain::clock::rfc3339_secs;
use zerodb_http::{ApiResult, ClientAddr, OptionalJson};
use zerodb_projects::Projects;

/// What the clients send; every field is optional and only logged by name.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct InstantDbRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub agree_terms: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct McpEnv {
    #[serde(rename = "ZERODB_API_KEY")]
    pub zerodb_api_key: String,
    #[serde(rename = "ZERODB_PROJECT_ID")]
    pub zerodb_project_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct McpBlock {
    pub env_vars: McpEnv,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstantDbResponse {
    /// The key, shown once; it expires at `expires_at`.
    pub api_key: String,
    pub key_id: String,
    pub project_id: String,
    pub expires_at: String,
    /// Where the project can be read with the key.
    pub claim_url: String,
    /// This server's address as the request named it.
    pub base_url: String,
    pub mcp: McpBlock,
}

/// Provisions an account, a project and a 72-hour key.
#[utoipa::path(post, path = "/api/v1/public/instant-db", tag = "projects",
    request_body(content = Option<InstantDbRequest>, description = "Optional: every field is only logged"),
    responses((status = 201, body = InstantDbResponse),
        (status = 403, description = "INSTANT_DB_DISABLED", body = zerodb_http::ErrorBody),
        (status = 429, description = "Too many from this address", body = zerodb_http::ErrorBody)))]
pub async fn instant_db(
    State(svc): State<Projects>,
    addr: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<InstantDbRequest>,
) -> ApiResult<(StatusCode, Json<InstantDbResponse>)> {
    let source = addr.map(|axum::Extension(ClientAddr(ip))| ip.to_string());
    tracing::info!(
        source = req
            .source
            .as_deref()
            .map(|s| s.chars().take(40).collect::<String>()),
        "instant-db requested"
    );
    let made = svc.instant_db(source.as_deref()).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let scheme = if host.starts_with("127.0.0.1") || host.starts_with("localhost") {
        "http"
    } else {
        "https"
    };
    let base_url = format!("{scheme}://{host}");
    Ok((
        StatusCode::CREATED,
        Json(InstantDbResponse {
            claim_url: format!("{base_url}/v1/public/projects/{}", made.project.id),
            mcp: McpBlock {
                env_vars: McpEnv {
                    zerodb_api_key: made.api_key.clone(),
                    zerodb_project_id: made.project.id.clone(),
                },
            },
            api_key: made.api_key,
            key_id: made.key_id,
            project_id: made.project.id,
            expires_at: rfc3339_secs(made.expires_at),
            base_url,
        }),
    ))
}
