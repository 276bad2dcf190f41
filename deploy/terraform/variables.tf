variable "region" {
  description = "AWS region for every resource (the worker's AWS_REGION)."
  type        = string
}

variable "bucket_name" {
  description = "The lake bucket (LAKEGATE_BUCKET): landing/, raw/, quarantine/, rejected/, the dbt models and Athena results."
  type        = string
}

variable "datasets" {
  description = "Datasets that get a Glue crawler (<crawler_prefix><dataset>) and raw/<dataset>/ as its first target: one per contract's dataset."
  type        = set(string)
  default     = ["ehr", "ehr_fhir"]
}

variable "name_prefix" {
  description = "Prefix of every named resource except the bucket, so two deployments can share an account."
  type        = string
  default     = "lakegate"
}

variable "crawler_prefix" {
  description = "Crawler names are this plus the dataset; must equal crawler_prefix in the worker's pipeline.yaml."
  type        = string
  default     = "lakegate-"
}

variable "glue_database" {
  description = "Glue database the crawlers write tables <dataset>_<table> to; must equal `database` in pipeline.yaml."
  type        = string
  default     = "raw"
}

variable "dbt_schema" {
  description = "Glue database dbt builds its models in (LAKEGATE_ATHENA_SCHEMA of the dbt profile)."
  type        = string
  default     = "analytics"
}

variable "dbt_output_prefix" {
  description = "Key prefix in the lake bucket where dbt-athena writes model data (s3_data_dir)."
  type        = string
  default     = "analytics/"
}

variable "athena_results_prefix" {
  description = "Key prefix in the lake bucket for Athena query results (the workgroup enforces it)."
  type        = string
  default     = "athena-results/"
}

variable "athena_bytes_scanned_cutoff" {
  description = "Per-query scan limit of the workgroup, in bytes (a runaway query fails instead of billing)."
  type        = number
  default     = 107374182400 # 100 GiB
}

variable "events_queue_visibility_timeout" {
  description = "Seconds an event stays invisible after the worker receives it; above the time one batch of workflow starts takes (docs/aws.md: 60 s is plenty)."
  type        = number
  default     = 120
}

variable "events_max_receive_count" {
  description = "Receives before a message that cannot be routed moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "zone_lifecycle" {
  description = "Days before lifecycle actions per zone: rejected/ expires, quarantine/ and raw/ move to cheaper storage, old versions expire."
  type = object({
    rejected_expire_days           = number
    quarantine_to_ia_days          = number
    raw_to_ia_days                 = number
    raw_to_glacier_ir_days         = number
    athena_results_expire_days     = number
    noncurrent_version_expire_days = number
    abort_multipart_days           = number
  })
  default = {
    rejected_expire_days           = 90
    quarantine_to_ia_days          = 30
    raw_to_ia_days                 = 90
    raw_to_glacier_ir_days         = 365
    athena_results_expire_days     = 30
    noncurrent_version_expire_days = 30
    abort_multipart_days           = 7
  }
}

variable "dbt_image" {
  description = "The dbt image (deploy/docker/dbt.Dockerfile) as <registry>/<repo>:<tag> or @digest."
  type        = string
}

variable "dbt_job" {
  description = "Fargate size and time limit of one dbt stage job. dbt pushes SQL down to Athena, so little is needed."
  type = object({
    vcpu            = string
    memory_mib      = string
    timeout_seconds = number
  })
  default = {
    vcpu            = "1"
    memory_mib      = "2048"
    timeout_seconds = 3600
  }
}

variable "batch_max_vcpus" {
  description = "Upper bound of the Fargate compute environment (concurrent dbt jobs × their vCPUs)."
  type        = number
  default     = 16
}

variable "vpc_id" {
  description = "VPC of the Batch jobs' network interfaces."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the dbt jobs; they need HTTPS egress to ECR, Athena, Glue, S3, STS and CloudWatch Logs (NAT or VPC endpoints)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give dbt jobs a public IP (only for subnets without NAT or endpoints)."
  type        = bool
  default     = false
}

variable "eks_oidc_provider_arn" {
  description = "IAM OIDC provider of the EKS cluster that runs the worker (IRSA). Its URL is derived from the ARN."
  type        = string
}

variable "k8s_namespace" {
  description = "Namespace of the worker's ServiceAccount (deploy/k8s)."
  type        = string
  default     = "lakegate"
}

variable "k8s_service_account" {
  description = "Name of the worker's ServiceAccount (deploy/k8s)."
  type        = string
  default     = "lakegate-worker"
}

variable "manage_batch_log_group" {
  description = "Create /aws/batch/job with retention and KMS encryption. Set false when the account already has it (Batch creates it on first use)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the dbt jobs' logs (they quote model names and SQL errors; lakegate redacts what it reads back into workflows)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
