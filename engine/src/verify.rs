//! The verifier: reads segment files in chain order, frames blocks into
//! batches that span many blocks, runs the hash and signature stages across
//! rayon workers, then the sequential chain rules, and hands each verdict to
//! a [`ReportSink`] in chain order.
//!
//! Memory stays bounded whatever the chain's size: a batch holds at most
//! `max_batch_txs` transactions and about `max_batch_bytes` of blocks (a
//! single block larger than that forms a batch of its own), and in mmap mode
//! the pages of each finished batch are released from the process.
//!
//! Mapped files must not shrink while they are verified: the kernel answers
//! a read past the new end with SIGBUS. `IoMode::Read` (`--no-mmap`) reads
//! with plain `read` calls instead, and a file that changes size under it is
//! reported as an I/O error naming the file.

use crate::chain::{BlockFacts, ChainState};
use crate::format::{BlockView, HEADER_LEN, Malformation, TxView, check_body, check_header};
use crate::hash::{self, Digest};
use crate::report::{BlockReport, MalformedReport, ReportSink, Summary};
use crate::sig::{self, BatchSizer, RuleSet, SigItem};
use memmap2::{Advice, Mmap, UncheckedAdvice};
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How segment files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// Memory-map each file (fast; the file must not shrink meanwhile).
    #[default]
    Mmap,
    /// Plain reads into a reused buffer (safe for files that may change).
    Read,
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Pin the chain id instead of taking the first block's.
    pub chain_id: Option<Digest>,
    /// When set, every block's proposer must be one of these keys.
    pub authorities: Option<HashSet<[u8; 32]>>,
    pub io: IoMode,
    /// Signature rules; chains in format v1 use zip215 (strict is a
    /// stricter audit, not the chain's rule).
    pub rules: RuleSet,
    /// Fix the signature batch size instead of learning it.
    pub batch_size: Option<usize>,
    pub max_batch_txs: usize,
    pub max_batch_bytes: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            chain_id: None,
            authorities: None,
            io: IoMode::default(),
            rules: RuleSet::Zip215,
            batch_size: None,
            max_batch_txs: 32 * 1024,
            max_batch_bytes: 32 << 20,
        }
    }
}

/// Errors that stop a run (as opposed to verdicts about the chain).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error("{}: directory holds no .vblk file", .0.display())]
    EmptyDirectory(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: file changed size while being read (was {expected} bytes)", path.display())]
    Changed { path: PathBuf, expected: u64 },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::NotFound {
            InputError::Missing(path.to_owned())
        } else {
            InputError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// Expands the paths given to a verifier into the chain's segment files, in
/// chain order (FORMAT.md "Which files, in which order"): files as given,
/// a directory's `*.vblk` files in byte order of name. Every file is opened
/// once here so that an unreadable one is reported before any work starts.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(io_error(path))?;
        if meta.is_dir() {
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(path).map_err(io_error(path))? {
                let entry = entry.map_err(io_error(path))?;
                let name = entry.file_name();
                if name.as_encoded_bytes().ends_with(b".vblk") && entry.path().is_file() {
                    entries.push(name);
                }
            }
            if entries.is_empty() {
                return Err(InputError::EmptyDirectory(path.clone()));
            }
            entries.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
            files.extend(entries.into_iter().map(|name| path.join(name)));
        } else {
            files.push(path.clone());
        }
    }
    for file in &files {
        File::open(file).map_err(io_error(file))?;
    }
    Ok(files)
}

/// A whole segment file's bytes, mapped or read, for tools that walk one
/// file (`vigil inspect`, tests).
pub enum Segment {
    Mapped(Mmap),
    Read(Vec<u8>),
}

impl Segment {
    pub fn open(path: &Path, io: IoMode) -> Result<Segment, InputError> {
        let mut file = File::open(path).map_err(io_error(path))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        if io == IoMode::Read || len == 0 {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error(path))?;
            return Ok(Segment::Read(bytes));
        }
        // SAFETY: read-only map; see the module comment on files that shrink.
        let map = unsafe { Mmap::map(&file) }.map_err(io_error(path))?;
        Ok(Segment::Mapped(map))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Segment::Mapped(m) => m,
            Segment::Read(v) => v,
        }
    }
}

