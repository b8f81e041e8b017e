//! Verifying one range of a walked chain into its [`ShardSummary`].

use super::files::{FileChange, first_change, hash_span};
use super::range::{Range, RangeError};
use super::summary::{
    BlockEntry, Edge, FailureEntry, Input, MalformedEntry, SUMMARY_FORMAT, SUMMARY_VERSION, SenderEntry, ShardSummary,
    SpanDigest, Totals,
};
use super::walk::Walk;
use crate::frame::Source;
use crate::input::InputError;
use crate::report::{BlockReport, MalformedReport, ReportSink, SenderFirst, Summary};
use crate::verify::{Verifier, VerifyOptions};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a range could not be verified into a summary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// Reading the chain failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A range or shard outside the chain.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The chain's bytes are not where the walk or index said, or changed
    /// during the run.
    #[error(transparent)]
    Mismatch(#[from] MismatchError),
}

/// How the chain's bytes differ from what the walk or index said
/// ([`ShardError::Mismatch`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MismatchError {
    /// A range that runs to the chain's end whose blocks stop short of a
    /// file's end.
    #[error(
        "the blocks read end at byte {end} of {file}, not at its end ({size} bytes): the index does not describe \
         this chain"
    )]
    ShortOfTheEnd {
        /// The file.
        file: PathBuf,
        /// Where its last block read ends.
        end: u64,
        /// Its size.
        size: u64,
    },
    /// A range that runs to the chain's end and reads nothing of a file.
    #[error(
        "no block of {file} was read, though the range runs to the chain's end: the index does not describe this chain"
    )]
    Unread {
        /// The file.
        file: PathBuf,
    },
    /// A whole file whose BLAKE3 is not the one its index recorded.
    #[error("{file}: its bytes are not those the index was made from; run `vigil index` again")]
    Digest {
        /// The file.
        file: PathBuf,
    },
    /// A block the verifier framed where the walk or index has none.
    #[error("{0}: the index (or the walk, if the chain changed since) does not describe the chain's bytes")]
    Misplaced(Misplaced),
    /// Another number of blocks or malformed blocks than the walk or index
    /// has in the range.
    #[error(
        "{blocks} blocks and {malformed} malformed were read where the walk or index has {expected_blocks} and \
         {expected_malformed}"
    )]
    Counts {
        /// Blocks read.
        blocks: u64,
        /// Malformed blocks read.
        malformed: u64,
        /// Blocks the walk or index has in the range.
        expected_blocks: u64,
        /// Malformed blocks the walk or index has in the range.
        expected_malformed: u64,
    },
    /// A file that changed while the range was verified.
    #[error("{0} during the run: verify again")]
    Changed(FileChange),
}

/// A block framed where the walk or index put none ([`MismatchError::Misplaced`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Misplaced {
    /// A well-formed block.
    #[error("a block at byte {offset} of {file} (position {position}) is not where the walk or index put it")]
    Block {
        /// Its file.
        file: PathBuf,
        /// Its offset in the file.
        offset: u64,
        /// Its position.
        position: u64,
    },
    /// A malformed block.
    #[error("a malformed block at byte {offset} of {file} is not where the walk or index put it")]
    Malformed {
        /// Its file.
        file: PathBuf,
        /// Its offset in the file.
        offset: u64,
    },
}

/// The byte spans (file, start, end) that frame `range` of `walk` exactly
/// as a whole run does, in chain order, and the files it counts.
fn plan(walk: &Walk, range: Range) -> (Vec<(u32, u64, u64)>, u64) {
    // Per file: the byte span of its blocks in the range, and whether its
    // in-between item (malformed tail, emptiness) falls in the range.
    let mut span: Vec<Option<(u64, u64)>> = vec![None; walk.files.len()];
    let end = range.end.map_or(walk.blocks.len(), |e| (e as usize).min(walk.blocks.len()));
    for b in walk.blocks.get(range.start as usize..end).unwrap_or(&[]) {
        let s = span[b.file as usize].get_or_insert((b.offset, b.offset));
        s.1 = b.offset + b.len;
    }
    for t in walk.between.iter().filter(|t| range.holds(t.anchor)) {
        let f = t.file as usize;
        let start = span[f].map_or(t.offset, |s| s.0);
        span[f] = Some((start, walk.sizes[f]));
    }
    let spans =
        span.into_iter().enumerate().filter_map(|(f, s)| s.map(|(start, end)| (f as u32, start, end))).collect();
    let files = walk.file_anchor.iter().filter(|&&a| range.holds(a)).count() as u64;
    (spans, files)
}

