//! The frame stage: walks segment files in chain order and cuts them into
//! batches of well-formed blocks (many blocks each, bounded in transactions
//! and bytes), without copying in mmap mode. A malformed block ends its
//! file: it travels with the batch before it.

use crate::format::{BlockView, HEADER_LEN, Malformation, TX_OVERHEAD, TxView, check_header, walk_body};
use crate::input::{InputError, IoMode, MAX_STREAM_BLOCK, Mapped, io_error, open_stream, read_up_to};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// Where the frame stage reads from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A whole regular file (mapped or read, per [`IoMode`]).
    File(&'a Path),
    /// Bytes `start..end` of a file, cut at block boundaries (or `end` at
    /// the end of the file): framed exactly as they are in the whole file.
    Part(&'a Path, u64, u64),
    /// A whole segment file already in memory, and the name reports use.
    Bytes(&'a Path, &'a [u8]),
    /// A stream (`-` for standard input, a pipe, a FIFO, a device): read
    /// once with plain reads, its length unknown (`crate::input`).
    Stream(&'a Path),
}

/// A whole file's bytes, shared by all its batches.
#[derive(Clone)]
pub enum Whole<'a> {
    /// A memory map of the file.
    Mapped(Arc<Mapped>),
    /// Held by the caller.
    Borrowed(&'a [u8]),
}

/// The bytes a batch's blocks live in.
pub enum Data<'a> {
    /// The whole file (mmap mode, or bytes given): blocks are not copied.
    Whole(Whole<'a>),
    /// Just this batch's blocks, read from the file.
    Owned(Vec<u8>),
}

impl Whole<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Whole::Mapped(m) => m,
            Whole::Borrowed(b) => b,
        }
    }
}

impl Data<'_> {
    /// The bytes [`Framed::start`] indexes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Data::Whole(w) => w.bytes(),
            Data::Owned(v) => v,
        }
    }
}

/// A well-formed block: its offset in the file and its bytes' place in the
/// batch's data.
#[derive(Debug, Clone, Copy)]
pub struct Framed {
    /// Byte offset of the block in its file.
    pub offset: u64,
    /// Where the block starts in [`Batch::data`].
    pub start: usize,
    /// The block's length in bytes, header and body.
    pub len: usize,
}

/// Blocks framed together, all from one file.
pub struct Batch<'a> {
    /// The file the blocks come from, as reports name it.
    pub file: Arc<Path>,
    /// The first batch of its file (every file sends at least one).
    pub first_of_file: bool,
    /// Byte offset in the file where the batch starts (its first block, or
    /// the malformed block that ends the file).
    pub start: u64,
    /// The bytes the blocks live in.
    pub data: Data<'a>,
    /// The batch's well-formed blocks, in file order.
    pub blocks: Vec<Framed>,
    /// Where each transaction starts in its block's body, all the batch's
    /// transactions in order, found while checking the bodies.
    tx_starts: Vec<u32>,
    /// Index in `tx_starts` of each block's first transaction, and one more
    /// entry at the end.
    pub first_tx: Vec<usize>,
    /// File bytes this batch accounts for: its blocks, and after a
    /// malformed block the rest of the file.
    pub bytes: u64,
    /// The malformed block after this batch's blocks, if one ends the file
    /// here: its byte offset in the file and why.
    pub malformed: Option<(u64, Malformation)>,
    /// Page-aligned range of a mapping that no later batch needs.
    release: Option<(usize, usize)>,
}

impl Batch<'_> {
    /// The batch's blocks, viewed in place, in order.
    pub fn views(&self) -> Vec<BlockView<'_>> {
        let data = self.data.bytes();
        self.blocks
            .iter()
            .map(|f| BlockView {
                header: bytemuck::from_bytes(&data[f.start..f.start + HEADER_LEN]),
                body: &data[f.start + HEADER_LEN..f.start + f.len],
            })
            .collect()
    }

    /// Every transaction of the batch, in order, found from the starts
    /// recorded while framing (no second walk over the bodies).
    pub fn txs<'s>(&'s self, views: &[BlockView<'s>]) -> Vec<TxView<'s>> {
        let mut out = Vec::with_capacity(self.tx_starts.len());
        for (b, view) in views.iter().enumerate() {
            let starts = &self.tx_starts[self.first_tx[b]..self.first_tx[b + 1]];
            for (i, &start) in starts.iter().enumerate() {
                let end = starts.get(i + 1).map_or(view.body.len(), |&e| e as usize);
                out.push(TxView { bytes: &view.body[start as usize..end] });
            }
        }
        out
    }

    /// Gives a mapped batch's pages back to the kernel once it is done with,
    /// so RSS stays flat on huge files.
    pub fn release(&self) {
        if let (Data::Whole(Whole::Mapped(map)), Some((from, to))) = (&self.data, self.release) {
            // Dropped pages are re-read if a stage still reading the next
            // batch touches them.
            map.release(from, to - from);
        }
    }
}

