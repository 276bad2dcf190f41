# S3 -> EventBridge -> SQS: the worker's event router (LAKEGATE_SQS_QUEUE_URL) reads "Object
# Created" events for landing/ and starts one IngestFileWorkflow per object version. Messages it
# cannot parse, or whose workflows it cannot start, are left alone and land in the DLQ after
# events_max_receive_count receives (docs/aws.md, "Event router").
resource "aws_sqs_queue" "events_dlq" {
  name                      = "${local.events_queue_name}-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's maximum: time to look and redrive.
  kms_master_key_id         = aws_kms_key.lake.arn
}

resource "aws_sqs_queue" "events" {
  name                       = local.events_queue_name
  visibility_timeout_seconds = var.events_queue_visibility_timeout
  # The router long-polls for 20 s itself; matching it here keeps other consumers from busy-polling.
  receive_wait_time_seconds = 20
  message_retention_seconds = 345600 # 4 days: a worker outage of a long weekend loses nothing.
  kms_master_key_id         = aws_kms_key.lake.arn
  # Reuse a data key for 5 minutes: one KMS call per few hundred events, not one per event.
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq.arn
    maxReceiveCount     = var.events_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "events_dlq" {
  queue_url = aws_sqs_queue.events_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events.arn]
  })
}

resource "aws_cloudwatch_event_rule" "landing" {
  name        = "${var.name_prefix}-landing-object-created"
  description = "Objects created under landing/ in the lake bucket, for lakegate's event router"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [aws_s3_bucket.lake.bucket] }
      object = { key = [{ prefix = "landing/" }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "landing_to_queue" {
  rule      = aws_cloudwatch_event_rule.landing.name
  target_id = "lakegate-events"
  arn       = aws_sqs_queue.events.arn
  # The event goes to the queue as it is: the router reads EventBridge's own envelope.
  dead_letter_config {
    arn = aws_sqs_queue.events_dlq.arn
  }
  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
}

# Only this rule may send to the queues (the DLQ also receives what EventBridge cannot deliver).
data "aws_iam_policy_document" "events_queue" {
  for_each = {
    events = aws_sqs_queue.events.arn
    dlq    = aws_sqs_queue.events_dlq.arn
  }
  statement {
    sid       = "EventBridgeRuleSends"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]
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
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events_queue["events"].json
}

resource "aws_sqs_queue_policy" "events_dlq" {
  queue_url = aws_sqs_queue.events_dlq.id
  policy    = data.aws_iam_policy_document.events_queue["dlq"].json
}