/// A block framed in a batch: its offset in the file and its bytes' place
/// in the batch's data.
#[derive(Debug, Clone, Copy)]
struct Framed {
    offset: u64,
    start: usize,
    len: usize,
}

/// One transaction's place in a batch: block index, start and length within
/// that block's body. 12 bytes a transaction, in a buffer reused per batch.
#[derive(Debug, Clone, Copy)]
struct TxSpan {
    block: u32,
    start: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct TxHashes {
    id: Digest,
    leaf: Digest,
}

/// Verifies a chain file by file, carrying chain state across calls.
pub struct Verifier {
    opts: VerifyOptions,
    chain: ChainState,
    totals: Summary,
    started: Instant,
    // Reused per batch.
    framed: Vec<Framed>,
    spans: Vec<TxSpan>,
    hashed: Vec<TxHashes>,
    sizer: BatchSizer,
    read_buf: Vec<u8>,
}

impl Verifier {
    pub fn new(opts: VerifyOptions) -> Self {
        let chain = ChainState::new(opts.chain_id);
        Verifier {
            chain,
            totals: Summary::default(),
            started: Instant::now(),
            framed: Vec::new(),
            spans: Vec::new(),
            hashed: Vec::new(),
            sizer: opts.batch_size.map_or_else(BatchSizer::new, BatchSizer::fixed),
            read_buf: Vec::new(),
            opts,
        }
    }

    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// Totals so far (`seconds` since the verifier was created).
    pub fn summary(&self) -> Summary {
        Summary {
            seconds: self.started.elapsed().as_secs_f64(),
            ..self.totals.clone()
        }
    }

    /// Verifies `files` in order as one chain.
    pub fn verify_files(&mut self, files: &[PathBuf], sink: &mut dyn ReportSink) -> Result<Summary, InputError> {
        for file in files {
            self.verify_file(file, sink)?;
        }
        Ok(self.summary())
    }

    /// Verifies one segment file, continuing the chain.
    pub fn verify_file(&mut self, path: &Path, sink: &mut dyn ReportSink) -> Result<(), InputError> {
        let file = File::open(path).map_err(io_error(path))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        let name: Arc<Path> = Arc::from(path);
        self.totals.files += 1;
        if len == 0 {
            return Ok(());
        }
        match self.opts.io {
            IoMode::Mmap => self.verify_mapped(&name, &file, sink),
            IoMode::Read => self.verify_read(&name, file, len, sink),
        }
    }

