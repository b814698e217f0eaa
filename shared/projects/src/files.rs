//! A project's files: bytes in the Blobs store under the project's prefix, a record
//! (name, content type, size, metadata, status) in the table by id and by name. A file is
//! uploaded inline (bounded so the request fits a Lambda), or registered first and its
//! bytes PUT to an expiring URL: S3's own presigned URL on AWS, one this service signs
//! (and zerodb-local serves) where the store cannot presign. The project's counters move
//! in the transaction of the record write, and `zerodb.file.uploaded` (seed 002) is
//! emitted once bytes and record are both stored.

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use zerodb_domain::auth::Principal;
use zerodb_domain::clock::Clock;
use zerodb_domain::events::EventSink;
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::scope::{Permission, ScopeSet, Service};
use zerodb_domain::store::{
    Blobs, Condition, Cursor, GSI1PK, GSI1SK, Index, Item, Query, StoreError, Table, TxOp, Value,
};
use zerodb_domain::{At, Context, DomainError, Refusal, Settings, ids, keys};

use crate::project::{
    Access, Project, Projects, STAT_FILE_BYTES, STAT_FILES, count, valid_project_id,
};
use crate::purge::file_blob_prefix;

/// Inline uploads and downloads (bytes inside a JSON request or response), by default.
pub const DEFAULT_INLINE_BYTES: u64 = 4 * 1024 * 1024;
/// The most an operator may allow inline: base64 makes it 4/3 larger, and the request
/// must stay under the 6 MiB a Lambda receives (and returns), JSON around it included.
pub const MAX_INLINE_BYTES: u64 = 4_600_000;
/// Uploads through an upload URL, by default.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// S3's largest single PUT.
pub const MAX_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// File names: DynamoDB's sort-key limit, since the name is the index's sort key.
pub const MAX_NAME_BYTES: usize = 1024;
/// Metadata, as JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Content types.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Most files one list returns.
pub const MAX_PAGE: usize = 1000;
/// Signed URLs live 1 s to 7 days (SigV4's longest), 1 hour unless asked.
pub const MAX_URL_SECS: u64 = 7 * 24 * 3600;
/// Longest life of an upload URL (one can be used again until it expires).
pub const MAX_UPLOAD_URL_SECS: u64 = 3600;
pub const DEFAULT_URL_SECS: u64 = 3600;
/// What a file's content type is when the client does not say.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// The purpose the URL-signing key is derived for (see `AuthService::derived_key`).
const URL_KEY_PURPOSE: &str = "signed-file-urls";
/// Version of the signed-URL token layout.
const TOKEN_VERSION: &str = "1";
/// Longest token accepted, well above any we issue.
const MAX_TOKEN_CHARS: usize = 1024;

/// Size limits, read once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Bytes uploaded or downloaded inside JSON (`ZERODB_FILE_INLINE_MAX_BYTES`).
    pub inline_bytes: u64,
    /// Bytes of one file (`ZERODB_FILE_MAX_BYTES`).
    pub max_bytes: u64,
    /// Bytes of a file name (`ZERODB_FILE_NAME_MAX_BYTES`).
    pub name_bytes: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            inline_bytes: DEFAULT_INLINE_BYTES,
            max_bytes: DEFAULT_MAX_BYTES,
            name_bytes: MAX_NAME_BYTES,
        }
    }
}

impl FileLimits {
    /// `ZERODB_FILE_INLINE_MAX_BYTES` (default 4 MiB, at most 4,600,000),
    /// `ZERODB_FILE_MAX_BYTES` (default 100 MiB, at most 5 GiB),
    /// `ZERODB_FILE_NAME_MAX_BYTES` (default and most 1024).
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        let at_most = |name: &str, v: u64, max: u64| {
            if v > max {
                Err(format!("{name} is at most {max}, not {v}"))
            } else {
                Ok(v)
            }
        };
        let inline = s.whole_number("ZERODB_FILE_INLINE_MAX_BYTES", DEFAULT_INLINE_BYTES, 1)?;
        let max = s.whole_number("ZERODB_FILE_MAX_BYTES", DEFAULT_MAX_BYTES, 1)?;
        let name = s.whole_number("ZERODB_FILE_NAME_MAX_BYTES", MAX_NAME_BYTES as u64, 1)?;
        Ok(FileLimits {
            inline_bytes: at_most("ZERODB_FILE_INLINE_MAX_BYTES", inline, MAX_INLINE_BYTES)?,
            max_bytes: at_most("ZERODB_FILE_MAX_BYTES", max, MAX_MAX_BYTES)?,
            name_bytes: at_most("ZERODB_FILE_NAME_MAX_BYTES", name, MAX_NAME_BYTES as u64)?
                as usize,
        })
    }
}

