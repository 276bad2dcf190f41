//! The object store on S3.
//!
//! Moves are the part that matters: a Temporal activity can crash or time out between any two S3
//! calls and be retried, so [`S3Store::move_object`] is written to be re-run from the top:
//! the copy is conditioned on the source's ETag (`x-amz-copy-source-if-match`), and the copy tags
//! the destination with the source ETag it came from. A retry that finds the source still there
//! and the destination already holding the same bytes (same ETag, or a tag naming the source's
//! ETag when a multipart copy changed it) only deletes the source; a retry that finds the source
//! gone and the destination present reports the move as done. The source can therefore never be
//! deleted before an identical destination exists, and a changed source is never moved blindly.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use bytes::Bytes;
use lakegate_activities::ports::{
    ByteStream, KeyTag, ObjectMeta, ObjectStore, StoreError, StoreResult,
};
use lakegate_models::Zone;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Classified;

mod copy;

/// S3's single-request CopyObject limit: bigger objects must be copied in parts.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Part size for UploadPartCopy: 10,000 parts of 512 MiB cover S3's 5 TiB object limit, and one
/// part copies well within [`crate::config::S3_ATTEMPT_TIMEOUT`].
pub const DEFAULT_PART_SIZE: u64 = 512 * 1024 * 1024;

pub const ZONE_TAG: &str = "lakegate-zone";
pub const RUN_TAG: &str = "lakegate-run";
/// The ETag of the object a copy was made from: lets a retried move recognise its own earlier
/// copy even when a multipart copy gave the destination a different ETag.
pub const SOURCE_ETAG_TAG: &str = "lakegate-source-etag";

/// Characters escaped in a copy source and in tag strings: everything but unreserved characters
/// (and `/` in keys, which S3 expects literally in x-amz-copy-source).
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
const QUERY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Clone)]
pub struct S3Store {
    s3: aws_sdk_s3::Client,
    bucket: String,
    run_id: Option<String>,
    multipart_threshold: u64,
    part_size: u64,
    list_page_size: Option<i32>,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            s3: client,
            bucket: bucket.into(),
            run_id: None,
            multipart_threshold: MAX_SINGLE_COPY,
            part_size: DEFAULT_PART_SIZE,
            list_page_size: None,
        }
    }

    /// Tag objects this store writes or moves with `lakegate-run=<run_id>`.
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Copy objects larger than `threshold` bytes in parts of `part_size` (S3 needs parts of at
    /// least 5 MiB except the last). Defaults: 5 GiB and 512 MiB; tests lower them.
    pub fn with_multipart_copy(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold.min(MAX_SINGLE_COPY);
        self.part_size = part_size.max(5 * 1024 * 1024);
        self
    }

    /// Keys per ListObjectsV2 page (S3's default and maximum is 1,000); tests lower it to
    /// exercise pagination.
    pub fn with_list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = Some(size);
        self
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The tag set a write into `key` carries: its zone, the run, and the source ETag of a copy.
    fn tagging(&self, key: &str, run: Option<&str>, source_etag: Option<&str>) -> String {
        let mut tags: Vec<(&str, String)> = Vec::new();
        if let Some(zone) = Zone::of_key(key) {
            tags.push((ZONE_TAG, zone.prefix().trim_end_matches('/').to_owned()));
        }
        if let Some(run) = run.or(self.run_id.as_deref()) {
            tags.push((RUN_TAG, run.to_owned()));
        }
        if let Some(etag) = source_etag {
            tags.push((SOURCE_ETAG_TAG, etag.to_owned()));
        }
        tags.iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY_ESCAPES),
                    utf8_percent_encode(v, QUERY_ESCAPES)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    pub async fn tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        let out = self
            .s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) {
                    return StoreError::NotFound(KeyTag(key.to_owned()));
                }
                backend(key, "get_object_tagging", &e)
            })?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    /// [`ObjectStore::move_object`] with an explicit run id for the destination's tags.
    pub async fn move_tagged(
        &self,
        from: &str,
        to: &str,
        run: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        self.move_inner(from, to, run, None).await
    }

    /// `expected`: the source's ETag the caller checked it at; the copy is conditioned on it.
    async fn move_inner(
        &self,
        from: &str,
        to: &str,
        run: Option<&str>,
        expected: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        if from == to {
            return Err(StoreError::InvalidKey {
                key: KeyTag(to.to_owned()),
                reason: "move onto itself",
            });
        }
        let Some(src) = self.head(from).await? else {
            // Either the move already finished (a retry after the delete) or there is nothing to move.
            return self
                .head(to)
                .await?
                .ok_or_else(|| StoreError::NotFound(KeyTag(from.to_owned())));
        };
        if expected.is_some_and(|e| src.etag.as_deref() != Some(e)) {
            return Err(StoreError::Conflict {
                key: KeyTag(from.to_owned()),
                operation: "move",
            });
        }
        if let Some(dst) = self.head(to).await? {
            if self.is_copy_of(&dst, &src).await? {
                // A crash between copy and delete: finish the move.
                self.delete(from).await?;
                return Ok(dst);
            }
            // Never overwrite: the workflow picks another name and both objects are kept.
            return Err(StoreError::DestinationExists(KeyTag(to.to_owned())));
        }
        let dst = self
            .copy_conditional(from, to, src.etag.as_deref(), run)
            .await?;
        self.delete(from).await?;
        Ok(dst)
    }

    async fn is_copy_of(&self, dst: &ObjectMeta, src: &ObjectMeta) -> Result<bool, StoreError> {
        let Some(src_etag) = src.etag.as_deref() else {
            return Ok(false);
        };
        if dst.size != src.size {
            return Ok(false);
        }
        self.meta_is_copy_of(dst, src_etag).await
    }

    /// The same ETag, or, since a multipart copy gives the destination a new one, the tag that
    /// remembers the source's.
    async fn meta_is_copy_of(&self, dst: &ObjectMeta, src_etag: &str) -> Result<bool, StoreError> {
        if dst.etag.as_deref() == Some(src_etag) {
            return Ok(true);
        }
        let tags = self.tags(&dst.key).await?;
        Ok(tags
            .iter()
            .any(|(k, v)| k == SOURCE_ETAG_TAG && v == src_etag))
    }
}