    fn verify_mapped(&mut self, name: &Arc<Path>, file: &File, sink: &mut dyn ReportSink) -> Result<(), InputError> {
        // SAFETY: the map is read-only; the file must not be truncated while
        // mapped (documented above; `IoMode::Read` is the safe alternative).
        let map = unsafe { Mmap::map(file) }.map_err(io_error(name))?;
        let _ = map.advise(Advice::Sequential);
        self.verify_slice(
            name,
            &map,
            |from, to| {
                // Give finished pages back so RSS stays flat on huge files.
                // SAFETY: a read-only file mapping: dropped pages are re-read
                // from the file if touched again; no slice into them is used
                // after its batch.
                let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from) };
            },
            sink,
        );
        Ok(())
    }

    /// Verifies one segment file's bytes held in memory (a node's block
    /// buffer, a test's mutated copy), continuing the chain. `name` is what
    /// reports call the file.
    pub fn verify_bytes(&mut self, name: &Path, data: &[u8], sink: &mut dyn ReportSink) {
        self.totals.files += 1;
        self.verify_slice(&Arc::from(name), data, |_, _| {}, sink);
    }

    /// Frames `data` (one whole file) batch by batch; `release(from, to)` is
    /// told each page-aligned range that no later batch needs.
    fn verify_slice(
        &mut self,
        name: &Arc<Path>,
        data: &[u8],
        release: impl Fn(usize, usize),
        sink: &mut dyn ReportSink,
    ) {
        let mut pos = 0usize;
        while pos < data.len() {
            let batch_start = pos;
            let mut framed = std::mem::take(&mut self.framed);
            framed.clear();
            let mut malformed = None;
            let mut txs = 0usize;
            while pos < data.len() && txs < self.opts.max_batch_txs && pos - batch_start < self.opts.max_batch_bytes {
                match BlockView::parse(&data[pos..], pos as u64) {
                    Ok((block, n)) => {
                        framed.push(Framed {
                            offset: pos as u64,
                            start: pos,
                            len: n,
                        });
                        txs += block.header.tx_count() as usize;
                        pos += n;
                    }
                    Err(reason) => {
                        malformed = Some(reason);
                        break;
                    }
                }
            }
            self.process(name, data, &framed, pos - batch_start, sink);
            self.framed = framed;
            const PAGE: usize = 4096;
            let (from, to) = (batch_start / PAGE * PAGE, pos / PAGE * PAGE);
            if to > from {
                release(from, to);
            }
            if let Some(reason) = malformed {
                self.report_malformed(name, pos as u64, reason, (data.len() - pos) as u64, sink);
                break;
            }
        }
    }

    fn verify_read(
        &mut self,
        name: &Arc<Path>,
        mut file: File,
        len: u64,
        sink: &mut dyn ReportSink,
    ) -> Result<(), InputError> {
        let changed = || InputError::Changed {
            path: name.to_path_buf(),
            expected: len,
        };
        let mut read_into = |buf: &mut Vec<u8>, n: usize| -> Result<(), InputError> {
            let start = buf.len();
            buf.resize(start + n, 0);
            file.read_exact(&mut buf[start..]).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    changed()
                } else {
                    io_error(name)(e)
                }
            })
        };
        let mut pos = 0u64;
        while pos < len {
            let batch_start = pos;
            let mut buf = std::mem::take(&mut self.read_buf);
            let mut framed = std::mem::take(&mut self.framed);
            buf.clear();
            framed.clear();
            let mut malformed = None;
            let mut txs = 0usize;
            while pos < len
                && txs < self.opts.max_batch_txs
                && ((pos - batch_start) as usize) < self.opts.max_batch_bytes
            {
                let left = len - pos;
                let start = buf.len();
                read_into(&mut buf, left.min(HEADER_LEN as u64) as usize)?;
                let (body_len, tx_count) = match check_header(&buf[start..], left) {
                    Ok(h) => (h.body_len() as usize, h.tx_count()),
                    Err(reason) => {
                        malformed = Some(reason);
                        break;
                    }
                };
                read_into(&mut buf, body_len)?;
                if let Err(reason) = check_body(&buf[start + HEADER_LEN..], tx_count, pos + HEADER_LEN as u64) {
                    malformed = Some(reason);
                    break;
                }
                framed.push(Framed {
                    offset: pos,
                    start,
                    len: HEADER_LEN + body_len,
                });
                txs += tx_count as usize;
                pos += (HEADER_LEN + body_len) as u64;
            }
            self.process(name, &buf, &framed, (pos - batch_start) as usize, sink);
            self.read_buf = buf;
            self.framed = framed;
            if let Some(reason) = malformed {
                self.report_malformed(name, pos, reason, len - pos, sink);
                break;
            }
        }
        Ok(())
    }

    fn report_malformed(
        &mut self,
        name: &Arc<Path>,
        offset: u64,
        reason: Malformation,
        rest: u64,
        sink: &mut dyn ReportSink,
    ) {
        self.totals.malformed += 1;
        // The rest of the file is not read, but it was part of the input.
        self.totals.bytes += rest;
        sink.malformed(&MalformedReport {
            file: name.clone(),
            offset,
            reason,
        });
        sink.progress(&self.summary());
    }

    /// Runs the parallel stages over a batch of framed blocks, then the
    /// chain rules in order, and reports each block.
    fn process(&mut self, name: &Arc<Path>, data: &[u8], framed: &[Framed], bytes: usize, sink: &mut dyn ReportSink) {
        let views: Vec<BlockView<'_>> = framed
            .iter()
            .map(|f| BlockView {
                header: bytemuck::from_bytes(&data[f.start..f.start + HEADER_LEN]),
                body: &data[f.start + HEADER_LEN..f.start + f.len],
            })
            .collect();

        // Flatten the batch's transactions so work spreads evenly over cores
        // whatever the block sizes.
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        let mut first_tx = Vec::with_capacity(views.len() + 1);
        for (b, view) in views.iter().enumerate() {
            first_tx.push(spans.len());
            let mut txs = view.txs();
            loop {
                let start = txs.position();
                let Some(tx) = txs.next() else { break };
                spans.push(TxSpan {
                    block: b as u32,
                    start: start as u32,
                    len: tx.bytes.len() as u32,
                });
            }
        }
        first_tx.push(spans.len());

        let tx_of = |span: &TxSpan| TxView {
            bytes: &views[span.block as usize].body[span.start as usize..(span.start + span.len) as usize],
        };

        // Hash stage: every transaction's tx_id and leaf, then each block's
        // hash and Merkle root.
        let mut hashed = std::mem::take(&mut self.hashed);
        spans
            .par_iter()
            .with_min_len(64)
            .map(|span| {
                let tx = tx_of(span);
                let id = hash::tx_id(&views[span.block as usize].header.chain_id, tx.signed_part());
                TxHashes {
                    id,
                    leaf: hash::leaf(&id, tx.signature()),
                }
            })
            .collect_into_vec(&mut hashed);
        let digests: Vec<(Digest, Digest)> = views
            .par_iter()
            .enumerate()
            .map(|(b, view)| {
                let mut leaves: Vec<Digest> = hashed[first_tx[b]..first_tx[b + 1]].iter().map(|h| h.leaf).collect();
                (hash::block_hash(view.header), hash::merkle_root_in_place(&mut leaves))
            })
            .collect();

        // Signature stage: the transactions' and blocks' signatures of the
        // whole batch together, so batches span many blocks.
        let items: Vec<SigItem<'_>> = spans
            .iter()
            .zip(&hashed)
            .map(|(span, h)| {
                let tx = tx_of(span);
                SigItem {
                    public_key: &tx.header().sender,
                    message: &h.id,
                    signature: tx.signature(),
                }
            })
            .chain(views.iter().zip(&digests).map(|(view, (block_hash, _))| SigItem {
                public_key: &view.header.proposer,
                message: block_hash,
                signature: &view.header.proposer_sig,
            }))
            .collect();
        let mut verdicts = vec![false; items.len()];
        sig::verify_many_tuned(self.opts.rules, &items, &mut verdicts, &mut self.sizer);
        let (tx_ok, block_ok) = verdicts.split_at(spans.len());

        let authorities = self.opts.authorities.as_ref();
        let facts: Vec<BlockFacts> = views
            .iter()
            .enumerate()
            .map(|(b, view)| BlockFacts {
                hash: digests[b].0,
                computed_root: digests[b].1,
                block_signature: block_signature_verdict(view, block_ok[b], authorities),
                bad_tx_signatures: (first_tx[b]..first_tx[b + 1])
                    .filter(|&i| !tx_ok[i])
                    .map(|i| (i - first_tx[b]) as u32)
                    .collect(),
            })
            .collect();

        for ((view, facts), f) in views.iter().zip(&facts).zip(framed) {
            let mut failures = Vec::new();
            self.chain.apply(view, facts, &mut failures);
            let report = BlockReport {
                file: name.clone(),
                offset: f.offset,
                position: self.totals.blocks,
                height: view.header.height(),
                hash: facts.hash,
                tx_count: view.header.tx_count(),
                failures,
            };
            self.totals.blocks += 1;
            self.totals.transactions += u64::from(view.header.tx_count());
            self.totals.signatures += u64::from(view.header.tx_count()) + 1;
            if !report.valid() {
                self.totals.invalid_blocks += 1;
            }
            sink.block(&report);
        }
        self.totals.bytes += bytes as u64;
        self.spans = spans;
        self.hashed = hashed;
        sink.progress(&self.summary());
    }
}

fn block_signature_verdict(
    view: &BlockView<'_>,
    signature_ok: bool,
    authorities: Option<&HashSet<[u8; 32]>>,
) -> Result<(), String> {
    let h = view.header;
    let mut problems = Vec::new();
    if !signature_ok {
        problems.push(format!(
            "proposer_sig does not verify for proposer {}",
            hex::encode(h.proposer)
        ));
    }
    if authorities.is_some_and(|set| !set.contains(&h.proposer)) {
        problems.push(format!("proposer {} is not an authority", hex::encode(h.proposer)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