/// Whether a file's bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Registered; its bytes have not arrived.
    Pending,
    Stored,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Stored => "stored",
        }
    }
}

/// A file as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub content_type: String,
    /// Bytes stored; 0 while pending.
    pub size: i64,
    /// The size a registration declared, which its upload must match (0: not declared).
    #[serde(default)]
    pub declared_size: i64,
    pub status: FileStatus,
    /// JSON text of an object.
    #[serde(default)]
    pub metadata: String,
    /// SHA-256 of the bytes (hex), where they passed through this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The key that created it.
    pub created_by: String,
}

impl FileRecord {
    pub fn metadata(&self) -> Json {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| json!({}))
    }
}

/// A file's name, type and metadata, checked.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub content_type: String,
    /// JSON text of an object.
    pub metadata: String,
}

/// A name: 1 to `max` bytes, no control characters (it is shown, listed and matched by
/// prefix; `/` is fine, so names may read as paths).
pub fn check_name(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("file name must not be empty".into());
    }
    if name.len() > max {
        return Err(format!(
            "file name is {} bytes; the limit is {max}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("file name must not hold control characters (newlines, tabs, NUL, ...)".into());
    }
    // Invisible and direction-changing characters let a name show as another
    // (`invoice\u{202e}fdp.exe`).
    let format = |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}');
    if name.chars().any(format) {
        return Err("file name must not hold invisible or direction-changing characters (U+200B–U+200F, U+202A–U+202E, U+2060–U+2069, U+2028, U+2029, U+FEFF)".into());
    }
    Ok(())
}

/// A MIME type such as `text/plain; charset=utf-8`; blank or absent is
/// `application/octet-stream`.
pub fn check_content_type(ct: Option<&str>) -> Result<String, String> {
    let ct = ct.map(str::trim).unwrap_or_default();
    if ct.is_empty() {
        return Ok(DEFAULT_CONTENT_TYPE.to_owned());
    }
    if ct.len() > MAX_CONTENT_TYPE_BYTES {
        return Err(format!(
            "content_type is {} bytes; the limit is {MAX_CONTENT_TYPE_BYTES}",
            ct.len()
        ));
    }
    let (kind, sub) = ct.split_once('/').unwrap_or_default();
    if kind.is_empty() || sub.is_empty() || !ct.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(format!(
            "content_type '{ct}' is not a MIME type such as text/plain or image/png"
        ));
    }
    Ok(ct.to_owned())
}

/// Metadata: a JSON object of at most 16 KB; absent or null is `{}`.
pub fn check_metadata(m: Option<Json>) -> Result<String, String> {
    let text = match m {
        None | Some(Json::Null) => return Ok("{}".into()),
        Some(v @ Json::Object(_)) => v.to_string(),
        Some(_) => return Err("metadata is a JSON object".into()),
    };
    if text.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {} bytes as JSON; the limit is {MAX_METADATA_BYTES}",
            text.len()
        ));
    }
    Ok(text)
}

/// Ids are ours (`file_` and base32); anything else names no file, and is refused before
/// it reaches a storage key.
pub fn valid_file_id(id: &str) -> bool {
    valid_project_id(id)
}

/// The 404 of a file that is not there (or is another project's).
pub fn not_found() -> DomainError {
    DomainError::coded(Refusal::NotFound, "FILE_NOT_FOUND", "File not found")
}

/// 409 `FILE_NOT_UPLOADED` unless the file's bytes are in.
pub fn ensure_stored(r: &FileRecord) -> Result<(), DomainError> {
    match r.status {
        FileStatus::Stored => Ok(()),
        FileStatus::Pending => Err(not_uploaded(&r.id)),
    }
}

