//! The storage conformance suite against the embedded (SQLite) adapters.

use zerodb_tests::conformance;
use zerodb_tests::support::{Backend, fresh_blobs, fresh_queue_with_dlq, fresh_table};

zerodb_tests::conformance_cases!(table: fresh_table(Backend::Embedded));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_put_get_head_list_delete() {
    let (b, _g) = fresh_blobs(Backend::Embedded).await;
    conformance::blobs_put_get_head_list_delete(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_send_receive_delete() {
    let (q, _d, _g) = fresh_queue_with_dlq(Backend::Embedded, 3).await;
    conformance::queue_send_receive_delete(q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_visibility_timeout_hides_then_returns() {
    let (q, _d, _g) = fresh_queue_with_dlq(Backend::Embedded, 5).await;
    conformance::queue_visibility_timeout_hides_then_returns(q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_dead_letters_after_max_receives() {
    let (q, d, _g) = fresh_queue_with_dlq(Backend::Embedded, 3).await;
    conformance::queue_dead_letters_after_max_receives(q, d, 3).await;
}