/// Batch limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A batch takes no more blocks once it holds this many transactions
    /// (so its last block may take it over; the first batches of a run
    /// start smaller and ramp up to this).
    pub txs: usize,
    /// A batch takes no more blocks once they span this many file bytes.
    pub bytes: usize,
}

const PAGE: usize = 4096;

/// Transactions in the first batch of a run.
const FIRST_BATCH_TXS: usize = 2048;

/// Batch sizes start small and double up to the limits, so that the stages
/// overlap from the start: a short chain is not one batch that each stage
/// waits for in turn.
struct Ramp<'p> {
    limits: Limits,
    txs: usize,
    /// Where bodies are walked.
    pool: Option<&'p rayon::ThreadPool>,
}

impl<'p> Ramp<'p> {
    fn new(limits: Limits, pool: Option<&'p rayon::ThreadPool>) -> Self {
        Ramp { limits, txs: limits.txs.min(FIRST_BATCH_TXS), pool }
    }

    /// The limits for the next batch.
    fn next(&mut self) -> Limits {
        let now = Limits { txs: self.txs, bytes: self.limits.bytes };
        self.txs = (self.txs * 2).min(self.limits.txs);
        now
    }
}

/// Frames `sources` in order, handing each batch to `emit`; stops at the
/// first I/O error or when `emit` returns false (the consumer hung up).
/// Block bodies are walked on `pool`'s threads (rayon's global pool if
/// `None`).
pub fn frame_all<'a>(
    sources: &[Source<'a>],
    io: IoMode,
    limits: Limits,
    pool: Option<&rayon::ThreadPool>,
    mut emit: impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) {
    let limits = &mut Ramp::new(limits, pool);
    for source in sources {
        let ok = match *source {
            Source::Bytes(name, data) => {
                frame_slice(Arc::from(name), Whole::Borrowed(data), 0, data.len(), limits, &mut emit)
            }
            Source::File(path) => match frame_file(path, None, io, limits, &mut emit) {
                Ok(go_on) => go_on,
                Err(e) => {
                    emit(Err(e));
                    false
                }
            },
            Source::Part(path, start, end) => match frame_file(path, Some((start, end)), io, limits, &mut emit) {
                Ok(go_on) => go_on,
                Err(e) => {
                    emit(Err(e));
                    false
                }
            },
            Source::Stream(path) => {
                match open_stream(path).and_then(|r| frame_read(Arc::from(path), r, 0, None, limits, &mut emit)) {
                    Ok(go_on) => go_on,
                    Err(e) => {
                        emit(Err(e));
                        false
                    }
                }
            }
        };
        if !ok {
            return;
        }
    }
}

/// Frames a file, or its bytes `part.0..part.1`.
fn frame_file<'a>(
    path: &Path,
    part: Option<(u64, u64)>,
    io: IoMode,
    limits: &mut Ramp<'_>,
    emit: &mut impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) -> Result<bool, InputError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let name: Arc<Path> = Arc::from(path);
    let (start, end) = part.unwrap_or((0, len));
    if end > len || start > end {
        return Err(InputError::Changed { path: path.to_path_buf(), expected: end });
    }
    if len == 0 {
        return Ok(frame_slice(name, Whole::Borrowed(&[]), 0, 0, limits, emit));
    }
    match io {
        IoMode::Mmap => {
            // A file that shrinks while mapped is reported by name
            // (`input::sigbus`); `IoMode::Read` is the alternative.
            let map = Mapped::map(&file, path).map_err(io_error(path))?;
            map.advise_sequential();
            Ok(frame_slice(name, Whole::Mapped(Arc::new(map)), start as usize, end as usize, limits, emit))
        }
        IoMode::Read => {
            io::Seek::seek(&mut file, io::SeekFrom::Start(start)).map_err(io_error(path))?;
            frame_read(name, Box::new(file), start, Some(end), limits, emit)
        }
    }
}