/// For a range that runs to the chain's end: how its spans fail to reach
/// the end of every file from its first onwards (so what a walk or index
/// left out after its last block), or `None`.
fn short_of_the_end(walk: &Walk, spans: &[(u32, u64, u64)]) -> Option<MismatchError> {
    let &(first, ..) = spans.first()?;
    let mut expect = spans.iter().map(|s| (s.0, (s.1, s.2)));
    for f in first..walk.files.len() as u32 {
        let size = walk.sizes[f as usize];
        let name = walk.files[f as usize].clone();
        match expect.next() {
            Some((file, (start, end))) if file == f && end == size && (f == first || start == 0) => {}
            Some((file, (_, end))) if file == f => {
                return Some(MismatchError::ShortOfTheEnd { file: name, end, size });
            }
            _ => return Some(MismatchError::Unread { file: name }),
        }
    }
    None
}

/// Collects what the summary keeps, and checks every block and malformed
/// block the verifier framed against where the walk (or index) put it.
struct Collector<'w> {
    walk: &'w Walk,
    file_index: HashMap<Arc<Path>, u32>,
    wanted: HashSet<u64>,
    first_position: u64,
    firsts: Vec<SenderFirst>,
    blocks: Vec<BlockEntry>,
    malformed: Vec<MalformedEntry>,
    first: Option<Edge>,
    last: Option<Edge>,
    /// Blocks framed, and the first that is not where the walk says.
    seen: u64,
    misplaced: Option<Misplaced>,
    /// Every report, for a range run that prints them.
    forward: Option<Box<dyn ReportSink>>,
}

impl Collector<'_> {
    fn file(&mut self, path: &Arc<Path>) -> u32 {
        if let Some(&i) = self.file_index.get(path) {
            return i;
        }
        let i = self.walk.files.iter().position(|f| f.as_path() == &**path).unwrap_or(0) as u32;
        self.file_index.insert(path.clone(), i);
        i
    }

    fn misplaced(&mut self, problem: Misplaced) {
        self.misplaced.get_or_insert(problem);
    }
}

fn edge(r: &BlockReport) -> Edge {
    Edge {
        position: r.position,
        height: r.height,
        hash: hex::encode(r.hash),
        prev_hash: hex::encode(r.prev_hash),
        timestamp_ms: r.timestamp_ms,
    }
}

impl ReportSink for Collector<'_> {
    fn block(&mut self, r: &BlockReport) {
        if self.first.is_none() {
            self.first = Some(edge(r));
        }
        self.last = Some(edge(r));
        let file = self.file(&r.file);
        self.seen += 1;
        let walked = usize::try_from(r.position).ok().and_then(|p| self.walk.blocks.get(p));
        if walked.is_none_or(|w| (w.file, w.offset, w.txs) != (file, r.offset, r.tx_count)) {
            self.misplaced(Misplaced::Block { file: r.file.to_path_buf(), offset: r.offset, position: r.position });
        }
        if !r.valid() || r.position == self.first_position || self.wanted.contains(&r.position) {
            self.blocks.push(BlockEntry {
                file,
                offset: r.offset,
                position: r.position,
                height: r.height,
                hash: hex::encode(r.hash),
                tx_count: r.tx_count,
                failures: r
                    .failures
                    .iter()
                    .map(|f| FailureEntry { rule: f.rule.name().into(), tx: f.tx, detail: f.detail.clone() })
                    .collect(),
            });
        }
        if let Some(s) = self.forward.as_mut() {
            s.block(r);
        }
    }

    fn malformed(&mut self, m: &MalformedReport) {
        let file = self.file(&m.file);
        if !self.walk.between.iter().any(|t| (t.file, t.offset) == (file, m.offset)) {
            self.misplaced(Misplaced::Malformed { file: m.file.to_path_buf(), offset: m.offset });
        }
        self.malformed.push(MalformedEntry { file, offset: m.offset, detail: m.reason.to_string() });
        if let Some(s) = self.forward.as_mut() {
            s.malformed(m);
        }
    }

    fn first_nonces(&mut self, firsts: &[SenderFirst]) {
        self.wanted.extend(firsts.iter().map(|f| f.position));
        self.firsts.extend_from_slice(firsts);
    }

    fn progress(&mut self, totals: &Summary) {
        if let Some(s) = self.forward.as_mut() {
            s.progress(totals);
        }
    }
}

