//! Mapping SDK errors onto `StoreError`, by the SDK's typed error variants.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use zerodb_domain::store::StoreError;

use crate::convert::RawItem;

/// What a failed DynamoDB call means to the adapter.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The condition did not hold; carries the old item when it was asked for.
    ConditionFailed(Option<RawItem>),
    Throttled,
    /// DynamoDB measured the item over its size limit.
    TooLarge,
    Other,
}

/// Typed classification of one operation's error enum.
pub(crate) trait Classify {
    fn failure(&self) -> Failure;
}

macro_rules! classify_reads {
    ($($ty:ty),*) => {$(
        impl Classify for $ty {
            fn failure(&self) -> Failure {
                match self {
                    Self::ProvisionedThroughputExceededException(_)
                    | Self::RequestLimitExceeded(_)
                    | Self::ThrottlingException(_) => Failure::Throttled,
                    other => size_failure(other),
                }
            }
        }
    )*};
}

macro_rules! classify_writes {
    ($($ty:ty),*) => {$(
        impl Classify for $ty {
            fn failure(&self) -> Failure {
                match self {
                    Self::ConditionalCheckFailedException(e) => Failure::ConditionFailed(e.item.clone()),
                    // A conflict with a running transaction or another region's write
                    // clears by itself: the caller should retry, as for throttling.
                    Self::ProvisionedThroughputExceededException(_)
                    | Self::RequestLimitExceeded(_)
                    | Self::ThrottlingException(_)
                    | Self::TransactionConflictException(_)
                    | Self::ReplicatedWriteConflictException(_) => Failure::Throttled,
                    other => size_failure(other),
                }
            }
        }
    )*};
}

classify_reads!(GetItemError, QueryError);
classify_writes!(PutItemError, UpdateItemError, DeleteItemError);

impl Classify for TransactWriteItemsError {
    fn failure(&self) -> Failure {
        match self {
            Self::ProvisionedThroughputExceededException(_)
            | Self::RequestLimitExceeded(_)
            | Self::ThrottlingException(_)
            // The same request token is still being processed (an SDK retry overtook it).
            | Self::TransactionInProgressException(_) => Failure::Throttled,
            other => size_failure(other),
        }
    }
}

/// DynamoDB reports an oversized item only as a ValidationException, which has no typed
/// variant, so its code and message are all there is to go on.
fn size_failure(e: &impl ProvideErrorMetadata) -> Failure {
    if e.code() == Some("ValidationException") && e.message().is_some_and(is_size_message) {
        Failure::TooLarge
    } else {
        Failure::Other
    }
}

pub(crate) fn is_size_message(message: &str) -> bool {
    message.contains("exceeded the maximum allowed size")
}

pub(crate) fn classify<E: Classify>(err: &SdkError<E, HttpResponse>) -> Failure {
    err.as_service_error()
        .map_or(Failure::Other, Classify::failure)
}

/// Any SDK error as a backend error, keeping the SDK's error chain for the logs.
pub(crate) fn backend<E>(
    service: &'static str,
    op: &'static str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend(anyhow::Error::new(err).context(format!("{service} {op} failed")))
}
