//! Removal of a dropped table's rows and a deleted project's data, a page at a time, by
//! the events worker rather than inside the request: the request commits the drop (the
//! definition or the project record) and emits an internal purge event; the handler
//! deletes a bounded number of items per event and, when more remain, sends the event
//! again to go on (marked [`STAGE_DATA`], so the memory purge does not take it), failing
//! the event when that send fails so the queue delivers it again. Every step is
//! idempotent, so a retried event does no harm.

use std::sync::Arc;

use serde_json::{Value, json};
use zerodb_domain::DomainError;
use zerodb_domain::events::{Event, EventHandler, EventSink};
use zerodb_domain::keys;
use zerodb_domain::store::{Blobs, Key, Query, Stores, Table, TxOp};
use zerodb_domain::vectors::Vectors;

use crate::schema::MAX_INDEXES;
use crate::tables::TableDef;

/// The internal event that asks for a purge (hooks never see the `internal` channel).
pub const PURGE_EVENT: &str = "zerodb.internal.purge";
/// Items deleted per event before the rest is handed to the next one.
pub const BUDGET: usize = 5000;
/// `stage` of a purge event that goes on with the tables, files, events and RLHF of a
/// project (or a dropped table's rows): sent by [`Purge`] alone, handled by it alone.
pub const STAGE_DATA: &str = "data";
/// `stage` of a purge event that goes on forgetting a deleted project's memories: sent
/// and handled by the events worker's memory purge alone. The first event of a purge has
/// no stage and is handled by both; each continuation only by the handler that sent it,
/// so neither ever sets the other going again.
pub const STAGE_MEMORY: &str = "memory";

/// The event that purges a dropped table (`table`) or a whole deleted project.
pub fn purge_event(
    account_id: &str,
    project_id: &str,
    table: Option<&TableDef>,
) -> (String, String, Value) {
    (
        PURGE_EVENT.to_owned(),
        "internal".to_owned(),
        json!({
            "account_id": account_id,
            "project_id": project_id,
            "table": table.map(|t| json!({"id": t.id, "name": t.name})),
        }),
    )
}

/// The stage a purge event names (`None` for the first event of a purge).
pub fn stage(e: &Event) -> Option<&str> {
    e.data.get("stage").and_then(Value::as_str)
}

/// The event that goes on with `e`'s purge at `stage`.
pub fn continuation(e: &Event, stage: &str) -> (String, String, Value) {
    let mut data = e.data.clone();
    if let Some(m) = data.as_object_mut() {
        m.insert("stage".into(), json!(stage));
    }
    (e.event.clone(), e.channel.clone(), data)
}

/// Where a project's file bytes live in the Blobs store.
pub fn file_blob_prefix(project_id: &str) -> String {
    format!("files/{project_id}/")
}

/// The purge, as a handler of the events worker.
pub struct Purge {
    pub table: Arc<dyn Table>,
    pub blobs: Arc<dyn Blobs>,
    pub vectors: Arc<dyn Vectors>,
    pub events: EventSink,
    /// Items deleted per event ([`BUDGET`]).
    pub budget: usize,
}

enum Step {
    Done,
    More,
}

impl Purge {
    pub fn new(stores: &Stores, events: EventSink) -> Self {
        Purge {
            table: stores.table.clone(),
            blobs: stores.blobs.clone(),
            vectors: stores.vectors.clone(),
            events,
            budget: BUDGET,
        }
    }

    /// Deletes up to `budget` items of one partition; `Done` when it is empty.
    async fn partition(&self, pk: &str, budget: &mut usize) -> Result<Step, DomainError> {
        loop {
            if *budget == 0 {
                return Ok(Step::More);
            }
            let page = self
                .table
                .query(Query::partition(pk).limit((*budget).min(100)))
                .await?;
            if page.items.is_empty() {
                return Ok(Step::Done);
            }
            let ops: Vec<TxOp> = page
                .items
                .iter()
                .filter_map(Key::of)
                .map(|key| TxOp::Delete {
                    key,
                    condition: None,
                })
                .collect();
            *budget = budget.saturating_sub(ops.len());
            self.table.transact(ops).await?;
        }
    }