/// Verifies `range` of the walked chain with `opts` (its chain id, first
/// position and mid-chain start are set here); every report also goes to
/// `forward` when given. Returns the summary.
///
/// Before verifying, the range's bytes are hashed (BLAKE3, all cores) for
/// the summary's `spans`: a pass of its own, since the verifier's stages
/// hash transactions and headers, not the file's bytes in order. It reads
/// the range once from disk and leaves it in the page cache for the
/// verifier; on memory-speed BLAKE3 it costs a few percent of verifying
/// (docs/SHARDS.md has the measurement). A range that covers a whole file
/// whose BLAKE3 the index recorded checks it. While verifying, every block
/// must be where the walk or index put it; a range that runs to the chain's
/// end must read every file to its end; and no file may change size or
/// modification time during the run.
pub fn run_range(
    walk: &Walk,
    range: Range,
    shard: Option<(u32, u32)>,
    opts: VerifyOptions,
    forward: Option<Box<dyn ReportSink>>,
) -> Result<ShardSummary, ShardError> {
    if range.start > walk.blocks() {
        return Err(RangeError::PastTheEnd { start: range.start, blocks: walk.blocks() }.into());
    }
    let range = range.normalized(walk);
    let input = Input::new(walk, &opts);
    let (spans, files) = plan(walk, range);
    if range.end.is_none()
        && let Some(problem) = short_of_the_end(walk, &spans)
    {
        return Err(problem.into());
    }
    let pool = opts.threads.and_then(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().ok());
    let mut digests = Vec::with_capacity(spans.len());
    for &(f, start, end) in &spans {
        let path = &walk.files[f as usize];
        let digest = crate::in_pool(pool.as_ref(), || hash_span(path, start, end, opts.io))?;
        if let Some(recorded) = walk.digests.as_ref().map(|d| d[f as usize])
            && (start, end) == (0, walk.sizes[f as usize])
            && recorded != digest
        {
            return Err(MismatchError::Digest { file: path.clone() }.into());
        }
        digests.push(SpanDigest { file: f, start, end, blake3: hex::encode(digest) });
    }
    drop(pool);
    let sources: Vec<Source<'_>> =
        spans.iter().map(|&(f, start, end)| Source::Part(&walk.files[f as usize], start, end)).collect();
    let opts = VerifyOptions {
        chain_id: opts.chain_id.or(walk.chain_id),
        first_position: range.start,
        mid_chain: range.start > 0,
        ..opts
    };
    let mut verifier = Verifier::new(opts);
    let mut c = Collector {
        walk,
        file_index: HashMap::new(),
        wanted: HashSet::new(),
        first_position: range.start,
        firsts: Vec::new(),
        blocks: Vec::new(),
        malformed: Vec::new(),
        first: None,
        last: None,
        seen: 0,
        misplaced: None,
        forward,
    };
    let summary = verifier.run_sources(&sources, &mut c)?;
    let expected = range.end.unwrap_or(walk.blocks()).saturating_sub(range.start);
    // The malformed blocks the walk put in the range (the other in-between
    // items are empty files).
    let expected_malformed =
        walk.between.iter().filter(|t| range.holds(t.anchor) && walk.sizes[t.file as usize] > 0).count() as u64;
    if let Some(problem) = c.misplaced.take() {
        return Err(MismatchError::Misplaced(problem).into());
    }
    if (c.seen, summary.malformed) != (expected, expected_malformed) {
        return Err(MismatchError::Counts {
            blocks: c.seen,
            malformed: summary.malformed,
            expected_blocks: expected,
            expected_malformed,
        }
        .into());
    }
    if let Some(problem) = first_change(&input.files, &walk.files) {
        return Err(MismatchError::Changed(problem).into());
    }
    let mut firsts: HashMap<[u8; 32], SenderFirst> = HashMap::new();
    for f in &c.firsts {
        firsts.entry(f.sender).or_insert(*f);
    }
    let mut senders: Vec<SenderEntry> = verifier
        .chain()
        .nonces()
        .map(|(key, next)| SenderEntry {
            key: hex::encode(key),
            first: firsts.get(key).map(|f| (f.position, f.tx, f.nonce)),
            next,
        })
        .collect();
    senders.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ShardSummary {
        format: SUMMARY_FORMAT.into(),
        version: SUMMARY_VERSION,
        input,
        range,
        shard,
        first: c.first,
        last: c.last,
        senders,
        blocks: c.blocks,
        malformed: c.malformed,
        totals: Totals {
            files,
            blocks: summary.blocks,
            malformed: summary.malformed,
            transactions: summary.transactions,
            signatures: summary.signatures,
            bytes: summary.bytes,
        },
        seconds: summary.seconds,
        spans: digests,
        checksum: String::new(),
    })
}