fn not_uploaded(id: &str) -> DomainError {
    DomainError::coded(
        Refusal::Conflict,
        "FILE_NOT_UPLOADED",
        format!(
            "File {id} has no bytes yet: PUT them to its upload URL (GET .../files/{id}/url) first"
        ),
    )
}

/// Where a file's bytes live.
pub fn blob_key(project_id: &str, file_id: &str) -> String {
    format!("{}{file_id}", file_blob_prefix(project_id))
}

/// The HTTP method a signed URL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlMethod {
    Get,
    Put,
}

impl UrlMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlMethod::Get => "GET",
            UrlMethod::Put => "PUT",
        }
    }
}

/// What a signed URL of this service lets its holder do, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub account_id: String,
    pub project_id: String,
    pub file_id: String,
    pub method: UrlMethod,
    /// Epoch seconds.
    pub expires_at: i64,
}

/// Where a file's bytes go or come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A URL of the store itself (S3's presigned URL).
    Direct(String),
    /// A token for this service's own signed route (the caller makes the URL).
    Signed(String),
}

/// A URL to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrl {
    pub link: Link,
    pub method: UrlMethod,
    /// Epoch seconds.
    pub expires_at: i64,
}

/// What an upload straight to the store came to.
enum Arrival {
    /// No bytes at the file's key.
    Nothing,
    /// Bytes there, but past the limit or not the declared size: deleted.
    Refused(DomainError),
    Stored(FileRecord),
}

/// The key that signs and checks this service's URLs.
struct UrlKey {
    enc: EncodingKey,
    dec: DecodingKey,
}

/// The file service.
#[derive(Clone)]
pub struct Files {
    table: Arc<dyn Table>,
    blobs: Arc<dyn Blobs>,
    clock: Arc<dyn Clock>,
    events: EventSink,
    projects: Projects,
    limits: FileLimits,
    key: Arc<UrlKey>,
}

/// The file service of this process, built once from its settings.
pub async fn shared(ctx: &Context) -> anyhow::Result<Files> {
    let projects = crate::projects(ctx).await?;
    ctx.service(|ctx| async move {
        let limits = FileLimits::from_settings(ctx.settings()).map_err(anyhow::Error::msg)?;
        Files::new(&ctx, projects, limits).map_err(anyhow::Error::from)
    })
    .await
}

