# The lake: one bucket, four zones as key prefixes (landing/, raw/, quarantine/, rejected/), plus
# dbt's model data and Athena's results. Versioned, because the worker names an object version in
# each IngestFileWorkflow's id and a move must never lose the file it copies.
resource "aws_s3_bucket" "lake" {
  bucket = var.bucket_name
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.lake.arn
    }
    # One data key per bucket instead of a KMS call per object: moves copy every file twice.
    bucket_key_enabled = true
  }
}

# S3 sends every event to EventBridge; the rule in events.tf picks Object Created under landing/.
resource "aws_s3_bucket_notification" "lake" {
  bucket      = aws_s3_bucket.lake.id
  eventbridge = true
}

# Only TLS. Default encryption (above) applies the lake's key to every object written without
# an encryption header, which is how the worker and Athena write.
data "aws_iam_policy_document" "lake_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.lake_bucket.json
  # A bucket policy cannot be put while the public access block is still being applied.
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  # Lifecycle rules on noncurrent versions need versioning on first.
  depends_on = [aws_s3_bucket_versioning.lake]

  # A rejected file is kept for the audit window, then deleted (its workflow history keeps the
  # report, never the data).
  rule {
    id     = "rejected-expire"
    status = "Enabled"
    filter {
      prefix = "rejected/"
    }
    expiration {
      days = var.zone_lifecycle.rejected_expire_days
    }
  }

  # Quarantined files wait for a person (7 days by default) and are rarely read after that.
  rule {
    id     = "quarantine-to-ia"
    status = "Enabled"
    filter {
      prefix = "quarantine/"
    }
    transition {
      days          = var.zone_lifecycle.quarantine_to_ia_days
      storage_class = "STANDARD_IA"
    }
  }

  # raw/ is read by crawls and dbt soon after arrival, and by backfills or audits later:
  # Glacier Instant Retrieval keeps it queryable by Athena without a restore.
  rule {
    id     = "raw-tiering"
    status = "Enabled"
    filter {
      prefix = "raw/"
    }
    transition {
      days          = var.zone_lifecycle.raw_to_ia_days
      storage_class = "STANDARD_IA"
    }
    transition {
      days          = var.zone_lifecycle.raw_to_glacier_ir_days
      storage_class = "GLACIER_IR"
    }
  }

  rule {
    id     = "athena-results-expire"
    status = "Enabled"
    filter {
      prefix = var.athena_results_prefix
    }
    expiration {
      days = var.zone_lifecycle.athena_results_expire_days
    }
  }

  # Every move leaves a noncurrent version of its source (and delete markers); keep them only
  # long enough to recover from a mistake.
  rule {
    id     = "noncurrent-versions-expire"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.zone_lifecycle.noncurrent_version_expire_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = var.zone_lifecycle.abort_multipart_days
    }
  }
}
