//! The project database endpoint group, under `/api/v1/projects/{project_id}/database`:
//! tables and rows (ainative-python's form), published events, RLHF interactions and
//! seed 003's batch query; and ainative-agent's `/api/v1/public/tables/…` form, which
//! acts on the account's default project unless `X-Project-ID` names another.

pub mod batch;
pub mod events;
pub mod public;
pub mod rlhf;
pub mod tables;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_projects::Tables;
use zerodb_projects::events::ProjectEvents;
use zerodb_projects::rlhf::Rlhf;

/// What the database handlers reach.
#[derive(Clone, FromRef)]
pub struct DatabaseApi {
    pub ctx: Context,
    pub tables: Tables,
    pub events: ProjectEvents,
    pub rlhf: Rlhf,
}

/// The items of a seed 003 batch (`field`, 1–`max` of them), each read as a `T` and
/// checked where it stands (`["body", field, i]`), before anything is written: a count
/// out of bounds or any bad item is a 422, and the batch is refused whole.
pub(crate) fn batch_items<T, U>(
    items: Vec<serde_json::Value>,
    field: &str,
    max: usize,
    kind: &str,
    mut check: impl FnMut(T, zerodb_domain::At) -> Result<U, zerodb_domain::DomainError>,
) -> Result<Vec<U>, zerodb_domain::DomainError>
where
    T: serde::de::DeserializeOwned,
{
    use zerodb_domain::At;
    if items.is_empty() || items.len() > max {
        return Err(At::body(field).invalid(format!(
            "{} {field} sent; a batch holds 1–{max}",
            items.len()
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let at = At::body(field).index(i);
        let one: T = serde_json::from_value(v)
            .map_err(|e| at.clone().invalid(format!("not {kind}: {e}")))?;
        out.push(check(one, at)?);
    }
    Ok(out)
}

/// The database group.
pub fn group() -> Group {
    let routes = Routes::authenticated(zerodb_http::routes!(
        tables::create,
        tables::list,
        tables::get,
        tables::drop,
        tables::insert,
        tables::query,
        tables::update,
        tables::delete_rows,
        events::publish,
        events::publish_batch,
        events::list,
        rlhf::log,
        rlhf::log_batch,
        rlhf::list,
        batch::query,
        public::create,
        public::list,
        public::get,
        public::drop,
        public::insert,
        public::query,
        public::update,
        public::delete_rows,
    ))
    .responding::<zerodb_http::openapi::DataErrors>();
    Group::new("database", "database-api", routes, |ctx| async move {
        let retention =
            ProjectEvents::retention_days(ctx.settings()).map_err(anyhow::Error::msg)?;
        Ok(DatabaseApi {
            tables: zerodb_projects::tables(&ctx).await?,
            events: ProjectEvents::new(&ctx, retention),
            rlhf: Rlhf::new(&ctx),
            ctx,
        })
    })
}
