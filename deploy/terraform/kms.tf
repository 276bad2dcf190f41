# One customer-managed key for everything lakegate stores: the bucket's objects (SSE-KMS), the
# event queues, Athena results and the dbt jobs' logs. The key policy is where the roles get to use
# it, so deploy/iam/*.json stay exactly the files tests/iam.rs checks.
resource "aws_kms_key" "lake" {
  description             = "${var.name_prefix}: lake bucket, event queues, Athena results, dbt logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "lake" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.lake.key_id
}

data "aws_iam_policy_document" "kms" {
  # Without this statement nobody could manage the key later; IAM policies of the account's
  # administrators decide who actually can.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # The worker (S3 moves, SQS receives, Athena checks), the dbt job (reads raw/, writes models and
  # results) and the crawlers (read raw/) use the key only through S3 and SQS.
  statement {
    sid     = "LakeRolesThroughS3AndSqs"
    actions = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    principals {
      type = "AWS"
      identifiers = [
        aws_iam_role.lakegate["worker"].arn,
        aws_iam_role.lakegate["batch_job"].arn,
        aws_iam_role.lakegate["glue_crawler"].arn,
      ]
    }
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com", "sqs.${var.region}.amazonaws.com"]
    }
  }

  # EventBridge encrypts what it puts on the SSE-KMS queue.
  statement {
    sid       = "EventBridgeToQueue"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.landing.arn]
    }
  }

  # CloudWatch Logs encrypts the dbt jobs' log group.
  statement {
    sid       = "LogsForBatchJobs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/batch/job"]
    }
  }
}
