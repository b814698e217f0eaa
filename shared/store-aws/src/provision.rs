//! Creating the table, buckets and queues the adapters expect, for tests, local runs and
//! operators (the SAM template declares the same resources for deployments). Each
//! function is idempotent: what already exists is left as it is.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3vectors::operation::create_vector_bucket::CreateVectorBucketError;
use aws_sdk_sqs::types::QueueAttributeName;
use zerodb_domain::queues::QueueName;
use zerodb_domain::store::{GSI1_NAME, GSI1PK, GSI1SK, PK, SK, TTL};

/// How long `create_table` waits for the table to become ACTIVE.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(300);

fn key(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn string_attr(name: &str) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

/// Creates the table (PK/SK, index GSI1 on GSI1PK/GSI1SK projecting everything, on
/// demand billing), waits until it and its index are ACTIVE, then enables TTL on `ttl`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<()> {
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1_NAME)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?;
    let created = client
        .create_table()
        .table_name(name)
        .attribute_definitions(string_attr(PK)?)
        .attribute_definitions(string_attr(SK)?)
        .attribute_definitions(string_attr(GSI1PK)?)
        .attribute_definitions(string_attr(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table = name, "created DynamoDB table"),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            tracing::info!(table = name, "DynamoDB table exists");
        }
        Err(e) => return Err(e).with_context(|| format!("creating DynamoDB table {name}")),
    }
    wait_until_active(client, name).await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .with_context(|| format!("reading the TTL setting of {name}"))?;
    let desc = ttl.time_to_live_description();
    let enabled = desc.is_some_and(|d| {
        d.attribute_name() == Some(TTL)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if !enabled {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("enabling TTL on {name}"))?;
    }
    Ok(())
}

async fn wait_until_active(client: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .with_context(|| format!("describing {name}"))?;
        let ready = out.table().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if ready {
            return Ok(());
        }
        if started.elapsed() > TABLE_READY_TIMEOUT {
            bail!("table {name} not ACTIVE after {TABLE_READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Creates the bucket in the client's region.
pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str) -> anyhow::Result<()> {
    let region = client.config().region().map(|r| r.as_ref().to_owned());
    // us-east-1 is S3's default location and refuses to be named as a constraint.
    let location = region.filter(|r| r != "us-east-1").map(|r| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(r.as_str()))
            .build()
    });
    match client
        .create_bucket()
        .bucket(name)
        .set_create_bucket_configuration(location)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(bucket = name, "created S3 bucket");
            Ok(())
        }
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateBucketError::BucketAlreadyOwnedByYou(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("creating S3 bucket {name}")),
    }
}

/// Creates the S3 Vectors vector bucket (indexes are created in it at run time).
pub async fn create_vector_bucket(
    client: &aws_sdk_s3vectors::Client,
    name: &str,
) -> anyhow::Result<()> {
    match client
        .create_vector_bucket()
        .vector_bucket_name(name)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(vector_bucket = name, "created S3 Vectors bucket");
            Ok(())
        }
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateVectorBucketError::ConflictException(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("creating S3 Vectors bucket {name}")),
    }
}

/// Creates a queue and returns its URL. With `dead_letter = Some((dlq_url, n))`, a
/// message received more than `n` times moves to that queue (SQS's RedrivePolicy).
pub async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    dead_letter: Option<(&str, u32)>,
) -> anyhow::Result<String> {
    let mut req = client.create_queue().queue_name(name);
    if let Some((dlq_url, max_receives)) = dead_letter {
        let arn = queue_arn(client, dlq_url).await?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": max_receives.to_string(),
        });
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let out = req
        .send()
        .await
        .with_context(|| format!("creating SQS queue {name}"))?;
    let url = out
        .queue_url
        .with_context(|| format!("SQS returned no URL for queue {name}"))?;
    tracing::info!(queue = name, "created SQS queue");
    Ok(url)
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("reading the dead-letter queue's ARN")?;
    out.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("SQS returned no ARN for the dead-letter queue")
}

/// Creates every queue of `QueueName::ALL` as its spec declares it (visibility timeout,
/// a dead-letter queue with its retention, the receive limit), named `<prefix>-<id>`;
/// returns their URLs, as `template.yaml` hands them to the functions.
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
) -> anyhow::Result<BTreeMap<QueueName, String>> {
    let mut urls = BTreeMap::new();
    for q in QueueName::ALL {
        let spec = q.spec();
        let dlq_name = format!("{prefix}-{}", spec.dead_letter_id());
        let dlq = client
            .create_queue()
            .queue_name(&dlq_name)
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                spec.dead_letter_retention_secs.to_string(),
            )
            .send()
            .await
            .with_context(|| format!("creating SQS queue {dlq_name}"))?
            .queue_url
            .with_context(|| format!("SQS returned no URL for queue {dlq_name}"))?;
        let url = create_queue(
            client,
            &format!("{prefix}-{}", spec.id),
            Some((&dlq, spec.max_receives)),
        )
        .await?;
        client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                spec.visibility_timeout_secs.to_string(),
            )
            .send()
            .await
            .context("setting the queue's visibility timeout")?;
        urls.insert(q, url);
    }
    Ok(urls)
}
