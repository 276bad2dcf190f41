# Resources that changed address: a state applied before moves them to the new address on the
# next plan instead of destroying and recreating them (a recreated role is a new principal: the
# worker is cut off meanwhile, and the KMS key policy names the old one until it is applied
# again). Terraform has no for_each for moved blocks, so each is written out; delete them once
# every state has been applied with the new addresses.

# The IAM roles, their inline policies and managed-policy attachments, written once (iam.tf).
moved {
  from = aws_iam_role.worker
  to   = aws_iam_role.lakegate["worker"]
}

moved {
  from = aws_iam_role.batch_job
  to   = aws_iam_role.lakegate["batch_job"]
}

moved {
  from = aws_iam_role.batch_execution
  to   = aws_iam_role.lakegate["batch_execution"]
}

moved {
  from = aws_iam_role.glue_crawler
  to   = aws_iam_role.lakegate["glue_crawler"]
}

moved {
  from = aws_iam_role_policy.worker
  to   = aws_iam_role_policy.lakegate["worker"]
}

moved {
  from = aws_iam_role_policy.batch_job
  to   = aws_iam_role_policy.lakegate["batch_job"]
}

moved {
  from = aws_iam_role_policy.glue_crawler_raw
  to   = aws_iam_role_policy.lakegate["glue_crawler"]
}

moved {
  from = aws_iam_role_policy_attachment.batch_execution
  to   = aws_iam_role_policy_attachment.aws_managed["batch_execution"]
}

moved {
  from = aws_iam_role_policy_attachment.glue_crawler_service
  to   = aws_iam_role_policy_attachment.aws_managed["glue_crawler"]
}
