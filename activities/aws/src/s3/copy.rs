//! Copies inside the bucket: one CopyObject up to the single-request limit, UploadPartCopy
//! above it, each conditioned on the source's ETag and tagging the copy with where it came from.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, TaggingDirective};
use lakegate_activities::ports::{KeyTag, ObjectMeta, ObjectStore, StoreError};
use percent_encoding::utf8_percent_encode;

use super::{KEY_ESCAPES, S3Store, backend, quoted};
use crate::error::{Classified, classify};

impl S3Store {
    pub(super) fn copy_source(&self, key: &str) -> String {
        format!("{}/{}", self.bucket, utf8_percent_encode(key, KEY_ESCAPES))
    }

    /// The object's tags as (key, value) pairs.
    /// Copies `from` to `to` if `from` still has ETag `if_match` (when given), tagging the copy
    /// with its zone, the run and the source ETag. Uses a multipart copy above the threshold.
    pub async fn copy_conditional(
        &self,
        from: &str,
        to: &str,
        if_match: Option<&str>,
        run: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        let src = self
            .head(from)
            .await?
            .ok_or_else(|| StoreError::NotFound(KeyTag(from.to_owned())))?;
        let etag = if_match.map(str::to_owned).or_else(|| src.etag.clone());
        if let (Some(want), Some(have)) = (if_match, src.etag.as_deref())
            && want != have
        {
            return Err(StoreError::Conflict {
                key: KeyTag(from.to_owned()),
                operation: "copy",
            });
        }
        let tagging = self.tagging(to, run, etag.as_deref());
        if src.size > self.multipart_threshold {
            self.multipart_copy(from, to, src.size, etag.as_deref(), &tagging)
                .await?;
        } else {
            let mut req = self
                .s3
                .copy_object()
                .bucket(&self.bucket)
                .key(to)
                .copy_source(self.copy_source(from))
                .tagging_directive(TaggingDirective::Replace)
                .tagging(tagging);
            if let Some(etag) = &etag {
                req = req.copy_source_if_match(quoted(etag));
            }
            req.send()
                .await
                .map_err(|e| copy_error(from, "copy_object", &e))?;
        }
        self.head(to).await?.ok_or_else(|| StoreError::Backend {
            key: KeyTag(to.to_owned()),
            operation: "copy_object",
            message: "the copy is not visible after it succeeded".into(),
            retryable: true,
        })
    }

    /// Copy with the source ETag as a precondition: convenience for callers outside moves.
    pub async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta, StoreError> {
        self.copy_conditional(from, to, None, None).await
    }

    async fn multipart_copy(
        &self,
        from: &str,
        to: &str,
        size: u64,
        etag: Option<&str>,
        tagging: &str,
    ) -> Result<(), StoreError> {
        let upload = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(to)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| backend(to, "create_multipart_upload", &e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let result = self.copy_parts(from, to, size, etag, &upload_id).await;
        match result {
            Ok(parts) => {
                self.s3
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| backend(to, "complete_multipart_upload", &e))?;
                Ok(())
            }
            Err(err) => {
                // Parts left behind cost storage until a lifecycle rule aborts them; try now, but
                // the copy's own error is the one worth reporting.
                if let Err(abort) = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key = %KeyTag(to.to_owned()), error = %classify(&abort).message, "abort_multipart_upload failed");
                }
                Err(err)
            }
        }
    }

    async fn copy_parts(
        &self,
        from: &str,
        to: &str,
        size: u64,
        etag: Option<&str>,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1i32;
        while start < size {
            let end = (start + self.part_size).min(size) - 1;
            let mut req = self
                .s3
                .upload_part_copy()
                .bucket(&self.bucket)
                .key(to)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(self.copy_source(from))
                .copy_source_range(format!("bytes={start}-{end}"));
            if let Some(etag) = etag {
                req = req.copy_source_if_match(quoted(etag));
            }
            let out = req
                .send()
                .await
                .map_err(|e| copy_error(from, "upload_part_copy", &e))?;
            let part_etag = out
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .unwrap_or_default();
            parts.push(
                CompletedPart::builder()
                    .e_tag(part_etag)
                    .part_number(number)
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        Ok(parts)
    }
}

/// A failed precondition on the copy source means the source changed under the move.
fn copy_error(from: &str, operation: &'static str, err: impl Into<Classified>) -> StoreError {
    let c = err.into();
    match (c.status, c.code.as_deref()) {
        (Some(412), _) | (_, Some("PreconditionFailed")) => StoreError::Conflict {
            key: KeyTag(from.to_owned()),
            operation: "copy",
        },
        (Some(404), _) | (_, Some("NoSuchKey")) => StoreError::NotFound(KeyTag(from.to_owned())),
        _ => backend(from, operation, c),
    }
}