/// S3 returns ETags in quotes; the ports carry them bare.
fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

fn backend(key: &str, operation: &'static str, err: impl Into<Classified>) -> StoreError {
    let c = err.into();
    StoreError::Backend {
        key: KeyTag(key.to_owned()),
        operation,
        message: c.message,
        retryable: c.retryable,
    }
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > 1024 {
        return Err(StoreError::InvalidKey {
            key: KeyTag(key.to_owned()),
            reason: "S3 keys are 1 to 1024 bytes",
        });
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn holds_copy_of(&self, key: &str, etag: &str) -> Result<bool, StoreError> {
        match self.head(key).await? {
            Some(meta) => self.meta_is_copy_of(&meta, etag).await,
            None => Ok(false),
        }
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        check_key(key)?;
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: out.content_length().unwrap_or_default().max(0) as u64,
                etag: out.e_tag().map(unquote),
                version: out.version_id().map(str::to_owned),
                last_modified: out.last_modified().map(|t| t.secs()),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(backend(key, "head_object", &e)),
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        check_key(key)?;
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Box::pin(out.body.into_async_read())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(StoreError::NotFound(KeyTag(key.to_owned())))
            }
            Err(e) => Err(backend(key, "get_object", &e)),
        }
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StoreError> {
        check_key(key)?;
        let size = body.len() as u64;
        let mut req = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(SdkByteStream::from(body));
        let tagging = self.tagging(key, None, None);
        if !tagging.is_empty() {
            req = req.tagging(tagging);
        }
        let out = req
            .send()
            .await
            .map_err(|e| backend(key, "put_object", &e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
            etag: out.e_tag().map(unquote),
            version: out.version_id().map(str::to_owned),
            last_modified: None,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.list_page(prefix, None, usize::MAX).await
    }

    /// Follows continuation tokens; S3 starts the listing at `after` itself (StartAfter).
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        while all.len() < limit {
            let remaining = i32::try_from(limit - all.len()).unwrap_or(i32::MAX);
            let page_size = self
                .list_page_size
                .map_or(remaining, |size| size.min(remaining));
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(after.map(str::to_owned))
                .max_keys(page_size.min(1000))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| backend(prefix, "list_objects_v2", &e))?;
            for obj in out.contents() {
                let Some(key) = obj.key() else { continue };
                all.push(ObjectMeta {
                    key: key.to_owned(),
                    size: obj.size().unwrap_or_default().max(0) as u64,
                    etag: obj.e_tag().map(unquote),
                    version: None,
                    last_modified: obj.last_modified().map(|t| t.secs()),
                });
            }
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; sorting keeps the contract explicit for any
        // S3-compatible store that does not.
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all.truncate(limit);
        Ok(all)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend(key, "delete_object", &e))?;
        Ok(())
    }

    async fn move_object(&self, from: &str, to: &str) -> Result<ObjectMeta, StoreError> {
        self.move_tagged(from, to, None).await
    }

    /// The copy carries `x-amz-copy-source-if-match: <etag>`, so S3 itself refuses a source
    /// replaced after the check.
    async fn move_object_if(&self, from: &str, to: &str, etag: &str) -> StoreResult<ObjectMeta> {
        self.move_inner(from, to, None, Some(etag)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> S3Store {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        S3Store::new(aws_sdk_s3::Client::from_conf(conf), "lake")
    }

    #[test]
    fn copy_source_escapes_the_key_but_not_its_slashes() {
        assert_eq!(
            store().copy_source("landing/a b+c%/é.csv"),
            "lake/landing/a%20b%2Bc%25/%C3%A9.csv"
        );
    }

    #[test]
    fn tags_record_zone_run_and_source() {
        let s = store().with_run_id("run 1");
        assert_eq!(
            s.tagging("raw/emr/x.csv", None, Some("abc")),
            "lakegate-zone=raw&lakegate-run=run%201&lakegate-source-etag=abc"
        );
        assert_eq!(
            s.tagging("elsewhere/x", Some("r2"), None),
            "lakegate-run=r2"
        );
    }

    #[test]
    fn etags_are_carried_bare_and_sent_quoted() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(quoted("\"abc\""), "\"abc\"");
    }
}