/// Frames bytes `start..len` of a file held in memory (mapped or borrowed).
fn frame_slice<'a>(
    name: Arc<Path>,
    whole: Whole<'a>,
    start: usize,
    len: usize,
    limits: &mut Ramp<'_>,
    emit: &mut impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) -> bool {
    let mut pos = start;
    let mut first = true;
    loop {
        let batch_start = pos;
        let mut candidates = Vec::new();
        let mut malformed = None;
        let all = whole.bytes();
        let pool = limits.pool;
        let limits = limits.next();
        if let Whole::Mapped(map) = &whole {
            // Ask for the next window ahead of the walk (Sequential, set at
            // mapping time, also drops pages behind it sooner).
            map.prefetch(pos / PAGE * PAGE, limits.bytes.min(len - pos / PAGE * PAGE));
        }
        let mut txs = 0;
        while pos < len && txs < limits.txs && pos - batch_start < limits.bytes {
            match check_header(&all[pos..], (len - pos) as u64) {
                Ok(header) => {
                    let n = HEADER_LEN + header.body_len() as usize;
                    candidates.push((Framed { offset: pos as u64, start: pos, len: n }, header.tx_count()));
                    txs += header.tx_count() as usize;
                    pos += n;
                }
                Err(reason) => {
                    malformed = Some((pos as u64, reason));
                    break;
                }
            }
        }
        let walked = walk_bodies(all, candidates, pool);
        if let Some((offset, reason)) = walked.malformed {
            pos = offset as usize;
            malformed = Some((offset, reason));
        }
        let (from, to) = (batch_start / PAGE * PAGE, pos / PAGE * PAGE);
        let done = malformed.is_some() || pos >= len;
        let batch = Batch {
            file: name.clone(),
            first_of_file: first,
            start: batch_start as u64,
            data: Data::Whole(whole.clone()),
            blocks: walked.blocks,
            tx_starts: walked.tx_starts,
            first_tx: walked.first_tx,
            bytes: if malformed.is_some() { (len - batch_start) as u64 } else { (pos - batch_start) as u64 },
            malformed,
            release: (to > from).then_some((from, to)),
        };
        first = false;
        if !emit(Ok(batch)) {
            return false;
        }
        if done {
            return true;
        }
    }
}

