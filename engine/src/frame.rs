//! The frame stage: walks segment files in chain order and cuts them into
//! batches of well-formed blocks (many blocks each, bounded in transactions
//! and bytes), without copying in mmap mode. A malformed block ends its
//! file: it travels with the batch before it.

use crate::format::{BlockView, HEADER_LEN, Malformation, check_body, check_header};
use crate::input::{InputError, IoMode, io_error};
use memmap2::{Advice, Mmap, UncheckedAdvice};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// Where the frame stage reads from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    File(&'a Path),
    /// A whole segment file already in memory, and the name reports use.
    Bytes(&'a Path, &'a [u8]),
}

/// A whole file's bytes, shared by all its batches.
#[derive(Clone)]
pub enum Whole<'a> {
    Mapped(Arc<Mmap>),
    /// Held by the caller.
    Borrowed(&'a [u8]),
}

/// The bytes a batch's blocks live in.
pub enum Data<'a> {
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
    pub offset: u64,
    pub start: usize,
    pub len: usize,
}

/// Blocks framed together, all from one file.
pub struct Batch<'a> {
    pub file: Arc<Path>,
    /// The first batch of its file (every file sends at least one).
    pub first_of_file: bool,
    pub data: Data<'a>,
    pub blocks: Vec<Framed>,
    /// File bytes this batch accounts for: its blocks, and after a
    /// malformed block the rest of the file.
    pub bytes: u64,
    pub malformed: Option<(u64, Malformation)>,
    /// Page-aligned range of a mapping that no later batch needs.
    release: Option<(usize, usize)>,
}

impl Batch<'_> {
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

    /// Gives a mapped batch's pages back to the kernel once it is done with,
    /// so RSS stays flat on huge files.
    pub fn release(&self) {
        if let (Data::Whole(Whole::Mapped(map)), Some((from, to))) = (&self.data, self.release) {
            // SAFETY: a read-only file mapping: dropped pages are re-read
            // from the file if touched again (even by a stage still reading
            // the next batch), so no data changes under any slice.
            let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from) };
        }
    }
}

/// Batch limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub txs: usize,
    pub bytes: usize,
}

/// Frames `sources` in order, handing each batch to `emit`; stops at the
/// first I/O error or when `emit` returns false (the consumer hung up).
pub fn frame_all<'a>(
    sources: &[Source<'a>],
    io: IoMode,
    limits: Limits,
    mut emit: impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) {
    for source in sources {
        let ok = match *source {
            Source::Bytes(name, data) => frame_slice(Arc::from(name), Whole::Borrowed(data), limits, &mut emit),
            Source::File(path) => match frame_file(path, io, limits, &mut emit) {
                Ok(go_on) => go_on,
                Err(e) => {
                    emit(Err(e));
                    false
                }
            },
        };
        if !ok {
            return;
        }
    }
}

fn frame_file<'a>(
    path: &Path,
    io: IoMode,
    limits: Limits,
    emit: &mut impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) -> Result<bool, InputError> {
    let file = File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let name: Arc<Path> = Arc::from(path);
    if len == 0 {
        return Ok(frame_slice(name, Whole::Borrowed(&[]), limits, emit));
    }
    match io {
        IoMode::Mmap => {
            // SAFETY: read-only; the file must not shrink while mapped
            // (module docs of `verify`; `IoMode::Read` is the alternative).
            let map = unsafe { Mmap::map(&file) }.map_err(io_error(path))?;
            let _ = map.advise(Advice::Sequential);
            Ok(frame_slice(name, Whole::Mapped(Arc::new(map)), limits, emit))
        }
        IoMode::Read => frame_read(name, file, len, limits, emit),
    }
}

/// Frames a whole file held in memory (mapped or borrowed).
fn frame_slice<'a>(
    name: Arc<Path>,
    whole: Whole<'a>,
    limits: Limits,
    emit: &mut impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) -> bool {
    let len = whole.bytes().len();
    let mut pos = 0usize;
    let mut first = true;
    loop {
        let batch_start = pos;
        let mut blocks = Vec::new();
        let mut malformed = None;
        let mut txs = 0usize;
        let all = whole.bytes();
        while pos < len && txs < limits.txs && pos - batch_start < limits.bytes {
            match BlockView::parse(&all[pos..], pos as u64) {
                Ok((block, n)) => {
                    blocks.push(Framed { offset: pos as u64, start: pos, len: n });
                    txs += block.header.tx_count() as usize;
                    pos += n;
                }
                Err(reason) => {
                    malformed = Some((pos as u64, reason));
                    break;
                }
            }
        }
        const PAGE: usize = 4096;
        let (from, to) = (batch_start / PAGE * PAGE, pos / PAGE * PAGE);
        let done = malformed.is_some() || pos >= len;
        let batch = Batch {
            file: name.clone(),
            first_of_file: first,
            data: Data::Whole(whole.clone()),
            blocks,
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

/// Frames a file with plain reads, each batch into its own buffer.
fn frame_read<'a>(
    name: Arc<Path>,
    mut file: File,
    len: u64,
    limits: Limits,
    emit: &mut impl FnMut(Result<Batch<'a>, InputError>) -> bool,
) -> Result<bool, InputError> {
    let mut read_into = |buf: &mut Vec<u8>, n: usize| -> Result<(), InputError> {
        let start = buf.len();
        buf.resize(start + n, 0);
        file.read_exact(&mut buf[start..]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                InputError::Changed { path: name.to_path_buf(), expected: len }
            } else {
                io_error(&name)(e)
            }
        })
    };
    let mut pos = 0u64;
    let mut first = true;
    loop {
        let batch_start = pos;
        let mut buf = Vec::new();
        let mut blocks = Vec::new();
        let mut malformed = None;
        let mut txs = 0usize;
        while pos < len && txs < limits.txs && ((pos - batch_start) as usize) < limits.bytes {
            let left = len - pos;
            let start = buf.len();
            read_into(&mut buf, left.min(HEADER_LEN as u64) as usize)?;
            let (body_len, tx_count) = match check_header(&buf[start..], left) {
                Ok(h) => (h.body_len() as usize, h.tx_count()),
                Err(reason) => {
                    malformed = Some((pos, reason));
                    break;
                }
            };
            read_into(&mut buf, body_len)?;
            if let Err(reason) = check_body(&buf[start + HEADER_LEN..], tx_count, pos + HEADER_LEN as u64) {
                malformed = Some((pos, reason));
                break;
            }
            blocks.push(Framed { offset: pos, start, len: HEADER_LEN + body_len });
            txs += tx_count as usize;
            pos += (HEADER_LEN + body_len) as u64;
        }
        let done = malformed.is_some() || pos >= len;
        let batch = Batch {
            file: name.clone(),
            first_of_file: first,
            data: Data::Owned(buf),
            blocks,
            bytes: if malformed.is_some() { len - batch_start } else { pos - batch_start },
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
