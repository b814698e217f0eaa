//! Files under `/api/v1/projects/{project_id}/database/files`: upload inline (JSON with
//! `content_base64`, up to the inline limit), or register and PUT the bytes to an upload
//! URL (`upload-url`, up to the file limit); metadata, download (a redirect to S3 for
//! files too large for a Lambda response), list by name prefix with a cursor, a URL to
//! share, and delete. `file:read` / `file:write`, then the project gate.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::At;
use zerodb_domain::clock::rfc3339_secs;
use zerodb_domain::store::Cursor;
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_projects::Access;
use zerodb_projects::files::{FileStatus, Files, Link, require};

use crate::wire::{
    FileView, UrlView, bytes_response, decode_content, expires_in, link_url, new_file, page_limit,
    prefix, redirect, url_view, view,
};

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UploadFile {
    /// 1–1024 bytes, no control characters; `/` is fine (`reports/2026/q1.pdf`).
    #[serde(default)]
    pub file_name: Option<String>,
    /// The same, as ainative-agent names it.
    #[serde(default)]
    pub name: Option<String>,
    /// The bytes in base64, at most 4 MiB decoded (`ZERODB_FILE_INLINE_MAX_BYTES`);
    /// larger files go through `POST .../files/upload-url`.
    #[serde(default)]
    pub content_base64: Option<String>,
    /// A MIME type; default `application/octet-stream`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// A JSON object of at most 16 KB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// SHA-256 of the bytes (hex): a mismatch is a 422 and nothing is stored.
    #[serde(default)]
    pub checksum: Option<String>,
}

/// Uploads a file inline (`file:write`); emits `zerodb.file.uploaded`.
#[utoipa::path(post, operation_id = "files_upload", path = "/api/v1/projects/{project_id}/database/files", tag = "files",
    params(("project_id" = String, Path)), request_body = UploadFile,
    responses((status = 201, body = FileView),
        (status = 413, description = "FILE_TOO_LARGE (the limit is named)", body = zerodb_http::ErrorBody),
        (status = 422, body = zerodb_http::error::ValidationErrorBody)))]
pub async fn upload(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<UploadFile>,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    require(&caller, Access::Write)?;
    let new = new_file(&f, req.file_name, req.name, req.content_type, req.metadata)?;
    let content = req.content_base64.ok_or_else(|| {
        At::body("content_base64").problem_of(
            "field required: the file's bytes in base64 (for files over the inline limit, POST .../files/upload-url)",
            "value_error.missing",
        )
    })?;
    let bytes = decode_content(
        &f,
        &content,
        req.checksum.as_deref(),
        At::body("content_base64"),
    )?;
    let p = f.project(&caller, &pid, Access::Write).await?;
    let r = f.upload(&p, &caller, new, bytes).await?;
    Ok((StatusCode::CREATED, Json(view(&r))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only files whose name starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileView>,
    pub count: usize,
    /// Present while more files follow.
    pub next_cursor: Option<String>,
    pub limit: usize,
    pub prefix: String,
}

/// Files by name, optionally those starting with `prefix` (`file:read`), a page at a
/// time.
#[utoipa::path(get, operation_id = "files_list", path = "/api/v1/projects/{project_id}/database/files", tag = "files",
    params(("project_id" = String, Path), ListParams),
    responses((status = 200, body = FileList)))]
