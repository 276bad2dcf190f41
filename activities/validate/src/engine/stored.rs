//! The stored bytes as the parser reads them, hashed (SHA-256) and counted on the way. With a
//! third core, hashing a large file runs on a thread of its own, overlapped with parsing: the
//! reader fills a buffer, hands the hashing thread a shared handle to it through a bounded
//! channel and parses the same bytes meanwhile; the thread hands the buffer back once hashed,
//! and the reader refills it. At most `DEPTH` buffers exist, so memory stays constant. A stream
//! that fits in one buffer (most files of the small-file workloads) is hashed inline and never
//! starts a thread, and so is every stream on two cores: there the reading and the checking
//! threads keep both cores busy, and a third thread taking turns with them cost more in waits
//! and switches than it overlapped (on the validation bench, 0.47 s against 0.53 s, median of
//! eight alternated runs, and 8 % less CPU).

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Bytes per read from the store, as the BufReader this replaces used.
const BUF: usize = 256 * 1024;

/// Buffers in flight between the reader and the hashing thread, the reader's own included.
/// Four cover the hashing thread running one buffer behind; more only cost memory.
const DEPTH: usize = 4;

type Buffer = Arc<Vec<u8>>;

enum Hashing {
    Inline(Sha256),
    Thread {
        /// The buffer and how many of its bytes to hash; closed to end the thread.
        to_hash: SyncSender<(Buffer, usize)>,
        hashed: Receiver<Buffer>,
        handle: JoinHandle<Sha256>,
        buffers: usize,
    },
}

pub(super) struct StoredBytes<R> {
    inner: R,
    buf: Buffer,
    pos: usize,
    filled: usize,
    reads: u64,
    hashing: Hashing,
    /// Whether a large stream hashes on a thread of its own (see the module's doc).
    hash_thread: bool,
    /// Stored bytes read so far; the gzip bomb guard compares inflated bytes with it.
    pub(super) bytes: Rc<Cell<u64>>,
    /// Set when the underlying stream failed, so its errors are told from decoding errors
    /// that arrive through the same `io::Error` channel.
    pub(super) failed: bool,
}

impl<R: Read> StoredBytes<R> {
    pub(super) fn new(inner: R, hash_thread: bool) -> Self {
        Self {
            inner,
            buf: Arc::new(Vec::new()),
            pos: 0,
            filled: 0,
            reads: 0,
            hashing: Hashing::Inline(Sha256::new()),
            hash_thread,
            bytes: Rc::new(Cell::new(0)),
            failed: false,
        }
    }

    /// At least `n` bytes at the read position unless the stream ends first; reads on from a
    /// stream that trickles. Only at the start: the bytes go into the first buffer.
    pub(super) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.reads == 0 {
            self.refill()?;
        }
        while self.reads == 1 && self.filled - self.pos < n && self.filled < BUF {
            let (start, got) = self.read_into_current()?;
            if got == 0 {
                break;
            }
            self.hash(start, got)?;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    /// Reads the rest of the stream, so the checksum covers the whole object.
    pub(super) fn drain(&mut self) -> io::Result<()> {
        loop {
            let n = self.fill_buf()?.len();
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
        }
    }

    /// The SHA-256 of every byte read.
    pub(super) fn finish(self) -> io::Result<Sha256> {
        match self.hashing {
            Hashing::Inline(hasher) => Ok(hasher),
            Hashing::Thread {
                to_hash, handle, ..
            } => {
                drop(to_hash);
                handle
                    .join()
                    .map_err(|_| io::Error::other("the hashing thread panicked"))
            }
        }
    }

    /// Reads once into the current buffer after its filled part; returns where and how much.
    fn read_into_current(&mut self) -> io::Result<(usize, usize)> {
        let start = self.filled;
        let Some(buf) = Arc::get_mut(&mut self.buf) else {
            return Err(io::Error::other("stored-bytes buffer still shared"));
        };
        if buf.len() < BUF {
            buf.resize(BUF, 0);
        }
        let n = loop {
            match self.inner.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        };
        self.filled += n;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok((start, n))
    }

    fn refill(&mut self) -> io::Result<()> {
        self.buf = self.free_buffer()?;
        (self.pos, self.filled) = (0, 0);
        let (start, n) = self.read_into_current()?;
        if n > 0 {
            self.reads += 1;
            self.hash(start, n)?;
        }
        Ok(())
    }

    /// Hashes `buf[start..start + n]`, on the thread (when it may have one) once the stream
    /// proves longer than one buffer.
    fn hash(&mut self, start: usize, n: usize) -> io::Result<()> {
        if self.reads > 1
            && self.hash_thread
            && let Hashing::Inline(hasher) = &self.hashing
        {
            // Cloned so that, if no thread can be started, hashing simply stays inline.
            if let Some(thread) = spawn(hasher.clone()) {
                self.hashing = thread;
            }
        }
        match &mut self.hashing {
            Hashing::Inline(hasher) => hasher.update(&self.buf[start..start + n]),
            Hashing::Thread { to_hash, .. } => {
                // Only a whole fresh buffer reaches the thread (peeking happens inline).
                debug_assert_eq!(start, 0);
                if to_hash.send((self.buf.clone(), n)).is_err() {
                    return Err(io::Error::other("the hashing thread stopped"));
                }
            }
        }
        Ok(())
    }

    /// A buffer nobody else holds: the current one when hashing inline, else one the hashing
    /// thread gave back, a new one while fewer than `DEPTH` exist, or the next one it gives back.
    fn free_buffer(&mut self) -> io::Result<Buffer> {
        let mut current = std::mem::replace(&mut self.buf, Arc::new(Vec::new()));
        // Not in flight: hashing inline, or the stream ended on it (read again at the end).
        if Arc::get_mut(&mut current).is_some() {
            return Ok(current);
        }
        drop(current);
        let Hashing::Thread {
            hashed, buffers, ..
        } = &mut self.hashing
        else {
            return Ok(Arc::new(Vec::new()));
        };
        match hashed.try_recv() {
            Ok(buf) => return Ok(buf),
            Err(TryRecvError::Disconnected) => {
                return Err(io::Error::other("the hashing thread stopped"));
            }
            Err(TryRecvError::Empty) => {}
        }
        if *buffers < DEPTH {
            *buffers += 1;
            return Ok(Arc::new(vec![0; BUF]));
        }
        hashed
            .recv()
            .map_err(|_| io::Error::other("the hashing thread stopped"))
    }
}

/// Starts the hashing thread with the hash of what was read so far; None if no thread can be
/// started.
fn spawn(mut hasher: Sha256) -> Option<Hashing> {
    let (to_hash, rx) = sync_channel::<(Buffer, usize)>(DEPTH);
    let (back, hashed) = channel();
    let handle = std::thread::Builder::new()
        .name("lakegate-sha256".into())
        .spawn(move || {
            for (buf, n) in rx {
                hasher.update(&buf[..n]);
                // The reader may have stopped early (a failed stream); then nobody needs it.
                let _ = back.send(buf);
            }
            hasher
        })
        .ok()?;
    Some(Hashing::Thread {
        to_hash,
        hashed,
        handle,
        // The reader's current buffer; the thread gets its clone first.
        buffers: 1,
    })
}

impl<R: Read> Read for StoredBytes<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for StoredBytes<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.filled {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}
