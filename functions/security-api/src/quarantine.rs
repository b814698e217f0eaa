//! `POST /api/v1/public/security/quarantine`: the wire form of `zerodb_quarantine`.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_quarantine::{ContentType, MAX_CONTENT_CHARS, Report};

/// Inputs above this many bytes are quarantined on a blocking thread (tens of
/// milliseconds), so one large document never stalls the requests beside it.
const INLINE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
pub struct QuarantineRequest {
    /// The untrusted text (at most 500,000 characters).
    #[schema(max_length = 500000)]
    pub content: String,
    /// How to read it: `pdf_extract`, `html`, `ocr` or `markdown`.
    #[schema(pattern = "^(pdf_extract|html|ocr|markdown)$")]
    pub content_type: String,
    /// Remove links and bare URLs, keeping link text (default true). Images pointing
    /// outside are removed either way.
    #[serde(default = "yes")]
    pub strip_links: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineResponse {
    /// The content with every stripped item removed: pass this to an agent.
    pub sanitized: String,
    /// Distinct threats found: `hidden_unicode`, `html_comment_injection`,
    /// `script_injection`, `base64_blob`, `external_links`, `instruction_injection`.
    pub threats_detected: Vec<String>,
    /// Items removed (planted instructions are reported, not removed).
    pub stripped_count: usize,
    /// False when scripts, base64 blobs or planted instructions were found: send the
    /// content to a person for review rather than to an agent.
    pub safe_to_use: bool,
    /// 0–1: how likely the content is an attack (see the README for the formula).
    pub risk_score: f32,
    /// What a reviewer should look at (at most 100).
    pub findings: Vec<FindingView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingView {
    pub threat: String,
    /// Character offsets into `sanitized` of text that remains there; null for what was
    /// stripped.
    pub start: Option<usize>,
    pub end: Option<usize>,
    /// The text concerned, shortened; invisible characters written as `\u{...}`, Unicode
    /// tag characters decoded to the ASCII they hide.
    pub excerpt: String,
}

impl From<Report> for QuarantineResponse {
    fn from(r: Report) -> Self {
        QuarantineResponse {
            threats_detected: r.threats.iter().map(|t| t.as_str().to_owned()).collect(),
            stripped_count: r.stripped_count,
            safe_to_use: r.safe_to_use,
            risk_score: r.risk_score,
            findings: r
                .findings
                .into_iter()
                .map(|f| FindingView {
                    threat: f.threat.as_str().to_owned(),
                    start: f.span.map(|s| s.0),
                    end: f.span.map(|s| s.1),
                    excerpt: f.excerpt,
                })
                .collect(),
            sanitized: r.sanitized,
        }
    }
}

/// Quarantine: strip what untrusted content hides from or plants for an agent.
///
/// Any valid key may call it. The content is neither logged nor stored.
#[utoipa::path(post, path = "/api/v1/public/security/quarantine", tag = "security",
    request_body = QuarantineRequest,
    responses(
        (status = 200, body = QuarantineResponse),
        (status = 422, description = "Content too long or unknown content type", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn quarantine(
    Auth(caller): Auth,
    ApiJson(req): ApiJson<QuarantineRequest>,
) -> ApiResult<Json<QuarantineResponse>> {
    let mut problems = Vec::new();
    let content_type = req.content_type.parse::<ContentType>().map_err(|e| {
        problems.push(
            At::body("content_type")
                .problem(format!("{e}; got {:?}", truncate(&req.content_type, 40))),
        )
    });
    // Bytes bound characters from above, so most requests skip the count.
    let chars = if req.content.len() > MAX_CONTENT_CHARS {
        req.content.chars().count()
    } else {
        0
    };
    if chars > MAX_CONTENT_CHARS {
        problems.push(At::body("content").problem(format!(
            "content is {chars} characters, over the limit of {MAX_CONTENT_CHARS}; split it and quarantine each part"
        )));
    }
    let Ok(content_type) = content_type else {
        return Err(DomainError::Validation(problems).into());
    };
    if !problems.is_empty() {
        return Err(DomainError::Validation(problems).into());
    }
    let (content, strip_links) = (req.content, req.strip_links);
    let bytes = content.len();
    let report = if bytes <= INLINE_BYTES {
        zerodb_quarantine::quarantine(&content, content_type, strip_links)
    } else {
        tokio::task::spawn_blocking(move || {
            zerodb_quarantine::quarantine(&content, content_type, strip_links)
        })
        .await
        .map_err(|e| DomainError::Unexpected(anyhow::anyhow!("quarantine task failed: {e}")))?
    };
    // Sizes and verdicts only: the content itself is never logged.
    tracing::info!(
        account = %caller.account_id,
        content_type = content_type.as_str(),
        bytes,
        stripped = report.stripped_count,
        safe = report.safe_to_use,
        risk = report.risk_score,
        "quarantined"
    );
    Ok(Json(report.into()))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
