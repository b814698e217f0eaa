//! `Queue` over one SQS queue; dead-lettering is the queue's own RedrivePolicy.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use zerodb_domain::store::{Message, Queue, StoreError};

/// SQS's batch limit, for sends and receives alike.
const MAX_BATCH: usize = 10;
/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY_SECS: u32 = 43_200;

/// The `Queue` port over SQS.
#[derive(Debug, Clone)]
pub struct AwsQueue {
    client: Client,
    url: String,
}

impl AwsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        AwsQueue {
            client,
            url: queue_url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn error<E>(
        &self,
        op: &'static str,
        err: SdkError<E, HttpResponse>,
        throttled: bool,
    ) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if throttled {
            tracing::warn!(queue = %self.url, op, "SQS is throttling");
            return StoreError::Throttled;
        }
        StoreError::Backend(anyhow::Error::new(err).context(format!("SQS {op} failed")))
    }
}

fn visibility(secs: u32) -> i32 {
    i32::try_from(secs.min(MAX_VISIBILITY_SECS)).unwrap_or(0)
}

#[async_trait]
impl Queue for AwsQueue {
    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<String>, StoreError> {
        if bodies.len() > MAX_BATCH {
            return Err(StoreError::Backend(anyhow::anyhow!(
                "a batch holds at most {MAX_BATCH} messages, not {}",
                bodies.len()
            )));
        }
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let count = bodies.len();
        let entries = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                StoreError::Backend(anyhow::Error::new(e).context("building an SQS batch entry"))
            })?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                let throttled = matches!(
                    e.as_service_error(),
                    Some(
                        SendMessageBatchError::RequestThrottled(_)
                            | SendMessageBatchError::KmsThrottled(_)
                    )
                );
                self.error("SendMessageBatch", e, throttled)
            })?;
        if let Some(first) = out.failed().first() {
            // The others were sent; the caller's retry of the whole batch duplicates them,
            // which at-least-once consumers already tolerate.
            return Err(StoreError::Backend(anyhow::anyhow!(
                "{} of {count} messages failed to send (first: {})",
                out.failed().len(),
                first.code()
            )));
        }
        let by_id: HashMap<&str, &str> = out
            .successful()
            .iter()
            .map(|s| (s.id(), s.message_id()))
            .collect();
        (0..count)
            .map(|i| {
                by_id
                    .get(i.to_string().as_str())
                    .map(|id| (*id).to_owned())
                    .ok_or_else(|| {
                        StoreError::Backend(anyhow::anyhow!(
                            "SQS did not report message {i} of the batch"
                        ))
                    })
            })
            .collect()
    }

    async fn receive(&self, max: usize, visibility_secs: u32) -> Result<Vec<Message>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = i32::try_from(max.min(MAX_BATCH)).unwrap_or(1);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .visibility_timeout(visibility(visibility_secs))
            // Short polling: the port's receive returns at once, empty or not, whatever
            // the queue's default wait time.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| {
                let throttled = matches!(
                    e.as_service_error(),
                    Some(
                        ReceiveMessageError::RequestThrottled(_)
                            | ReceiveMessageError::KmsThrottled(_)
                            | ReceiveMessageError::OverLimit(_)
                    )
                );
                self.error("ReceiveMessage", e, throttled)
            })?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(Message {
                    id: m.message_id?,
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| {
                let throttled = matches!(
                    e.as_service_error(),
                    Some(DeleteMessageError::RequestThrottled(_))
                );
                self.error("DeleteMessage", e, throttled)
            })?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility_secs: u32,
    ) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility(visibility_secs))
            .send()
            .await
            .map_err(|e| {
                let throttled = matches!(
                    e.as_service_error(),
                    Some(ChangeMessageVisibilityError::RequestThrottled(_))
                );
                self.error("ChangeMessageVisibility", e, throttled)
            })?;
        Ok(())
    }
}