pub async fn list(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<FileList>> {
    require(&caller, Access::Read)?;
    let limit = page_limit(q.limit)?;
    let prefix = prefix(&f, q.prefix)?;
    let cursor = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(Cursor::from_client)
        .transpose()?;
    let p = f.project(&caller, &pid, Access::Read).await?;
    let (files, next) = f.list(&p, prefix.as_deref(), limit, cursor).await?;
    Ok(Json(FileList {
        count: files.len(),
        files: files.iter().map(view).collect(),
        next_cursor: next.map(|c| c.as_str().to_owned()),
        limit,
        prefix: prefix.unwrap_or_default(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewUpload {
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// The exact size of the upload, when known: the URL then takes no other (and a size
    /// past the limit is refused here). 0 or absent: any size up to the limit, checked
    /// when the bytes arrive.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    pub size_bytes: Option<i64>,
    /// The same, as ainative-agent names it.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    pub size: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Seconds the URL lives: 1–604800, default 3600.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTicket {
    pub file_id: String,
    /// PUT the bytes here (no credential: the URL is one).
    pub upload_url: String,
    pub method: String,
    pub expires_in: u64,
    pub expires_at: String,
    /// The most bytes the upload may have.
    pub max_size_bytes: u64,
    pub file: FileView,
}

/// Registers a file and returns a URL to PUT its bytes to (`file:write`): S3's presigned
/// URL on AWS, this server's signed one locally. The file is `pending` until they arrive
/// (then `zerodb.file.uploaded` is emitted).
#[utoipa::path(post, operation_id = "files_upload_url", path = "/api/v1/projects/{project_id}/database/files/upload-url", tag = "files",
    params(("project_id" = String, Path)), request_body = NewUpload,
    responses((status = 201, body = UploadTicket),
        (status = 413, description = "FILE_TOO_LARGE: the declared size is past the limit", body = zerodb_http::ErrorBody)))]
pub async fn upload_url(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    ApiJson(req): ApiJson<NewUpload>,
) -> ApiResult<(StatusCode, Json<UploadTicket>)> {
    require(&caller, Access::Write)?;
    let new = new_file(&f, req.file_name, req.name, req.content_type, req.metadata)?;
    let (declared, at) = match (req.size_bytes, req.size) {
        (Some(n), _) => (n, "size_bytes"),
        (None, Some(n)) => (n, "size"),
        (None, None) => (0, "size_bytes"),
    };
    f.check_declared(declared, At::body(at))?;
    // An upload URL lives an hour at most (it can be used again until it expires).
    let expires = expires_in(req.expires_in, At::body("expires_in"))?
        .min(zerodb_projects::files::MAX_UPLOAD_URL_SECS);
    let p = f.project(&caller, &pid, Access::Write).await?;
    let r = f.register(&p, &caller, new, declared).await?;
    let u = f.url(&p, &r, expires).await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadTicket {
            file_id: r.id.clone(),
            upload_url: link_url(u.link, &headers, &uri),
            method: u.method.as_str().to_owned(),
            expires_in: expires,
            expires_at: rfc3339_secs(u.expires_at),
            max_size_bytes: if declared > 0 {
                declared as u64
            } else {
                f.limits().max_bytes
            },
            file: view(&r),
        }),
    ))
}

/// One file's metadata (`file:read`); 404 `FILE_NOT_FOUND`.
#[utoipa::path(get, operation_id = "files_get", path = "/api/v1/projects/{project_id}/database/files/{file_id}", tag = "files",
    params(("project_id" = String, Path), ("file_id" = String, Path)),
    responses((status = 200, body = FileView),
        (status = 404, description = "FILE_NOT_FOUND or PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody)))]
pub async fn get(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path((pid, fid)): Path<(String, String)>,
) -> ApiResult<Json<FileView>> {
    let p = f.project(&caller, &pid, Access::Read).await?;
    Ok(Json(view(&f.get(&p, &fid).await?)))
}

/// The file's bytes with its content type (`file:read`); a file larger than a Lambda
/// response can carry is a 307 to a presigned S3 URL. 409 `FILE_NOT_UPLOADED` while
/// pending.
#[utoipa::path(get, operation_id = "files_download", path = "/api/v1/projects/{project_id}/database/files/{file_id}/download", tag = "files",
    params(("project_id" = String, Path), ("file_id" = String, Path)),
    responses((status = 200, description = "The bytes", body = Vec<u8>),
        (status = 307, description = "Where to GET the bytes (S3)"),
        (status = 409, description = "FILE_NOT_UPLOADED", body = zerodb_http::ErrorBody)))]
pub async fn download(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path((pid, fid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let p = f.project(&caller, &pid, Access::Read).await?;
    let r = f.get(&p, &fid).await?;
    if r.status == FileStatus::Stored
        && r.size as u64 > f.limits().inline_bytes
        && let Link::Direct(u) = f
            .url(&p, &r, zerodb_projects::files::DEFAULT_URL_SECS)
            .await?
            .link
    {
        return Ok(redirect(&u));
    }
    let bytes = f.read(&p, &r).await?;
    Ok(bytes_response(&r, bytes))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UrlParams {
    /// Seconds the URL lives: 1–604800, default 3600.
    #[serde(default)]
    #[param(minimum = 1, maximum = 604800)]
    pub expires_in: Option<i64>,
}

/// A URL for the file's bytes that needs no credential (`file:read`): GET for a stored
/// file, PUT for a pending one.
#[utoipa::path(get, operation_id = "files_url", path = "/api/v1/projects/{project_id}/database/files/{file_id}/url", tag = "files",
    params(("project_id" = String, Path), ("file_id" = String, Path), UrlParams),
    responses((status = 200, body = UrlView)))]
pub async fn url(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path((pid, fid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    ApiQuery(q): ApiQuery<UrlParams>,
) -> ApiResult<Json<UrlView>> {
    let expires = expires_in(q.expires_in, At::query("expires_in"))?;
    let p = f.project(&caller, &pid, Access::Read).await?;
    let r = f.get(&p, &fid).await?;
    // Handing out an upload URL is a write.
    if r.status == FileStatus::Pending {
        f.project(&caller, &pid, Access::Write).await?;
    }
    let u = f.url(&p, &r, expires).await?;
    let expires = if r.status == FileStatus::Stored {
        expires
    } else {
        expires.min(zerodb_projects::files::MAX_UPLOAD_URL_SECS)
    };
    Ok(Json(url_view(&r.id, u, expires, &headers, &uri)))
}

/// Stores the bytes PUT straight to S3 (`file:write`); idempotent. 409
/// `FILE_NOT_UPLOADED` while none have arrived; 413 when they are past the limit (they
/// are deleted). Reading the file does the same, so calling this is optional.
#[utoipa::path(post, operation_id = "files_complete", path = "/api/v1/projects/{project_id}/database/files/{file_id}/complete", tag = "files",
    params(("project_id" = String, Path), ("file_id" = String, Path)),
    responses((status = 200, body = FileView),
        (status = 409, description = "FILE_NOT_UPLOADED", body = zerodb_http::ErrorBody)))]
pub async fn complete(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path((pid, fid)): Path<(String, String)>,
) -> ApiResult<Json<FileView>> {
    let p = f.project(&caller, &pid, Access::Write).await?;
    Ok(Json(view(&f.complete(&p, &fid).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileDeleted {
    pub id: String,
    pub file_id: String,
    pub deleted: bool,
}

/// Deletes a file, its record and its bytes (`file:write`).
#[utoipa::path(delete, operation_id = "files_delete", path = "/api/v1/projects/{project_id}/database/files/{file_id}", tag = "files",
    params(("project_id" = String, Path), ("file_id" = String, Path)),
    responses((status = 200, body = FileDeleted)))]
pub async fn delete(
    State(f): State<Files>,
    Auth(caller): Auth,
    Path((pid, fid)): Path<(String, String)>,
) -> ApiResult<Json<FileDeleted>> {
    let p = f.project(&caller, &pid, Access::Write).await?;
    let r = f.delete(&p, &fid).await?;
    Ok(Json(FileDeleted {
        file_id: r.id.clone(),
        id: r.id,
        deleted: true,
    }))
}
