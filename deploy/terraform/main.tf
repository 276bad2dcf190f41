locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  events_queue_name    = "${var.name_prefix}-s3-events"
  athena_workgroup     = var.name_prefix
  batch_job_queue      = "${var.name_prefix}-dbt"
  batch_job_definition = "${var.name_prefix}-dbt"
  athena_output        = "s3://${aws_s3_bucket.lake.bucket}/${var.athena_results_prefix}"

  # The values deploy/iam/*.json are templated with. Both policies are used as they are in the
  # repository (tests/iam.rs checks the worker's against every AWS call the code makes); this map
  # is the one place their placeholders get values.
  iam_template_vars = {
    region                = var.region
    account_id            = local.account_id
    lake_bucket           = var.bucket_name
    events_queue          = local.events_queue_name
    crawler_name_prefix   = var.crawler_prefix
    glue_database         = var.glue_database
    athena_workgroup      = local.athena_workgroup
    athena_results_bucket = var.bucket_name
    athena_results_prefix = var.athena_results_prefix
    batch_job_queue       = local.batch_job_queue
    batch_job_definition  = local.batch_job_definition
    dbt_schema_prefix     = var.dbt_schema
    dbt_output_prefix     = var.dbt_output_prefix
  }
}
