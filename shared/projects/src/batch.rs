//! Seed 003's batch query: up to 50 table queries in one call, run side by side when
//! `parallel`, one result per operation in the order given; `stop_on_error` skips the
//! operations after the first failure (when run in order).

use futures::StreamExt;
use zerodb_domain::{At, DomainError};

use crate::project::Project;
use crate::tables::{RowPage, RowQuery, Tables};

/// Seed 003's limit.
pub const MAX_OPERATIONS: usize = 50;
/// Queries of one batch in flight at once.
const CONCURRENCY: usize = 8;

/// One operation of a batch.
#[derive(Debug, Clone)]
pub struct BatchOp {
    pub table: String,
    pub query: RowQuery,
}

/// One operation's outcome; `None` when skipped after an earlier failure.
pub type Outcome = Option<Result<RowPage, DomainError>>;

async fn one(tables: &Tables, p: &Project, i: usize, op: BatchOp) -> Result<RowPage, DomainError> {
    let def = tables.get(p, &op.table).await?;
    tables
        .query(p, &def, op.query, At::body("operations").index(i).field("filters"))
        .await
}

/// Runs the batch.
pub async fn run(
    tables: &Tables,
    p: &Project,
    ops: Vec<BatchOp>,
    parallel: bool,
    stop_on_error: bool,
) -> Vec<Outcome> {
    if parallel {
        let mut out: Vec<(usize, Outcome)> = futures::stream::iter(ops.into_iter().enumerate())
            .map(|(i, op)| async move { (i, Some(one(tables, p, i, op).await)) })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        out.sort_by_key(|(i, _)| *i);
        return out.into_iter().map(|(_, o)| o).collect();
    }
    let mut out = Vec::with_capacity(ops.len());
    let mut failed = false;
    for (i, op) in ops.into_iter().enumerate() {
        if failed && stop_on_error {
            out.push(None);
            continue;
        }
        let r = one(tables, p, i, op).await;
        failed |= r.is_err();
        out.push(Some(r));
    }
    out
}
