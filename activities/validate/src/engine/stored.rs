//! The stored bytes as the parser reads them, hashed (SHA-256) and counted on the way. With a
//! third core, hashing a large file runs on a thread of its own, overlapped with parsing: the
//! reader fills a buffer, hands the hashing thread a shared handle to it through a bounded
//! channel and parses the same bytes meanwhile; the thread hands the buffer back once hashed,
//! and the reader refills it. A stream that fits in one buffer (most files of the small-file
//! workloads) is hashed inline and never starts a thread.
//!
//! On two cores a third thread taking turns with the reading and the checking ones costs more
//! in waits and switches than it overlaps (on the validation bench, 0.29 s against 0.35 s,
//! median of ten alternated runs). There the checking thread, once one runs, hashes instead:
//! the reader sends each buffer down the queue that carries its batches ([`SharedHash`]), and
//! the columns are shared out with the hashing counted on its side. Hashing alone is about a
//! quarter of a validation's work, and it was all on the reader, which otherwise only reads and
//! splits records: with every column on the checking thread, that one still waited.
//!
//! Batches of records keep a handle to the buffer their lines are in rather than a copy of the
//! lines ([`Source::lent`]): the checking thread then reads its columns in bytes it has just
//! hashed, still in its cache, not in a copy the reader wrote on the other core. So a buffer
//! is also held until the batches in it are checked: it is refilled once nobody else holds
//! it, and a new one is made while none is free. The queues bound how many are held (the
//! hashing queue's `DEPTH` plus the batches in flight), so memory stays constant.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Bytes per read from the store, as the BufReader this replaces used.
const BUF: usize = 256 * 1024;

/// Buffers queued for the hashing thread. Four cover it running one buffer behind; more only
/// cost memory.
const DEPTH: usize = 4;

pub(super) type Buffer = Arc<Vec<u8>>;

enum Hashing {
    /// Here, or on the checking thread while one runs.
    Shared(Arc<SharedHash>),
    Thread {
        /// The buffer and how many of its bytes to hash; closed to end the thread.
        to_hash: SyncSender<(Buffer, Range<usize>)>,
        hashed: Receiver<Buffer>,
        handle: JoinHandle<Sha256>,
    },
}