/// Frames bytes `start..end` of a file (positioned at `start`), or a whole
/// stream (`end` unknown), with plain reads, each batch into its own
/// buffer. A file that ends early changed under the reader (an error); a
/// stream that ends inside a block ends in a malformed block, exactly as
/// the same bytes in a file would, and is not read past a malformed block.
fn frame_read<'a>(
    name: Arc<Path>,
    mut reader: Box<dyn Read + Send>,
    start: u64,
    end: Option<u64>,
    limits: &mut Ramp<'_>,
    emit: &mut impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) -> Result<bool, InputError> {
    // Reads `n` bytes onto `buf`; how many came before the input ended.
    let mut read_into = |buf: &mut Vec<u8>, n: u64| -> Result<u64, InputError> {
        let got = read_up_to(&mut reader, buf, n).map_err(io_error(&name))?;
        match end {
            Some(len) if got < n => Err(InputError::Changed { path: name.to_path_buf(), expected: len }),
            _ => Ok(got),
        }
    };
    let mut pos = start;
    let mut first = true;
    let mut at_end = end == Some(start);
    loop {
        let batch_start = pos;
        let mut buf = Vec::new();
        let mut blocks = Vec::new();
        let (mut tx_starts, mut first_tx) = (Vec::new(), vec![0]);
        let mut malformed = None;
        let limits = limits.next();
        while !at_end && tx_starts.len() < limits.txs && ((pos - batch_start) as usize) < limits.bytes {
            // What is left: known for a file; for a stream, learnt by reading.
            let left = end.map_or(u64::MAX, |len| len - pos);
            let start = buf.len();
            let got = read_into(&mut buf, left.min(HEADER_LEN as u64))?;
            if got == 0 {
                at_end = true;
                break;
            }
            // A short header is all there is; a whole one is checked against
            // what is left (for a stream, the body's fit is learnt below).
            let known_left = if got < HEADER_LEN as u64 { got } else { left };
            let (body_len, tx_count) = match check_header(&buf[start..], known_left) {
                Ok(h) => (h.body_len() as u64, h.tx_count()),
                Err(reason) => {
                    malformed = Some((pos, reason));
                    break;
                }
            };
            // A stream's block is read up to the bound: if the stream ends
            // first, its verdict is a file's (the body does not fit);
            // otherwise it is refused, never held whole.
            let want = match end {
                None => body_len.min(MAX_STREAM_BLOCK - HEADER_LEN as u64),
                Some(_) => body_len,
            };
            let got = read_into(&mut buf, want)?;
            if got == want && want < body_len {
                return Err(InputError::StreamBlockTooLarge {
                    path: name.to_path_buf(),
                    offset: pos,
                    size: HEADER_LEN as u64 + body_len,
                });
            }
            if got < body_len {
                // Only a stream ends early: the header with what came of
                // the body is what a file of these bytes would hold.
                malformed = Some((pos, Malformation::BodyTruncated { body_len: body_len as u32, left: got }));
                break;
            }
            // Walked here, one block after another, while its bytes are in
            // cache from the read (the read, not the walk, bounds this mode).
            let walked = tx_starts.len();
            let body = &buf[start + HEADER_LEN..];
            if let Err(reason) = walk_body(body, tx_count, pos + HEADER_LEN as u64, |at| tx_starts.push(at as u32)) {
                tx_starts.truncate(walked);
                malformed = Some((pos, reason));
                break;
            }
            first_tx.push(tx_starts.len());
            blocks.push(Framed { offset: pos, start, len: HEADER_LEN + body_len as usize });
            pos += HEADER_LEN as u64 + body_len;
            at_end = end == Some(pos);
        }
        let done = malformed.is_some() || at_end;
        let bytes = match (&malformed, end) {
            // A malformed block ends its file: the batch accounts for the
            // rest. A stream's batch accounts for what was read of it.
            (Some(_), Some(len)) => len - batch_start,
            _ => buf.len() as u64,
        };
        let batch = Batch {
            file: name.clone(),
            first_of_file: first,
            start: batch_start,
            data: Data::Owned(buf),
            blocks,
            tx_starts,
            first_tx,
            bytes,
            malformed,
            release: None,
        };
        first = false;
        if !emit(Ok(batch)) {
            return Ok(false);
        }
        if done {
            return Ok(true);
        }
    }
}

/// The blocks of a batch whose bodies are well formed.
struct Walked {
    blocks: Vec<Framed>,
    tx_starts: Vec<u32>,
    first_tx: Vec<usize>,
    /// The first block whose body is malformed (its offset), if any: it and
    /// every block after it are dropped.
    malformed: Option<(u64, Malformation)>,
}

/// Walks the bodies of blocks whose headers checked out (each with its
/// header's transaction count; bytes in `data`), on all cores of `pool` (or
/// rayon's global pool): a body walk chases each transaction's length to
/// the next, so one thread is bound by memory latency, while blocks are
/// independent. Keeps the blocks before the first malformed body, exactly
/// as walking them one after another would.
fn walk_bodies(data: &[u8], candidates: Vec<(Framed, u32)>, pool: Option<&rayon::ThreadPool>) -> Walked {
    let walk = || -> Vec<Result<Vec<u32>, Malformation>> {
        candidates
            .par_iter()
            .map(|&(f, tx_count)| {
                let body = &data[f.start + HEADER_LEN..f.start + f.len];
                // A walk reports at most one start past the transactions that
                // fit, so a header's claim cannot make it allocate more.
                let mut starts = Vec::with_capacity((tx_count as usize).min(body.len() / TX_OVERHEAD + 1));
                walk_body(body, tx_count, f.offset + HEADER_LEN as u64, |at| starts.push(at as u32)).map(|()| starts)
            })
            .collect()
    };
    let walks = crate::in_pool(pool, walk);
    let mut out = Walked {
        blocks: Vec::with_capacity(candidates.len()),
        tx_starts: Vec::with_capacity(walks.iter().map(|w| w.as_ref().map_or(0, Vec::len)).sum()),
        first_tx: vec![0],
        malformed: None,
    };
    for ((framed, _), walk) in candidates.into_iter().zip(walks) {
        match walk {
            Ok(starts) => {
                out.tx_starts.extend_from_slice(&starts);
                out.first_tx.push(out.tx_starts.len());
                out.blocks.push(framed);
            }
            Err(reason) => {
                out.malformed = Some((framed.offset, reason));
                break;
            }
        }
    }
    out
}
