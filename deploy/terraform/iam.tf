# Roles. The worker's and the dbt job's permissions are deploy/iam/*.json as they are in the
# repository, filled in by templatefile: tests/iam.rs checks the worker's file against every AWS
# call the code makes, so copying it here would let the two drift apart.

# The worker, on EKS through IRSA: only its ServiceAccount can assume the role.
locals {
  oidc_issuer = replace(var.eks_oidc_provider_arn, "/^arn:[^:]+:iam::[0-9]+:oidc-provider\\//", "")
}

data "aws_iam_policy_document" "worker_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.k8s_namespace}:${var.k8s_service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# The dbt job (Batch on Fargate): ECS tasks assume the job role and the execution role.
data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The crawlers: Glue assumes their role, which may also read raw/.
data "aws_iam_policy_document" "glue_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "glue_crawler_raw" {
  statement {
    sid       = "ReadRawZone"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.lake.arn}/raw/*"]
  }
  statement {
    sid       = "ListRawZone"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["raw/*"]
    }
  }
}

# Every role, keyed as it is referenced elsewhere: its name after var.name_prefix and who may
# assume it.
locals {
  roles = {
    worker          = { name = "worker", trust = data.aws_iam_policy_document.worker_trust.json }
    batch_job       = { name = "dbt-job", trust = data.aws_iam_policy_document.ecs_tasks_trust.json }
    batch_execution = { name = "dbt-execution", trust = data.aws_iam_policy_document.ecs_tasks_trust.json }
    glue_crawler    = { name = "glue-crawler", trust = data.aws_iam_policy_document.glue_trust.json }
  }
}

resource "aws_iam_role" "lakegate" {
  for_each           = local.roles
  name               = "${var.name_prefix}-${each.value.name}"
  assume_role_policy = each.value.trust
}

# What the roles may do beyond AWS's managed policies: the worker and the dbt job exactly
# deploy/iam/*.json; the crawlers read raw/.
resource "aws_iam_role_policy" "lakegate" {
  for_each = {
    worker       = { name = "lakegate-worker", policy = templatefile("${path.module}/../iam/worker-policy.json", local.iam_template_vars) }
    batch_job    = { name = "lakegate-dbt-job", policy = templatefile("${path.module}/../iam/batch-job-policy.json", local.iam_template_vars) }
    glue_crawler = { name = "lakegate-read-raw", policy = data.aws_iam_policy_document.glue_crawler_raw.json }
  }
  name   = each.value.name
  role   = aws_iam_role.lakegate[each.key].id
  policy = each.value.policy
}

# The execution role pulls the image and ships the logs; the crawlers' service policy covers
# catalog writes and their own logs.
resource "aws_iam_role_policy_attachment" "aws_managed" {
  for_each = {
    batch_execution = "service-role/AmazonECSTaskExecutionRolePolicy"
    glue_crawler    = "service-role/AWSGlueServiceRole"
  }
  role       = aws_iam_role.lakegate[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}
