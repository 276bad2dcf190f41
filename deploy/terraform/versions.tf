terraform {
  # 1.6: `terraform test` and the current `import`/`check` semantics this module may grow into.
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: aws_batch_compute_environment's `name` (5.x called it compute_environment_name).
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ app = "lakegate" }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
