//! ainative-agent's files, `/api/v1/public/files/…` (the trailing slash exactly as it
//! sends it), on the account's default project unless `X-Project-ID` names another.
//! Its `upload` registers a file (`{name, content_type, size}`); the bytes then go to the
//! URL `GET …/{file_id}/url` gives (a PUT URL while the file is pending). `download`
//! answers JSON, the bytes in `content_base64`, since the client reads the response as
//! JSON; lists are bare arrays.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::At;
use zerodb_domain::auth::Principal;
use zerodb_domain::clock::rfc3339_secs;
use zerodb_domain::store::Cursor;
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_projects::files::{DEFAULT_URL_SECS, FileStatus, Files, ensure_stored, require};
use zerodb_projects::{Access, Project};

use crate::files::{FileDeleted, UrlParams};
use crate::wire::{
    FileView, UrlView, decode_content, expires_in, link_url, named_project, new_file, page_limit,
    prefix, url_view, view,
};

/// The project these routes act on, after the scope check.
async fn project(
    f: &Files,
    caller: &Principal,
    headers: &HeaderMap,
    access: Access,
) -> ApiResult<Project> {
    require(caller, access)?;
    Ok(f.default_project(caller, named_project(headers)?, access)
        .await?)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RegisterFile {
    /// 1–1024 bytes, no control characters.
    #[serde(default)]
    pub name: Option<String>,
    /// The same, as the project form names it.
    #[serde(default)]
    pub file_name: Option<String>,
    /// Default `application/octet-stream`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The exact size the upload will have; 0 (ainative-agent's default) accepts any up
    /// to the limit.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    pub size: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// The bytes inline, in base64 (at most 4 MiB): the file is stored at once.
    #[serde(default)]
    pub content_base64: Option<String>,
    /// SHA-256 (hex) of inline bytes.
    #[serde(default)]
    pub checksum: Option<String>,
}

/// Registers a file (`{name, content_type, size}`, `file:write`), pending until its bytes
/// are PUT to `GET …/{file_id}/url`'s URL; with `content_base64` it is stored at once.
#[utoipa::path(post, operation_id = "public_files_register", path = "/api/v1/public/files/", tag = "files", request_body = RegisterFile,
    params(("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 201, body = FileView),
        (status = 413, description = "FILE_TOO_LARGE (the limit is named)", body = zerodb_http::ErrorBody)))]
pub async fn register(
    State(f): State<Files>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterFile>,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    require(&caller, Access::Write)?;
    let new = new_file(&f, req.file_name, req.name, req.content_type, req.metadata)?;
    let declared = req.size.unwrap_or(0);
    f.check_declared(declared, At::body("size"))?;
    let content = match req.content_base64 {
        None => None,
        Some(c) => {
            let bytes =
                decode_content(&f, &c, req.checksum.as_deref(), At::body("content_base64"))?;
            if declared > 0 && bytes.len() as i64 != declared {
                return Err(At::body("size")
                    .invalid(format!(
                        "size is {declared} but content_base64 holds {} bytes",
                        bytes.len()
                    ))
                    .into());
            }
            Some(bytes)
        }
    };
    let p = project(&f, &caller, &headers, Access::Write).await?;
    let r = match content {
        Some(bytes) => f.upload(&p, &caller, new, bytes).await?,
        None => f.register(&p, &caller, new, declared).await?,
    };
    Ok((StatusCode::CREATED, Json(view(&r))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublicListParams {
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    /// Only files whose name starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The `X-Next-Cursor` header of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Files by name, as an array (`file:read`); when more follow, the `X-Next-Cursor`
/// header holds the `cursor` of the next page. `[]` for an account with no project yet
/// when no `X-Project-ID` is sent.
#[utoipa::path(get, operation_id = "public_files_list", path = "/api/v1/public/files/", tag = "files", params(PublicListParams),
    responses((status = 200, body = Vec<FileView>,
        headers(("X-Next-Cursor" = String, description = "Present while more files follow")))))]
pub async fn list(
    State(f): State<Files>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PublicListParams>,
) -> ApiResult<Response> {
    require(&caller, Access::Read)?;
    let limit = page_limit(q.limit)?;
    let prefix = prefix(&f, q.prefix)?;
    let cursor = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(Cursor::from_client)
        .transpose()?;
    let named = named_project(&headers)?;
    let p = match f.default_project(&caller, named, Access::Read).await {
        Ok(p) => p,
        // No project named and none yet (reading never makes one): no files.
        Err(e) if named.is_none() && zerodb_projects::project::is_project_not_found(&e) => {
            return Ok(Json(Vec::<FileView>::new()).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let (files, next) = f.list(&p, prefix.as_deref(), limit, cursor).await?;
    let mut resp = Json(files.iter().map(view).collect::<Vec<_>>()).into_response();
    if let Some(c) = next.and_then(|c| HeaderValue::from_str(c.as_str()).ok()) {
        resp.headers_mut().insert("x-next-cursor", c);
    }
    Ok(resp)
}

/// One file (`file:read`).
#[utoipa::path(get, operation_id = "public_files_get", path = "/api/v1/public/files/{file_id}", tag = "files", params(("file_id" = String, Path)),
    responses((status = 200, body = FileView),
        (status = 404, description = "FILE_NOT_FOUND", body = zerodb_http::ErrorBody)))]
pub async fn get(
    State(f): State<Files>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(fid): Path<String>,
) -> ApiResult<Json<FileView>> {
    let p = project(&f, &caller, &headers, Access::Read).await?;
    Ok(Json(view(&f.get(&p, &fid).await?)))
}

/// A download as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadView {
    pub id: String,
    pub file_id: String,
    pub name: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub size_bytes: i64,
    /// The bytes in base64 (standard alphabet, padded); "" when the file is larger than
    /// the inline limit: GET `url` instead.
    pub content_base64: String,
    pub encoding: String,
    /// Whether `content_base64` holds the bytes.
    pub inline: bool,
    /// Where to GET the bytes without a credential, for an hour.
    pub url: String,
    pub expires_at: String,
    pub checksum: String,
}

/// The file's bytes, as JSON (`file:read`); 409 `FILE_NOT_UPLOADED` while pending.
#[utoipa::path(get, operation_id = "public_files_download", path = "/api/v1/public/files/{file_id}/download", tag = "files", params(("file_id" = String, Path)),
    responses((status = 200, body = DownloadView),
        (status = 409, description = "FILE_NOT_UPLOADED", body = zerodb_http::ErrorBody)))]
