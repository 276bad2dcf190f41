//! Every AWS operation the adapters call, with the IAM actions it needs.
//!
//! deploy/iam/worker-policy.json must allow all of them; `tests/iam.rs` checks that, and also scans
//! this crate's sources for SDK calls missing from [`OPERATIONS`], so adding a call without a
//! policy change fails the build's tests instead of failing in production with AccessDenied.

/// (client field as the code names it, SDK operation method, IAM actions it needs).
pub const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("s3", "head_object", &["s3:GetObject"]),
    ("s3", "get_object", &["s3:GetObject"]),
    ("s3", "put_object", &["s3:PutObject", "s3:PutObjectTagging"]),
    ("s3", "list_objects_v2", &["s3:ListBucket"]),
    ("s3", "delete_object", &["s3:DeleteObject"]),
    ("s3", "get_object_tagging", &["s3:GetObjectTagging"]),
    (
        "s3",
        "copy_object",
        &["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
    ),
    (
        "s3",
        "create_multipart_upload",
        &["s3:PutObject", "s3:PutObjectTagging"],
    ),
    ("s3", "upload_part_copy", &["s3:GetObject", "s3:PutObject"]),
    ("s3", "complete_multipart_upload", &["s3:PutObject"]),
    ("s3", "abort_multipart_upload", &["s3:AbortMultipartUpload"]),
    ("sqs", "receive_message", &["sqs:ReceiveMessage"]),
    ("sqs", "delete_message", &["sqs:DeleteMessage"]),
    ("glue", "get_crawler", &["glue:GetCrawler"]),
    ("glue", "update_crawler", &["glue:UpdateCrawler"]),
    ("glue", "start_crawler", &["glue:StartCrawler"]),
    // A retried start tells its own running crawl from another's by the crawl's start.
    ("glue", "list_crawls", &["glue:ListCrawls"]),
    ("glue", "get_tables", &["glue:GetTables"]),
    ("glue", "get_partitions", &["glue:GetPartitions"]),
    ("glue", "get_table", &["glue:GetTable"]),
    ("glue", "create_table", &["glue:CreateTable"]),
    ("glue", "update_table", &["glue:UpdateTable"]),
    (
        "glue",
        "batch_create_partition",
        &["glue:BatchCreatePartition"],
    ),
    // Which partitions exist before they are created, so a retried create still reports them.
    ("glue", "batch_get_partition", &["glue:BatchGetPartition"]),
    (
        "athena",
        "start_query_execution",
        &["athena:StartQueryExecution"],
    ),
    (
        "athena",
        "get_query_execution",
        &["athena:GetQueryExecution"],
    ),
    ("athena", "get_query_results", &["athena:GetQueryResults"]),
    // A check query past its deadline, or of a cancelled transform, is stopped.
    (
        "athena",
        "stop_query_execution",
        &["athena:StopQueryExecution"],
    ),
    ("batch", "list_jobs", &["batch:ListJobs"]),
    ("batch", "submit_job", &["batch:SubmitJob"]),
    ("batch", "describe_jobs", &["batch:DescribeJobs"]),
    ("batch", "terminate_job", &["batch:TerminateJob"]),
    ("logs", "get_log_events", &["logs:GetLogEvents"]),
];

/// What Athena does with the caller's credentials while it runs a query: read the catalog and the
/// data, write results. Not SDK calls of ours, but the worker's policy must allow them too.
pub const ATHENA_ON_BEHALF: &[&str] = &[
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
];
