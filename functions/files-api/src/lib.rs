//! The files endpoint group: a project's files under
//! `/api/v1/projects/{project_id}/database/files` (inline upload, upload URLs for large
//! files, metadata, download, list by name prefix, delete), ainative-agent's
//! `/api/v1/public/files/…` form on the account's default project (or `X-Project-ID`'s),
//! and the signed URLs this server issues where the store cannot presign (zerodb-local),
//! which take no credential: the signature is the credential.

pub mod files;
pub mod public;
pub mod signed;
pub mod wire;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_projects::files::Files;

/// What the file handlers reach.
#[derive(Clone, FromRef)]
pub struct FilesApi {
    pub ctx: Context,
    pub files: Files,
}

/// The files group.
pub fn group() -> Group {
    let authenticated = Routes::authenticated(zerodb_http::routes!(
        files::upload,
        files::list,
        files::upload_url,
        files::get,
        files::download,
        files::url,
        files::complete,
        files::delete,
        public::register,
        public::list,
        public::get,
        public::download,
        public::url,
        public::delete,
    ))
    .responding::<zerodb_http::openapi::DataErrors>();
    let signed = Routes::public(zerodb_http::routes!(signed::put, signed::get))
        .responding::<zerodb_http::openapi::DataErrors>();
    Group::new(
        "files",
        "files-api",
        authenticated.merge(signed),
        |ctx| async move {
            Ok(FilesApi {
                files: zerodb_projects::files::shared(&ctx).await?,
                ctx,
            })
        },
    )
}
