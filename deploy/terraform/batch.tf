# AWS Batch on Fargate runs one dbt job per transform stage (BatchRunner::submit). The queue and
# job definition names are the worker's LAKEGATE_BATCH_JOB_QUEUE / LAKEGATE_BATCH_JOB_DEFINITION.

resource "aws_security_group" "dbt_jobs" {
  name        = "${var.name_prefix}-dbt-jobs"
  description = "lakegate dbt jobs: no inbound, HTTPS out to AWS APIs and the image registry"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to Athena, Glue, S3, STS, ECR and CloudWatch Logs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_batch_compute_environment" "dbt" {
  name = "${var.name_prefix}-dbt"
  type = "MANAGED"

  compute_resources {
    type               = "FARGATE"
    max_vcpus          = var.batch_max_vcpus
    subnets            = var.subnet_ids
    security_group_ids = [aws_security_group.dbt_jobs.id]
  }
  # No service_role: Batch uses its service-linked role (AWSServiceRoleForBatch).
}

resource "aws_batch_job_queue" "dbt" {
  name     = local.batch_job_queue
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.dbt.arn
  }
}

# BatchRunner::log_tail reads the job's stream from the group named in the job definition's
# awslogs options; the worker's policy allows exactly /aws/batch/job (Batch's default group).
resource "aws_cloudwatch_log_group" "batch_jobs" {
  count             = var.manage_batch_log_group ? 1 : 0
  name              = "/aws/batch/job"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.lake.arn
}

resource "aws_batch_job_definition" "dbt" {
  name                  = local.batch_job_definition
  type                  = "container"
  platform_capabilities = ["FARGATE"]
  propagate_tags        = true

  # Temporal retries (TransformWorkflow's max_attempts, then `dbt retry`/rebuild); a Batch retry
  # underneath would run a failed dbt stage again behind the workflow's back.
  retry_strategy {
    attempts = 1
  }

  timeout {
    attempt_duration_seconds = var.dbt_job.timeout_seconds
  }

  container_properties = jsonencode({
    image            = var.dbt_image
    jobRoleArn       = aws_iam_role.lakegate["batch_job"].arn
    executionRoleArn = aws_iam_role.lakegate["batch_execution"].arn
    # Every job lakegate submits overrides this (deploy/docker/dbt-entrypoint.sh lists the shape).
    command = ["dbt", "debug", "--project-dir", "/opt/lakegate/dbt", "--profiles-dir", "/opt/lakegate/dbt", "--target", "athena"]
    resourceRequirements = [
      { type = "VCPU", value = var.dbt_job.vcpu },
      { type = "MEMORY", value = var.dbt_job.memory_mib },
    ]
    # What examples/ehr/dbt/profiles.yml's `athena` output reads.
    environment = [
      { name = "AWS_REGION", value = var.region },
      { name = "LAKEGATE_DBT_TARGET", value = "athena" },
      { name = "LAKEGATE_ATHENA_STAGING_DIR", value = local.athena_output },
      { name = "LAKEGATE_ATHENA_DATA_DIR", value = "s3://${var.bucket_name}/${var.dbt_output_prefix}" },
      { name = "LAKEGATE_ATHENA_WORKGROUP", value = local.athena_workgroup },
      { name = "LAKEGATE_ATHENA_SCHEMA", value = var.dbt_schema },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = "/aws/batch/job"
        "awslogs-region"        = var.region
        "awslogs-stream-prefix" = "lakegate-dbt"
      }
    }
    networkConfiguration = {
      assignPublicIp = var.assign_public_ip ? "ENABLED" : "DISABLED"
    }
    fargatePlatformConfiguration = {
      platformVersion = "LATEST"
    }
    user = "65532"
  })

  depends_on = [aws_cloudwatch_log_group.batch_jobs]
}