pub async fn download(
    State(f): State<Files>,
    Auth(caller): Auth,
    headers: HeaderMap,
    uri: Uri,
    Path(fid): Path<String>,
) -> ApiResult<Json<DownloadView>> {
    let p = project(&f, &caller, &headers, Access::Read).await?;
    let r = f.get(&p, &fid).await?;
    let inline = r.status == FileStatus::Stored && r.size as u64 <= f.limits().inline_bytes;
    let content = if inline {
        base64::engine::general_purpose::STANDARD.encode(f.read(&p, &r).await?)
    } else {
        // Pending: 409; else too large to carry inline: the URL it is.
        ensure_stored(&r)?;
        String::new()
    };
    let u = f.url(&p, &r, DEFAULT_URL_SECS).await?;
    Ok(Json(DownloadView {
        id: r.id.clone(),
        file_id: r.id.clone(),
        name: r.name.clone(),
        file_name: r.name.clone(),
        content_type: r.content_type.clone(),
        size: r.size,
        size_bytes: r.size,
        content_base64: content,
        encoding: "base64".into(),
        inline,
        url: link_url(u.link, &headers, &uri),
        expires_at: rfc3339_secs(u.expires_at),
        checksum: r.sha256.clone().unwrap_or_default(),
    }))
}

/// A URL for the file that needs no credential (`file:read`; `file:write` while the
/// file is pending, when it is where its bytes are PUT).
#[utoipa::path(get, operation_id = "public_files_url", path = "/api/v1/public/files/{file_id}/url", tag = "files",
    params(("file_id" = String, Path), UrlParams),
    responses((status = 200, body = UrlView)))]
pub async fn url(
    State(f): State<Files>,
    Auth(caller): Auth,
    headers: HeaderMap,
    uri: Uri,
    Path(fid): Path<String>,
    ApiQuery(q): ApiQuery<UrlParams>,
) -> ApiResult<Json<UrlView>> {
    let expires = expires_in(q.expires_in, At::query("expires_in"))?;
    let p = project(&f, &caller, &headers, Access::Read).await?;
    let r = f.get(&p, &fid).await?;
    if r.status == FileStatus::Pending {
        project(&f, &caller, &headers, Access::Write).await?;
    }
    let u = f.url(&p, &r, expires).await?;
    let expires = if r.status == zerodb_projects::files::FileStatus::Stored {
        expires
    } else {
        expires.min(zerodb_projects::files::MAX_UPLOAD_URL_SECS)
    };
    Ok(Json(url_view(&r.id, u, expires, &headers, &uri)))
}

/// Deletes a file (`file:write`); answers JSON (ainative-agent fails on an empty 200).
#[utoipa::path(delete, operation_id = "public_files_delete", path = "/api/v1/public/files/{file_id}", tag = "files", params(("file_id" = String, Path)),
    responses((status = 200, body = FileDeleted)))]
pub async fn delete(
    State(f): State<Files>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(fid): Path<String>,
) -> ApiResult<Json<FileDeleted>> {
    let p = project(&f, &caller, &headers, Access::Write).await?;
    let r = f.delete(&p, &fid).await?;
    Ok(Json(FileDeleted {
        file_id: r.id.clone(),
        id: r.id,
        deleted: true,
    }))
}