    async fn table_data(
        &self,
        project_id: &str,
        table_id: &str,
        budget: &mut usize,
    ) -> Result<Step, DomainError> {
        if let Step::More = self
            .partition(&keys::rows_partition(project_id, table_id), budget)
            .await?
        {
            return Ok(Step::More);
        }
        for n in 0..MAX_INDEXES {
            if let Step::More = self
                .partition(&keys::row_index_partition(project_id, table_id, n), budget)
                .await?
            {
                return Ok(Step::More);
            }
        }
        Ok(Step::Done)
    }

    async fn project(
        &self,
        account_id: &str,
        project_id: &str,
        budget: &mut usize,
    ) -> Result<Step, DomainError> {
        // Tables first: their definitions say where their rows are.
        loop {
            let page = self
                .table
                .query(
                    Query::partition(keys::database_partition(project_id))
                        .begins_with(keys::TABLE_PREFIX)
                        .limit(50),
                )
                .await?;
            if page.items.is_empty() {
                break;
            }
            for item in page.items {
                let Some(id) = item.get("id").and_then(|v| v.as_str()).map(str::to_owned) else {
                    continue;
                };
                if let Step::More = self.table_data(project_id, &id, budget).await? {
                    return Ok(Step::More);
                }
                if let Some(key) = Key::of(&item) {
                    self.table.delete(&key, None).await?;
                }
            }
        }
        // Vector indexes (their namespace records are in the catalogue, deleted below).
        crate::vectors::purge_indexes(&self.table, &self.vectors, account_id, project_id).await?;
        // File bytes, then every other partition of the project.
        loop {
            if *budget == 0 {
                return Ok(Step::More);
            }
            let page = self
                .blobs
                .list(&file_blob_prefix(project_id), None, (*budget).min(100))
                .await?;
            if page.objects.is_empty() {
                break;
            }
            for o in page.objects {
                self.blobs.delete(&o.key).await?;
                *budget = budget.saturating_sub(1);
            }
        }
        for pk in [
            keys::files_partition(project_id),
            keys::events_partition(project_id),
            keys::rlhf_partition(project_id),
            keys::database_partition(project_id),
        ] {
            if let Step::More = self.partition(&pk, budget).await? {
                return Ok(Step::More);
            }
        }
        Ok(Step::Done)
    }
}

#[async_trait::async_trait]
impl EventHandler for Purge {
    fn name(&self) -> &'static str {
        "purge"
    }

    fn wants(&self, event: &Event) -> bool {
        // Not the memory purge's continuations: those are its own.
        event.event == PURGE_EVENT && matches!(stage(event), None | Some(STAGE_DATA))
    }

    async fn handle(&self, events: &[&Event]) -> Result<usize, DomainError> {
        let mut done = 0;
        for e in events {
            let Some(project_id) = e.data.get("project_id").and_then(Value::as_str) else {
                continue;
            };
            let mut budget = self.budget.max(1);
            let start = budget;
            let step = match e
                .data
                .get("table")
                .and_then(|t| t.get("id"))
                .and_then(Value::as_str)
            {
                Some(table_id) => self.table_data(project_id, table_id, &mut budget).await?,
                None => {
                    let account_id = e
                        .data
                        .get("account_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    self.project(account_id, project_id, &mut budget).await?
                }
            };
            done += start - budget;
            if let Step::More = step {
                tracing::info!(
                    project_id,
                    deleted = start - budget,
                    "purge goes on in another event"
                );
                // Unsent, the rest would never be purged: fail, so this event is
                // delivered again (every step is idempotent).
                self.events.send(vec![continuation(e, STAGE_DATA)]).await.map_err(|err| {
                    DomainError::Unexpected(anyhow::anyhow!(
                        "the purge of project {project_id} could not hand on its remaining work: {err}"
                    ))
                })?;
            }
        }
        Ok(done)
    }
}
