//! The events worker's dispatcher on an SQS batch (through the Lambda harness's SQS
//! driver): it embeds the memories the events name, and reports every event message
//! failed when it cannot, so SQS retries them.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

/// The events worker's handler on the app's services, as its Lambda runs it.
async fn dispatch(app: &TestApp, event: SqsEvent) -> SqsBatchResponse {
    let handler = events_worker::worker()
        .handler(&app.ctx)
        .await
        .expect("the events worker's handler");
    zerodb_lambda::sqs_batch(&*handler, event).await
}

fn sqs_event(bodies: Vec<String>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("msg-{i}"));
            m.body = Some(body);
            m
        })
        .collect();
    event
}

async fn an_sqs_batch_embeds_its_memories(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut ids = Vec::new();
    for c in ["first memory", "second memory", "third memory"] {
        let r = app
            .post(
                "/api/v1/public/memory/v2/remember",
                &app.root_key,
                json!({"content": c, "namespace": "session:w"}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let mut bodies = app.drain_events().await;
    assert_eq!(bodies.len(), 6, "two events per remember");
    bodies.push("not an event".into());
    let resp = dispatch(&app, sqs_event(bodies)).await;
    assert!(resp.batch_item_failures.is_empty(), "nothing to retry");
    for id in &ids {
        let m = app
            .memory
            .repo()
            .find(&app.account_id, id)
            .await
            .unwrap()
            .unwrap();
        assert!(m.vector.is_some(), "{id} embedded");
    }
}

on_both_backends!(an_sqs_batch_embeds_its_memories);

/// An embedder that always fails, as a model service that is down would.
struct DownEmbedder;

#[async_trait::async_trait]
impl zerodb_embed::Embedder for DownEmbedder {
    fn name(&self) -> &str {
        "down"
    }
    fn dims(&self) -> usize {
        8
    }
    async fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>, zerodb_embed::EmbedError> {
        Err(zerodb_embed::EmbedError::Transport(
            "connection refused".into(),
        ))
    }
}

#[tokio::test]
async fn a_failed_batch_is_reported_for_retry() {
    let app = TestApp::with_embedder(Backend::Embedded, Arc::new(DownEmbedder)).await;
    let r = app
        .post(
            "/api/v1/public/memory/v2/remember",
            &app.root_key,
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(r.status, 201, "remember never waits on the model");
    let bodies = app.drain_events().await;
    let resp = dispatch(&app, sqs_event(bodies)).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["msg-0", "msg-1"]);
    // Recall cannot rank by meaning without the model: a 503 the client may retry.
    let r = app
        .post(
            "/api/v1/public/memory/v2/recall",
            &app.root_key,
            json!({"query": "x"}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
}
