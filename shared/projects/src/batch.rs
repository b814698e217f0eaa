//! Seed 003's batch query: up to 50 table queries in one call, run side by side when
//! `parallel`, one result per operation in the order given; `stop_on_error` skips the
//! operations after the first failure (when run in order). The answer stays within one
//! page's bytes (5 MiB): each operation's rows get an equal share and say when cut.

use futures::StreamExt;
use zerodb_domain::{At, DomainError};

use crate::project::Project;
use crate::tables::{RowPage, RowQuery, Tables};

/// Seed 003's limit.
pub const MAX_OPERATIONS: usize = 50;
/// Queries of one batch in flight at once (each may keep up to 64 MiB while sorting).
const CONCURRENCY: usize = 4;

/// One operation of a batch.
#[derive(Debug, Clone)]
pub struct BatchOp {
    pub table: String,
    pub query: RowQuery,
}

/// One operation's outcome; `None` when skipped after an earlier failure.
pub type Outcome = Option<Result<RowPage, DomainError>>;

async fn one(
    tables: &Tables,
    p: &Project,
    i: usize,
    op: BatchOp,
    bytes: usize,
) -> Result<RowPage, DomainError> {
    let def = tables.get(p, &op.table).await?;
    tables
        .query(
            p,
            &def,
            op.query,
            At::body("operations").index(i).field("filters"),
            bytes,
        )
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
    // The whole answer stays within one page's bytes: each operation gets its share.
    let bytes = (crate::tables::PAGE_BYTES / ops.len().max(1)).max(64 * 1024);
    if parallel {
        let mut out: Vec<(usize, Outcome)> = futures::stream::iter(ops.into_iter().enumerate())
            .map(|(i, op)| async move { (i, Some(one(tables, p, i, op, bytes).await)) })
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
        let r = one(tables, p, i, op, bytes).await;
        failed |= r.is_err();
        out.push(Some(r));
    }
    out
}
