//! Between the stored bytes (hashed and counted in `stored`) and the parser: gzip detection and
//! decoding, and the limits that stop a gzip bomb.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use super::plan::State;
use super::slot::Slot;
use super::stored::{Source, StoredBytes};
use super::{Limits, ValidateError, ValidateOptions};
use crate::TableContract;
use crate::contract::{Compression, FormatKind, Level};

/// The inflated stream's buffer.
const BUF: usize = 256 * 1024;

/// Feeds the stream to the parser, through gzip when the table or the bytes say so. A corrupt
/// gzip stream or a tripped bomb guard is a failed rule in `st`; only a failing stream is an
/// `Err`.
pub(super) fn decode<R: Read>(
    st: &mut State,
    stored: &mut StoredBytes<R>,
    table: &TableContract,
    opts: &ValidateOptions,
) -> Result<(), ValidateError> {
    // Two bytes are enough to tell gzip; read them even from a stream that trickles.
    let magic = stored.peek(2)?;
    let gzip = match table.format.compression {
        Compression::Gzip => true,
        Compression::None => false,
        Compression::Auto => {
            opts.name
                .as_deref()
                .is_some_and(|n| n.to_ascii_lowercase().ends_with(".gz"))
                || magic.starts_with(&[0x1f, 0x8b])
        }
    };
    let result = if gzip {
        st.gzip = Some(Slot::new("gzip", None, Level::Error));
        st.limit = Some(Slot::new("decompression_limit", None, Level::Error));
        let limited = LimitReader {
            compressed: stored.bytes.clone(),
            inner: flate2::bufread::MultiGzDecoder::new(&mut *stored),
            inflated: 0,
            limits: opts.limits,
        };
        st.run(&mut BufReader::with_capacity(BUF, limited))
    } else {
        st.run(stored)
    };
    if let Err(e) = result {
        if stored.failed {
            return Err(ValidateError::Read(e));
        }
        let limit_hit = e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>());
        match (limit_hit, st.limit.as_mut(), st.gzip.as_mut()) {
            (true, Some(slot), _) => {
                slot.failures = 1;
                slot.detail = format!(
                    "stopped inflating past {} bytes or {}x the stored size",
                    opts.limits.max_decompressed_bytes, opts.limits.max_compression_ratio
                );
            }
            (false, _, Some(slot)) => {
                slot.failures = 1;
                slot.detail = format!(
                    "the gzip stream is corrupt or truncated after {} data rows",
                    st.rows
                );
            }
            _ => return Err(ValidateError::Read(e)),
        }
    }
    Ok(())
}

impl State<'_> {
    pub(super) fn run(&mut self, input: &mut dyn Source) -> io::Result<()> {
        match self.table.format.kind {
            FormatKind::Csv => self.run_csv(input),
            FormatKind::Ndjson | FormatKind::Fhir => self.run_ndjson(input),
        }
    }
}

#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompression limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

/// Counts inflated bytes and stops a gzip bomb before it costs more than the limits allow.
struct LimitReader<R> {
    inner: R,
    inflated: u64,
    compressed: Rc<Cell<u64>>,
    limits: Limits,
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.inflated += n as u64;
        let l = &self.limits;
        let ratio_hit = self.inflated > l.ratio_grace_bytes
            && self.inflated / self.compressed.get().max(1) > l.max_compression_ratio;
        if self.inflated > l.max_decompressed_bytes || ratio_hit {
            return Err(io::Error::other(LimitExceeded));
        }
        Ok(n)
    }
}
