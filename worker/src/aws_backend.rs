//! The ports on AWS, behind the `aws` cargo feature so a local-only build (the demo's) skips
//! compiling the AWS SDK.

use std::sync::Arc;

use lakegate_aws::{
    AthenaEngine, AwsClients, AwsSettings, BatchRunner, GlueCatalog, GlueCrawler, S3Store,
};

use crate::LakeConfig;
use crate::worker::{EventSource, Ports};

pub async fn ports(config: &LakeConfig) -> anyhow::Result<Ports> {
    let aws = &config.aws;
    let settings = match &aws.aws_endpoint_url {
        Some(endpoint) if aws.aws_emulator => AwsSettings::emulator(endpoint.clone()),
        Some(endpoint) => AwsSettings {
            endpoint_url: Some(endpoint.clone()),
            ..AwsSettings::default()
        },
        None => AwsSettings::default(),
    };
    let clients = AwsClients::load(&settings).await;
    let mut athena = AthenaEngine::new(clients.athena.clone(), aws.athena_workgroup.clone());
    if let Some(output) = &aws.athena_output {
        athena = athena.with_output_location(output.clone());
    }
    let events = aws.sqs_queue_url.clone().map(|queue_url| {
        let sqs = clients.sqs.clone();
        Box::new(move |starter, cancel| {
            tokio::spawn(async move {
                lakegate_aws::run_event_router(sqs, queue_url, starter, cancel).await?;
                Ok(())
            })
        }) as EventSource
    });
    Ok(Ports {
        store: Arc::new(S3Store::new(clients.s3.clone(), config.bucket.clone())),
        crawler: Arc::new(GlueCrawler::new(
            clients.glue.clone(),
            config.bucket.clone(),
        )),
        catalog: Arc::new(
            GlueCatalog::new(clients.glue.clone()).with_bucket(config.bucket.clone()),
        ),
        jobs: Arc::new(
            BatchRunner::new(
                clients.batch.clone(),
                clients.logs.clone(),
                aws.batch_job_queue.clone(),
                aws.batch_job_definition.clone(),
            )
            .with_artifacts(
                clients.s3.clone(),
                config.bucket.clone(),
                aws.batch_artifacts_prefix.clone(),
            ),
        ),
        query: Arc::new(athena),
        events,
    })
}
