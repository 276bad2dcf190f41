# The catalog: `raw` for what the crawlers find under raw/, `analytics` for dbt's models. dbt's job
# role may not create databases (deploy/iam/batch-job-policy.json), so both exist before it runs.
resource "aws_glue_catalog_database" "raw" {
  name        = var.glue_database
  description = "lakegate: tables <dataset>_<table> crawled from s3://${var.bucket_name}/raw/"
}

resource "aws_glue_catalog_database" "models" {
  name         = var.dbt_schema
  description  = "lakegate: dbt models (staging views, marts tables)"
  location_uri = "s3://${var.bucket_name}/${var.dbt_output_prefix}"
}

# One crawler per dataset, created once here; the worker re-targets it to exactly the prefixes
# that received files before each run (GlueCrawler::start_crawl), so its S3 target below is only
# the starting point and is ignored on later plans.
resource "aws_glue_crawler" "dataset" {
  for_each = var.datasets

  name          = "${var.crawler_prefix}${each.key}"
  role          = aws_iam_role.lakegate["glue_crawler"].arn
  database_name = aws_glue_catalog_database.raw.name
  # Tables are <dataset>_<table>: raw.ehr_patients, as the dbt sources and checks name them.
  table_prefix = "${each.key}_"

  s3_target {
    path = "s3://${var.bucket_name}/raw/${each.key}/"
  }

  # Each run covers only the prefixes it is pointed at, all of each.
  recrawl_policy {
    recrawl_behavior = "CRAWL_EVERYTHING"
  }

  # A partition folder deleted by lifecycle rules must not drop the table.
  schema_change_policy {
    update_behavior = "UPDATE_IN_DATABASE"
    delete_behavior = "LOG"
  }

  configuration = jsonencode({
    Version = 1.0
    Grouping = {
      # s3://bucket/raw/<dataset>/<table>/ingest_date=.../: the table is the 4th level, so a crawl
      # of one partition folder updates <dataset>_<table> instead of creating a table named after
      # the folder.
      TableLevelConfiguration = 4
      TableGroupingPolicy     = "CombineCompatibleSchemas"
    }
    CrawlerOutput = {
      Partitions = { AddOrUpdateBehavior = "InheritFromTable" }
    }
  })

  lifecycle {
    ignore_changes = [s3_target]
  }
}
