# The workgroup the worker's checks and dbt's queries run in. Its settings are enforced, so a
# client cannot send results elsewhere or unencrypted.
resource "aws_athena_workgroup" "lakegate" {
  name          = local.athena_workgroup
  force_destroy = false

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location       = local.athena_output
      expected_bucket_owner = local.account_id
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.lake.arn
      }
    }

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }
  }
}