pub(super) struct StoredBytes<R> {
    inner: R,
    buf: Buffer,
    /// Buffers that came back from hashing or were left behind by a refill, some of them still
    /// held by batches.
    spare: Vec<Buffer>,
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
    pub(super) fn new(inner: R, hash_thread: bool, shared: Arc<SharedHash>) -> Self {
        Self {
            inner,
            buf: Arc::new(Vec::new()),
            spare: Vec::new(),
            pos: 0,
            filled: 0,
            reads: 0,
            hashing: Hashing::Shared(shared),
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
            // Any checking thread has been joined: the hash is complete.
            Hashing::Shared(shared) => Ok(lock(&shared.sha).clone()),
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

    /// Moves the bytes not consumed yet (the start of a line) to the start of a free buffer and
    /// reads after them; false at the end of the stream. Only those bytes are copied, and only
    /// the new ones are hashed. False too for a buffer less than half full, which only the end
    /// of the stream leaves (see `fill`): moving a line on after every short read would copy
    /// it again and again.
    fn carry(&mut self) -> io::Result<bool> {
        if self.filled < BUF / 2 {
            return Ok(false);
        }
        let old = self.buf.clone();
        let tail = self.filled - self.pos;
        let mut next = self.free_buffer()?;
        let Some(buf) = Arc::get_mut(&mut next) else {
            return Err(io::Error::other("stored-bytes buffer still shared"));
        };
        if buf.len() < BUF.max(2 * tail) {
            buf.resize(BUF.max(2 * tail), 0);
        }
        buf[..tail].copy_from_slice(&old[self.pos..self.filled]);
        drop(old);
        self.buf = next;
        (self.pos, self.filled) = (0, tail);
        Ok(self.fill()? > 0)
    }

    /// Reads into the current buffer after its filled part until half of it is full or the
    /// stream ends, and hashes what came; returns how much. A network stream hands over a few
    /// KiB a read, and a batch holds lines of one buffer only: one read a buffer would make
    /// batches of a few dozen records.
    fn fill(&mut self) -> io::Result<usize> {
        let start = self.filled;
        while self.filled < BUF / 2 {
            if self.read_into_current()?.1 == 0 {
                break;
            }
        }
        let n = self.filled - start;
        if n > 0 {
            self.reads += 1;
            self.hash(start, n)?;
        }
        Ok(n)
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
        self.fill()?;
        Ok(())
    }

    /// Hashes `buf[start..start + n]`, on the thread (when it may have one) once the stream
    /// proves longer than one buffer.
    fn hash(&mut self, start: usize, n: usize) -> io::Result<()> {
        if self.reads > 1
            && self.hash_thread
            && let Hashing::Shared(shared) = &self.hashing
        {
            // Cloned so that, if no thread can be started, hashing simply stays inline.
            let so_far = lock(&shared.sha).clone();
            if let Some(thread) = spawn(so_far) {
                self.hashing = thread;
            }
        }
        match &mut self.hashing {
            Hashing::Shared(shared) => shared.hash(&self.buf, start..start + n)?,
            Hashing::Thread { to_hash, .. } => {
                if to_hash.send((self.buf.clone(), start..start + n)).is_err() {
                    return Err(io::Error::other("the hashing thread stopped"));
                }
            }
        }
        Ok(())
    }

    /// A buffer nobody else holds: the current one when nobody does, else a spare nobody holds
    /// any more, or a new one. Never a wait: a buffer may be held by a batch that comes back
    /// only once this thread goes on reading.
    fn free_buffer(&mut self) -> io::Result<Buffer> {
        let mut current = std::mem::replace(&mut self.buf, Arc::new(Vec::new()));
        if Arc::get_mut(&mut current).is_some() {
            return Ok(current);
        }
        self.spare.push(current);
        let returned = match &self.hashing {
            Hashing::Thread { hashed, .. } => Some(take_all(hashed, "the hashing thread stopped")),
            Hashing::Shared(shared) => lock(&shared.lane)
                .as_ref()
                .map(|lane| take_all(&lane.hashed, "the checking thread stopped")),
        };
        // A buffer left behind by a refill while it was queued for hashing comes back as a
        // second handle to a spare: only one is kept, or neither would ever be free.
        for buf in returned.transpose()?.into_iter().flatten() {
            if !self.spare.iter().any(|spare| Arc::ptr_eq(spare, &buf)) {
                self.spare.push(buf);
            }
        }
        match self
            .spare
            .iter_mut()
            .position(|b| Arc::get_mut(b).is_some())
        {
            Some(free) => Ok(self.spare.swap_remove(free)),
            None => Ok(Arc::new(vec![0; BUF])),
        }
    }
}

/// Every buffer `hashed` has given back so far.
fn take_all(hashed: &Receiver<Buffer>, stopped: &str) -> io::Result<Vec<Buffer>> {
    let mut back = Vec::new();
    loop {
        match hashed.try_recv() {
            Ok(buf) => back.push(buf),
            Err(TryRecvError::Empty) => return Ok(back),
            Err(TryRecvError::Disconnected) => return Err(io::Error::other(stopped.to_owned())),
        }
    }
}

/// A stream the CSV reader reads from, with the buffer its bytes are in when batches may keep
/// a handle to it instead of copying them.
pub(super) trait Source: BufRead {
    /// The buffer behind what `fill_buf` returned, and where that is in it.
    fn lent(&self) -> Option<(Buffer, Range<usize>)> {
        None
    }

    /// Reads more after what `fill_buf` returned, which moves to a new buffer when it ends
    /// inside a line; false when it cannot, or at the end of the stream.
    fn carry(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

impl<R: Read> Source for BufReader<R> {}

impl<R: Read> Source for StoredBytes<R> {
    fn lent(&self) -> Option<(Buffer, Range<usize>)> {
        Some((self.buf.clone(), self.pos..self.filled))
    }

    fn carry(&mut self) -> io::Result<bool> {
        StoredBytes::carry(self)
    }
}

/// Work for the checking thread: a batch to check, or a buffer's bytes to hash. One queue
/// keeps the buffers in the order they were read.
pub(super) enum Work<B> {
    Check(B),
    Hash(Buffer, std::ops::Range<usize>),
}

/// The stored bytes' SHA-256, updated by the reader, or by the checking thread while it holds
/// the lane: only the thread that joins the checking one takes the lane back, so no update
/// overtakes another.
#[derive(Default)]
pub(super) struct SharedHash {
    sha: Mutex<Sha256>,
    lane: Mutex<Option<Lane>>,
    /// Nanoseconds the reader spent hashing, for sharing out the columns.
    here_nanos: AtomicU64,
    /// Bytes the checking thread hashed.
    lent_bytes: AtomicU64,
}

/// Where the reader sends buffers to the checking thread, and gets them back.
pub(super) struct Lane {
    pub(super) to_hash: SyncSender<Work<Arc<super::batch::Batch>>>,
    pub(super) hashed: Receiver<Buffer>,
}

impl SharedHash {
    fn hash(&self, buf: &Buffer, range: std::ops::Range<usize>) -> io::Result<()> {
        if let Some(lane) = lock(&self.lane).as_ref() {
            self.lent_bytes
                .fetch_add(range.len() as u64, Ordering::Relaxed);
            return lane
                .to_hash
                .send(Work::Hash(buf.clone(), range))
                .map_err(|_| io::Error::other("the checking thread stopped"));
        }
        let started = Instant::now();
        lock(&self.sha).update(&buf[range]);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.here_nanos.fetch_add(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// Hashes a buffer the reader sent, on the checking thread.
    pub(super) fn hash_lent(&self, buf: &[u8]) {
        lock(&self.sha).update(buf);
    }

    /// From now on buffers go down `lane` until [`take_back`](Self::take_back).
    pub(super) fn lend(&self, lane: Lane) {
        *lock(&self.lane) = Some(lane);
    }

    /// Hashing returns to the reader; call before waiting for the checking thread to end,
    /// which needs every sender of its queue gone.
    pub(super) fn take_back(&self) {
        lock(&self.lane).take();
    }

    /// The reader's time hashing so far.
    pub(super) fn hashed_here(&self) -> Duration {
        Duration::from_nanos(self.here_nanos.load(Ordering::Relaxed))
    }

    #[cfg(test)]
    pub(super) fn lent_bytes(&self) -> u64 {
        self.lent_bytes.load(Ordering::Relaxed)
    }
}

/// A panic elsewhere already fails the validation (it is resumed when its thread is joined);
/// the hash state it left is not looked at again.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the hashing thread with the hash of what was read so far; None if no thread can be
/// started.
fn spawn(mut hasher: Sha256) -> Option<Hashing> {
    let (to_hash, rx) = sync_channel::<(Buffer, Range<usize>)>(DEPTH);
    let (back, hashed) = channel();
    let handle = std::thread::Builder::new()
        .name("lakegate-sha256".into())
        .spawn(move || {
            for (buf, range) in rx {
                hasher.update(&buf[range]);
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