/// Checks the scope of a file route.
pub fn require(caller: &Principal, access: Access) -> Result<(), DomainError> {
    let perm = match access {
        Access::Read => Permission::Read,
        Access::Write => Permission::Write,
    };
    caller.require(Service::File, perm, None)
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Files {
    pub fn new(ctx: &Context, projects: Projects, limits: FileLimits) -> Result<Self, DomainError> {
        let secret = ctx.auth().derived_key(URL_KEY_PURPOSE)?;
        Ok(Files {
            table: ctx.stores().table.clone(),
            blobs: ctx.stores().blobs.clone(),
            clock: ctx.clock().clone(),
            events: ctx.events().clone(),
            projects,
            limits,
            key: Arc::new(UrlKey {
                enc: EncodingKey::from_secret(&secret),
                dec: DecodingKey::from_secret(&secret),
            }),
        })
    }

    pub fn limits(&self) -> &FileLimits {
        &self.limits
    }

    /// The project a route names, after the `file:read`/`file:write` check.
    pub async fn project(
        &self,
        caller: &Principal,
        project_id: &str,
        access: Access,
    ) -> Result<Project, DomainError> {
        require(caller, access)?;
        self.projects.gate(caller, project_id, access).await
    }

    /// ainative-agent's project: `X-Project-ID`'s, else the account's default.
    pub async fn default_project(
        &self,
        caller: &Principal,
        named: Option<&str>,
        access: Access,
    ) -> Result<Project, DomainError> {
        require(caller, access)?;
        self.projects.default_gate(caller, named, access).await
    }

    /// 413 naming the limit when `size` is past what one file may be, and 422 when a
    /// declared size was not what arrived.
    pub fn check_size(&self, size: u64, declared: i64) -> Result<(), DomainError> {
        let max = self.limits.max_bytes;
        if size > max {
            return Err(DomainError::coded(
                Refusal::TooLarge,
                "FILE_TOO_LARGE",
                format!(
                    "The file is {size} bytes; the limit is {max} bytes (ZERODB_FILE_MAX_BYTES)"
                ),
            ));
        }
        if declared > 0 && size != declared as u64 {
            return Err(At::body_root().invalid(format!(
                "{size} bytes arrived, but the file was registered with size {declared}; send exactly that many, or register it again (size 0 accepts any)"
            )));
        }
        Ok(())
    }

    /// 413 naming the inline limit, for bytes sent or wanted inside JSON.
    pub fn check_inline(&self, size: u64) -> Result<(), DomainError> {
        let max = self.limits.inline_bytes;
        if size > max {
            return Err(DomainError::coded(
                Refusal::TooLarge,
                "FILE_TOO_LARGE",
                format!(
                    "The file is {size} bytes; inline uploads (content_base64) take at most {max} bytes (ZERODB_FILE_INLINE_MAX_BYTES). Register the file and PUT its bytes to an upload URL instead (POST .../files/upload-url)"
                ),
            ));
        }
        Ok(())
    }

    /// 413 for a size declared before the upload.
    pub fn check_declared(&self, declared: i64, at: At) -> Result<(), DomainError> {
        if declared < 0 {
            return Err(at.invalid("size is a whole number of bytes, 0 or more"));
        }
        self.check_size(declared as u64, 0)
    }

    fn item(&self, r: &FileRecord) -> Result<Item, DomainError> {
        let mut item = to_item(&keys::file(&r.project_id, &r.id), r, None)?;
        item.insert(
            GSI1PK.into(),
            Value::S(keys::file_name_index(&r.project_id)),
        );
        item.insert(GSI1SK.into(), Value::S(r.name.clone()));
        Ok(item)
    }

    fn record(&self, p: &Project, caller: &Principal, new: NewFile) -> FileRecord {
        let now = self.clock.epoch_secs();
        FileRecord {
            id: ids::prefixed_id("file"),
            project_id: p.id.clone(),
            name: new.name,
            content_type: new.content_type,
            size: 0,
            declared_size: 0,
            status: FileStatus::Pending,
            metadata: new.metadata,
            sha256: None,
            created_at: now,
            updated_at: now,
            created_by: caller.key_id.clone(),
        }
    }

    async fn announce(&self, p: &Project, r: &FileRecord) {
        tracing::info!(project_id = %p.id, file_id = %r.id, size = r.size, "file stored");
        self.events
            .emit(vec![(
                "zerodb.file.uploaded".into(),
                "zerodb".into(),
                json!({
                    "file_id": r.id,
                    "project_id": p.id,
                    "file_name": r.name,
                    "content_type": r.content_type,
                    "size_bytes": r.size,
                    "user_id": p.account_id,
                }),
            )])
            .await;
    }

    /// Stores a file whose bytes came inline: the bytes first, then the record with the
    /// project's counters in one transaction, so a record never names missing bytes.
    pub async fn upload(
        &self,
        p: &Project,
        caller: &Principal,
        new: NewFile,
        bytes: Vec<u8>,
    ) -> Result<FileRecord, DomainError> {
        self.check_inline(bytes.len() as u64)?;
        self.check_size(bytes.len() as u64, 0)?;
        let mut r = self.record(p, caller, new);
        r.status = FileStatus::Stored;
        r.size = bytes.len() as i64;
        r.declared_size = r.size;
        r.sha256 = Some(sha256_hex(&bytes));
        let key = blob_key(&p.id, &r.id);
        self.blobs.put(&key, bytes, Some(&r.content_type)).await?;
        let written = self
            .table
            .transact(vec![
                TxOp::Put {
                    item: self.item(&r)?,
                    condition: Some(Condition::NotExists),
                },
                count(&p.id, &[(STAT_FILES, 1), (STAT_FILE_BYTES, r.size)]),
            ])
            .await;
        if let Err(e) = written {
            // No record: its bytes go too, so nothing is left half stored.
            if let Err(d) = self.blobs.delete(&key).await {
                tracing::warn!(error = %d, key, "bytes of an unwritten file record stay until the project is purged");
            }
            return Err(e.into());
        }
        self.announce(p, &r).await;
        Ok(r)
    }

    /// Registers a file whose bytes come later, to an upload URL; `declared` > 0 is the
    /// exact size the upload must have.
    pub async fn register(
        &self,
        p: &Project,
        caller: &Principal,
        new: NewFile,
        declared: i64,
    ) -> Result<FileRecord, DomainError> {
        self.check_declared(declared, At::body("size"))?;
        let mut r = self.record(p, caller, new);
        r.declared_size = declared;
        self.table
            .put(self.item(&r)?, Some(Condition::NotExists))
            .await?;
        Ok(r)
    }

    async fn load(&self, project_id: &str, file_id: &str) -> Result<FileRecord, DomainError> {
        if !valid_file_id(file_id) {
            return Err(not_found());
        }
        let item = self
            .table
            .get(&keys::file(project_id, file_id))
            .await?
            .ok_or_else(not_found)?;
        Ok(from_item(item)?)
    }

    /// Marks a pending file stored with its size, with the counters, once: a second
    /// request doing the same finds the record changed and answers with it as it is.
    async fn mark_stored(
        &self,
        p: &Project,
        mut r: FileRecord,
        size: u64,
        sha256: Option<String>,
    ) -> Result<FileRecord, DomainError> {
        r.status = FileStatus::Stored;
        r.size = size as i64;
        r.sha256 = sha256;
        r.updated_at = self.clock.epoch_secs();
        let written = self
            .table
            .transact(vec![
                TxOp::Put {
                    item: self.item(&r)?,
                    condition: Some(Condition::Equals(
                        "status".into(),
                        Value::S(FileStatus::Pending.as_str().into()),
                    )),
                },
                count(&p.id, &[(STAT_FILES, 1), (STAT_FILE_BYTES, r.size)]),
            ])
            .await;
        match written {
            Ok(()) => {
                self.announce(p, &r).await;
                Ok(r)
            }
            Err(StoreError::Conflict) => match self.load(&p.id, &r.id).await {
                Ok(now) => Ok(now),
                Err(e) => {
                    // Deleted while its bytes arrived: they go too.
                    self.blobs.delete(&blob_key(&p.id, &r.id)).await?;
                    Err(e)
                }
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a pending file's bytes have arrived at its key (an upload straight to S3),
    /// and if so stores them in its record.
    async fn arrival(&self, p: &Project, r: &FileRecord) -> Result<Arrival, DomainError> {
        let key = blob_key(&p.id, &r.id);
        let Some(meta) = self.blobs.head(&key).await? else {
            return Ok(Arrival::Nothing);
        };
        if let Err(e) = self.check_size(meta.size, r.declared_size) {
            // Bytes this file may not have are not kept (a presigned PUT with no declared
            // size cannot be bounded before it is made).
            tracing::warn!(project_id = %p.id, file_id = %r.id, size = meta.size, "uploaded bytes refused and deleted");
            self.blobs.delete(&key).await?;
            return Ok(Arrival::Refused(e));
        }
        Ok(Arrival::Stored(
            self.mark_stored(p, r.clone(), meta.size, None).await?,
        ))
    }

    /// One file; a pending one whose bytes have arrived is stored first.
    pub async fn get(&self, p: &Project, file_id: &str) -> Result<FileRecord, DomainError> {
        let r = self.load(&p.id, file_id).await?;
        if r.status == FileStatus::Stored {
            return Ok(r);
        }
        match self.arrival(p, &r).await? {
            Arrival::Stored(now) => Ok(now),
            Arrival::Nothing | Arrival::Refused(_) => Ok(r),
        }
    }

    /// Stores the bytes uploaded to a pending file's presigned URL (idempotent): 409
    /// `FILE_NOT_UPLOADED` while none have arrived, 413 when they are past the limit.
    pub async fn complete(&self, p: &Project, file_id: &str) -> Result<FileRecord, DomainError> {
        let r = self.load(&p.id, file_id).await?;
        if r.status == FileStatus::Stored {
            return Ok(r);
        }
        match self.arrival(p, &r).await? {
            Arrival::Stored(now) => Ok(now),
            Arrival::Nothing => Err(not_uploaded(&r.id)),
            Arrival::Refused(e) => Err(e),
        }
    }

    /// A stored file's bytes.
    pub async fn read(&self, p: &Project, r: &FileRecord) -> Result<Vec<u8>, DomainError> {
        ensure_stored(r)?;
        let key = blob_key(&p.id, &r.id);
        // The object's size first: an S3 upload URL stays usable until it expires, so the
        // bytes may have been replaced since the record was written. Only bytes that are
        // still the record's are read into memory.
        let head = self.blobs.head(&key).await?.ok_or_else(not_found)?;
        if head.size != r.size.max(0) as u64 {
            return Err(DomainError::coded(
                Refusal::Conflict,
                "FILE_BYTES_CHANGED",
                format!(
                    "File {}'s stored bytes ({} bytes) are no longer the {} it was uploaded with (an upload URL was used again); upload a new file",
                    r.id, head.size, r.size
                ),
            ));
        }
        // Gone between the record's read and this one: deleted meanwhile.
        let blob = self.blobs.get(&key).await?.ok_or_else(not_found)?;
        Ok(blob.bytes)
    }

    /// Files by name (`prefix` of it, if given), one page of at most 1000. The name index
    /// is eventually consistent on DynamoDB: a file written a moment ago may be missing.
    pub async fn list(
        &self,
        p: &Project,
        prefix: Option<&str>,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<FileRecord>, Option<Cursor>), DomainError> {
        let partition = keys::file_name_index(&p.id);
        let prefix = prefix.filter(|s| !s.is_empty());
        // A cursor goes on only from where it was made: this project's list, this prefix
        // (the adapters differ in what they make of any other).
        if let Some(c) = &cursor {
            let at = c.decode().unwrap_or_default();
            let ours = at.get(GSI1PK) == Some(&partition)
                && at
                    .get(GSI1SK)
                    .is_some_and(|n| n.starts_with(prefix.unwrap_or_default()));
            if !ours {
                return Err(StoreError::BadCursor.into());
            }
        }
        let mut q = Query::partition(partition).on(Index::Gsi1);
        if let Some(pre) = prefix {
            q = q.begins_with(pre);
        }
        let page = self
            .table
            .query(q.limit(limit.clamp(1, MAX_PAGE)).after(cursor))
            .await?;
        let mut out = Vec::with_capacity(page.items.len());
        for item in page.items {
            out.push(from_item(item)?);
        }
        Ok((out, page.cursor))
    }

    /// Deletes a file: its record with the counters in one transaction (retried when an
    /// upload changed it meanwhile), then its bytes.
    pub async fn delete(&self, p: &Project, file_id: &str) -> Result<FileRecord, DomainError> {
        let mut r = self.load(&p.id, file_id).await?;
        let mut attempts = 0;
        loop {
            let mut ops = vec![TxOp::Delete {
                key: keys::file(&p.id, &r.id),
                condition: Some(Condition::Equals(
                    "status".into(),
                    Value::S(r.status.as_str().into()),
                )),
            }];
            if r.status == FileStatus::Stored {
                ops.push(count(
                    &p.id,
                    &[(STAT_FILES, -1), (STAT_FILE_BYTES, -r.size)],
                ));
            }
            match self.table.transact(ops).await {
                Ok(()) => break,
                Err(StoreError::Conflict) if attempts < 3 => {
                    attempts += 1;
                    r = self.load(&p.id, file_id).await?;
                }
                Err(StoreError::Conflict) => {
                    return Err(DomainError::Conflict(
                        "the file changed during the delete; retry".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A pending file may have bytes too (sent straight to S3, not yet seen).
        if let Err(e) = self.blobs.delete(&blob_key(&p.id, &r.id)).await {
            tracing::warn!(error = %e, project_id = %p.id, file_id = %r.id, "a deleted file's bytes stay until the project is purged");
        }
        tracing::info!(project_id = %p.id, file_id = %r.id, "file deleted");
        Ok(r)
    }

    /// A URL for a file, valid `expires_secs`: to download a stored file, or to upload a
    /// pending one's bytes (exactly its declared size, when it declared one). S3's own
    /// presigned URL where the store can make one, else a token of this service.
    pub async fn url(
        &self,
        p: &Project,
        r: &FileRecord,
        expires_secs: u64,
    ) -> Result<FileUrl, DomainError> {
        // An upload URL can be used again until it expires (S3 cannot revoke one): an hour
        // at most; download URLs as asked, up to seven days.
        let expires_secs = match r.status {
            FileStatus::Stored => expires_secs.clamp(1, MAX_URL_SECS),
            _ => expires_secs.clamp(1, MAX_UPLOAD_URL_SECS),
        };
        let key = blob_key(&p.id, &r.id);
        let (method, direct) = match r.status {
            FileStatus::Stored => (
                UrlMethod::Get,
                self.blobs.presign_get(&key, expires_secs).await?,
            ),
            FileStatus::Pending => {
                let size = (r.declared_size > 0).then_some(r.declared_size as u64);
                (
                    UrlMethod::Put,
                    self.blobs.presign_put(&key, size, expires_secs).await?,
                )
            }
        };
        let expires_at = self.clock.epoch_secs() + expires_secs as i64;
        let link = match direct {
            Some(u) => Link::Direct(u),
            None => Link::Signed(self.sign(&Grant {
                account_id: p.account_id.clone(),
                project_id: p.id.clone(),
                file_id: r.id.clone(),
                method,
                expires_at,
            })?),
        };
        Ok(FileUrl {
            link,
            method,
            expires_at,
        })
    }

    /// `base64url(payload).base64url(HMAC-SHA256(payload))`, the payload naming version,
    /// account, project, file, method and expiry.
    pub fn sign(&self, g: &Grant) -> Result<String, DomainError> {
        let payload = b64().encode(format!(
            "{TOKEN_VERSION}|{}|{}|{}|{}|{}",
            g.account_id,
            g.project_id,
            g.file_id,
            g.method.as_str(),
            g.expires_at
        ));
        let mac =
            jsonwebtoken::crypto::sign(payload.as_bytes(), &self.key.enc, Algorithm::HS256)
                .map_err(|e| DomainError::Unexpected(anyhow::anyhow!("signing a file URL: {e}")))?;
        Ok(format!("{payload}.{mac}"))
    }

    /// The grant of a token this service signed, for `method`: 403 `SIGNED_URL_INVALID`
    /// when it is not one (or is for another method), `SIGNED_URL_EXPIRED` past its time.
    pub fn verify(&self, token: &str, method: UrlMethod) -> Result<Grant, DomainError> {
        let invalid = || {
            DomainError::coded(
                Refusal::Forbidden,
                "SIGNED_URL_INVALID",
                "This file URL is not one this server signed (or was altered): ask for a new one with GET .../files/{file_id}/url",
            )
        };
        if token.len() > MAX_TOKEN_CHARS {
            return Err(invalid());
        }
        let (payload, mac) = token.split_once('.').ok_or_else(invalid)?;
        // Compared in constant time by the HMAC implementation.
        let genuine =
            jsonwebtoken::crypto::verify(mac, payload.as_bytes(), &self.key.dec, Algorithm::HS256)
                .unwrap_or(false);
        if !genuine {
            return Err(invalid());
        }
        let text = b64()
            .decode(payload)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        let parts: Vec<&str> = text.split('|').collect();
        let [version, account, project, file, m, exp] = parts.as_slice() else {
            return Err(invalid());
        };
        let grant_method = match *m {
            "GET" => UrlMethod::Get,
            "PUT" => UrlMethod::Put,
            _ => return Err(invalid()),
        };
        let expires_at: i64 = exp.parse().map_err(|_| invalid())?;
        if *version != TOKEN_VERSION || grant_method != method {
            return Err(DomainError::coded(
                Refusal::Forbidden,
                "SIGNED_URL_INVALID",
                format!(
                    "This file URL is for {}, not {}",
                    grant_method.as_str(),
                    method.as_str()
                ),
            ));
        }
        if expires_at <= self.clock.epoch_secs() {
            return Err(DomainError::coded(
                Refusal::Forbidden,
                "SIGNED_URL_EXPIRED",
                "This file URL has expired: ask for a new one with GET .../files/{file_id}/url",
            ));
        }
        Ok(Grant {
            account_id: (*account).to_owned(),
            project_id: (*project).to_owned(),
            file_id: (*file).to_owned(),
            method: grant_method,
            expires_at,
        })
    }

    /// The project of a grant, as its account would pass the gate (a suspended project
    /// takes no upload; a deleted one is gone).
    async fn grant_project(&self, g: &Grant, access: Access) -> Result<Project, DomainError> {
        let holder = Principal {
            account_id: g.account_id.clone(),
            key_id: "signed-url".into(),
            scopes: ScopeSet::new(Vec::new()),
            expires_at: Some(g.expires_at),
            via_token: false,
            rate_bucket: String::new(),
        };
        self.projects.gate(&holder, &g.project_id, access).await
    }

    /// Whether a signed upload may go on, before its body is read: the project takes
    /// writes and the file still waits for its bytes. Returns them, and the most bytes
    /// to read.
    pub async fn put_allowed(&self, g: &Grant) -> Result<(Project, FileRecord, u64), DomainError> {
        let p = self.grant_project(g, Access::Write).await?;
        let r = self.load(&p.id, &g.file_id).await?;
        if r.status == FileStatus::Stored {
            return Err(DomainError::coded(
                Refusal::Conflict,
                "FILE_ALREADY_UPLOADED",
                format!(
                    "File {} already has its bytes; upload a new file to replace it",
                    r.id
                ),
            ));
        }
        let most = if r.declared_size > 0 {
            (r.declared_size as u64).min(self.limits.max_bytes)
        } else {
            self.limits.max_bytes
        };
        Ok((p, r, most))
    }

    /// The bytes PUT to a signed upload URL that [`Files::put_allowed`] let through:
    /// stored, then the record with the counters (conditional on it still waiting).
    pub async fn put_signed(
        &self,
        p: Project,
        r: FileRecord,
        bytes: Vec<u8>,
    ) -> Result<FileRecord, DomainError> {
        self.check_size(bytes.len() as u64, r.declared_size)?;
        let size = bytes.len() as u64;
        let sha = sha256_hex(&bytes);
        self.blobs
            .put(&blob_key(&p.id, &r.id), bytes, Some(&r.content_type))
            .await?;
        self.mark_stored(&p, r, size, Some(sha)).await
    }

    /// The file and bytes a signed download URL names.
    pub async fn get_signed(&self, g: &Grant) -> Result<(FileRecord, Vec<u8>), DomainError> {
        let p = self.grant_project(g, Access::Read).await?;
        let r = self.get(&p, &g.file_id).await?;
        let bytes = self.read(&p, &r).await?;
        Ok((r, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_content_types_and_metadata_are_checked() {
        assert!(check_name("reports/2026/q1.pdf", 1024).is_ok());
        assert!(check_name("", 1024).is_err());
        assert!(check_name("a\nb", 1024).is_err());
        assert!(check_name("invoice\u{202e}fdp.exe", 1024).is_err());
        assert!(check_name("a\u{2028}b", 1024).is_err());
        assert!(check_name("naïve résumé.pdf", 1024).is_ok());
        assert!(
            check_name(&"x".repeat(1025), 1024)
                .unwrap_err()
                .contains("1024")
        );
        assert_eq!(check_content_type(None).unwrap(), DEFAULT_CONTENT_TYPE);
        assert_eq!(
            check_content_type(Some(" text/plain ")).unwrap(),
            "text/plain"
        );
        assert!(check_content_type(Some("plain")).is_err());
        assert!(check_content_type(Some("text/\u{1}")).is_err());
        assert_eq!(check_metadata(None).unwrap(), "{}");
        assert!(check_metadata(Some(json!([1]))).is_err());
        let big = json!({"k": "x".repeat(MAX_METADATA_BYTES)});
        assert!(check_metadata(Some(big)).unwrap_err().contains("16384"));
    }

    #[test]
    fn limits_have_defaults_and_refuse_what_a_lambda_cannot_carry() {
        let l = FileLimits::from_settings(&Settings::default()).unwrap();
        assert_eq!(l, FileLimits::default());
        let s = Settings::from_pairs([("ZERODB_FILE_INLINE_MAX_BYTES", "6000000")]);
        assert!(
            FileLimits::from_settings(&s)
                .unwrap_err()
                .contains("ZERODB_FILE_INLINE_MAX_BYTES")
        );
        let s = Settings::from_pairs([("ZERODB_FILE_MAX_BYTES", "1000")]);
        assert_eq!(FileLimits::from_settings(&s).unwrap().max_bytes, 1000);
    }
}
