output "bucket" {
  value = aws_s3_bucket.lake.bucket
}

output "kms_key_arn" {
  value = aws_kms_key.lake.arn
}

output "events_queue_url" {
  value = aws_sqs_queue.events.id
}

output "events_dlq_url" {
  value = aws_sqs_queue.events_dlq.id
}

output "worker_role_arn" {
  description = "Goes on the worker's ServiceAccount: eks.amazonaws.com/role-arn (deploy/k8s/serviceaccount.yaml)."
  value       = aws_iam_role.lakegate["worker"].arn
}

output "crawlers" {
  value = { for d, c in aws_glue_crawler.dataset : d => c.name }
}

output "batch_job_queue" {
  value = aws_batch_job_queue.dbt.name
}

output "batch_job_definition" {
  value = aws_batch_job_definition.dbt.name
}

# The worker's AWS settings, in the names it reads (worker/src/config.rs): paste into
# deploy/k8s/worker.env.
output "worker_env" {
  value = {
    LAKEGATE_BACKEND              = "aws"
    LAKEGATE_BUCKET               = aws_s3_bucket.lake.bucket
    LAKEGATE_SQS_QUEUE_URL        = aws_sqs_queue.events.id
    LAKEGATE_ATHENA_WORKGROUP     = aws_athena_workgroup.lakegate.name
    LAKEGATE_ATHENA_OUTPUT        = local.athena_output
    LAKEGATE_BATCH_JOB_QUEUE      = aws_batch_job_queue.dbt.name
    LAKEGATE_BATCH_JOB_DEFINITION = aws_batch_job_definition.dbt.name
    AWS_REGION                    = var.region
  }
}
