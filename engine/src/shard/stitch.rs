//! The stitch: range summaries joined into the single-run report.

use super::files::hash_span;
use super::range::Range;
use super::summary::{Input, ShardSummary, SummaryError, read_summary};
use crate::chain::{Parent, link_failures, nonce_failure};
use crate::hash::Digest;
use crate::input::{InputError, IoMode};
use crate::report::{BlockRef, BlockReport, Failure, Rule, Summary};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why summaries could not be stitched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StitchError {
    /// A summary could not be read.
    #[error(transparent)]
    Summary(#[from] SummaryError),
    /// No summary was given.
    #[error("no summaries given")]
    Empty,
    /// A summary of another chain (or rules) than the first.
    #[error("{path} is for another input than {first} (files, sizes, chain id or rules differ)")]
    Foreign {
        /// The summary.
        path: PathBuf,
        /// The first summary given.
        first: PathBuf,
    },
    /// Two summaries cover the same positions.
    #[error("{path} and {other} both cover positions {start}..{}", end_text(.end))]
    Overlap {
        /// One summary.
        path: PathBuf,
        /// The other.
        other: PathBuf,
        /// The first position both cover.
        start: u64,
        /// Where the overlap ends (`None`: at the end of the chain).
        end: Option<u64>,
    },
    /// Positions no summary covers.
    #[error("missing: {0}")]
    Missing(Missing),
    /// A summary whose contents contradict themselves.
    #[error("{path}: {problem}")]
    Inconsistent {
        /// The summary.
        path: PathBuf,
        /// What is wrong in it.
        problem: Inconsistency,
    },
    /// The summaries' spans do not cover every byte of the chain once.
    #[error("the summaries do not cover the chain's bytes exactly: {0}")]
    Untiled(Untiled),
    /// A total does not fit in 64 bits: some summary's numbers are not a
    /// real range's.
    #[error("{path}: the total {what} overflows with this summary's {value}")]
    Overflow {
        /// The summary.
        path: PathBuf,
        /// The total's name.
        what: &'static str,
        /// The summary's number.
        value: u64,
    },
    /// `--chain` is not the chain the summaries describe.
    #[error("--chain: {0}")]
    Chain(ChainMismatch),
    /// A summary whose byte digest is not the chain's.
    #[error(
        "{path} was made from other bytes than {file} holds (bytes {start}..{end} differ): verify that range again on this chain"
    )]
    Bytes {
        /// The summary.
        path: PathBuf,
        /// The chain's file.
        file: PathBuf,
        /// The span's first byte.
        start: u64,
        /// The byte past the span.
        end: u64,
    },
    /// The ranges' counts do not add up to the chain's.
    #[error("the summaries do not add up: {0}")]
    Counts(CountsMismatch),
    /// Reading the chain (`--chain`) failed.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// `end` as [`StitchError::Overlap`] writes it.
fn end_text(end: &Option<u64>) -> String {
    end.map_or_else(|| "the end".to_string(), |e| e.to_string())
}

/// What no summary covers ([`StitchError::Missing`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Missing {
    /// Shards of one split that are absent.
    #[error("shards {} (re-run those with --shard I/N)", shard_list(.absent, .count))]
    Shards {
        /// The absent shards' indices.
        absent: Vec<u32>,
        /// The split's shard count.
        count: u32,
    },
    /// Gaps between the summaries' ranges.
    #[error("{}", gap_list(.gaps, .blocks))]
    Positions {
        /// The gaps, in order; one with no end runs to the chain's end.
        gaps: Vec<Range>,
        /// The chain's block count.
        blocks: u64,
    },
}

fn shard_list(absent: &[u32], count: &u32) -> String {
    absent.iter().map(|i| format!("{i}/{count}")).collect::<Vec<_>>().join(", ")
}

fn gap_list(gaps: &[Range], blocks: &u64) -> String {
    gaps.iter()
        .map(|g| match g.end {
            Some(e) => format!("positions {}..{e}", g.start),
            None => format!("positions {}.. (to the end of the chain, {blocks} blocks)", g.start),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What contradicts itself in a summary ([`StitchError::Inconsistent`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Inconsistency {
    /// A hash or id that is not 32 hex bytes.
    #[error("{what} {value:?} is not 32 hex bytes")]
    NotHex {
        /// The field.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// No block entry where the summary needs one.
    #[error("no block entry for position {position}")]
    NoEntry {
        /// The position.
        position: u64,
    },
    /// A file index past the input's files.
    #[error("file index {index} out of {files}")]
    FileIndex {
        /// The index.
        index: u32,
        /// The input's file count.
        files: usize,
    },
    /// A range after position 0 whose previous ranges hold no block.
    #[error("a range after position 0 with no block before it")]
    NoBlockBefore,
    /// A rule name this vigil does not know.
    #[error("{0}")]
    Rule(crate::report::UnknownRule),
}

/// How the summaries' spans fail to tile the chain's bytes
/// ([`StitchError::Untiled`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Untiled {
    /// A span that does not start where the previous one ended.
    #[error("{summary} covers bytes {start}..{end} of {file}, where bytes {next}.. come next")]
    Span {
        /// The summary.
        summary: PathBuf,
        /// The span's first byte.
        start: u64,
        /// The byte past the span.
        end: u64,
        /// The file, as the summaries name it.
        file: String,
        /// The byte the next span should start at.
        next: u64,
    },
    /// Bytes at a file's end that no span covers.
    #[error("bytes {next}..{size} of {file} are in no summary")]
    Uncovered {
        /// The first byte not covered.
        next: u64,
        /// The file's size.
        size: u64,
        /// The file, as the summaries name it.
        file: String,
    },
    /// A span in a file the input does not have.
    #[error("{summary} names file {file}, which the input does not have")]
    NoSuchFile {
        /// The summary.
        summary: PathBuf,
        /// The file index.
        file: u32,
    },
}

/// How `--chain` differs from the chain the summaries describe
/// ([`StitchError::Chain`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainMismatch {
    /// Another number of files.
    #[error("{given} files given, the summaries describe {described}")]
    FileCount {
        /// Files given.
        given: usize,
        /// Files the summaries describe.
        described: usize,
    },
    /// A file of another size.
    #[error("{file} has {size} bytes, the summaries' {recorded} has {recorded_size}")]
    Size {
        /// The file given.
        file: PathBuf,
        /// Its size.
        size: u64,
        /// The file as the summaries name it.
        recorded: String,
        /// Its size in the summaries.
        recorded_size: u64,
    },
}

/// The summaries' counts against their input's ([`StitchError::Counts`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error(
    "the summaries hold {blocks} blocks, {transactions} transactions in {files} files; their input has {input_blocks}, \
     {input_transactions} in {input_files}"
)]
pub struct CountsMismatch {
    /// Blocks the summaries hold.
    pub blocks: u64,
    /// Transactions the summaries hold.
    pub transactions: u64,
    /// Files the summaries count.
    pub files: u64,
    /// Blocks in the input.
    pub input_blocks: u64,
    /// Transactions in the input.
    pub input_transactions: u64,
    /// Files in the input.
    pub input_files: usize,
}

/// One line of the stitched report, in chain order.
#[derive(Debug, Clone)]
pub enum Event {
    /// An invalid block.
    Block(BlockReport),
    /// A malformed block (and the rest of its file).
    Malformed {
        /// Its file.
        file: Arc<Path>,
        /// Its offset in the file.
        offset: u64,
        /// Why it does not frame.
        detail: String,
    },
}

/// The whole chain's report, rebuilt from its ranges' summaries: the events
/// (invalid blocks and malformed ones) in chain order and the totals.
#[derive(Debug)]
pub struct Stitched {
    /// Invalid and malformed blocks, in chain order.
    pub events: Vec<Event>,
    /// The totals, as one run over the chain reports them, except `seconds`:
    /// the ranges' seconds summed, the work they did together (their wall
    /// span is not known: the ranges may run one after another or at once).
    pub summary: Summary,
    /// The summaries joined.
    pub ranges: usize,
    /// The longest range's seconds: with every range run at once, about the
    /// wall time the verification took.
    pub longest_seconds: f64,
}

fn unhex32(s: &str, path: &Path, what: &'static str) -> Result<Digest, StitchError> {
    hex::decode(s).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| StitchError::Inconsistent {
        path: path.into(),
        problem: Inconsistency::NotHex { what, value: s.to_string() },
    })
}

/// The report of the block at `position`, which the summary must hold.
fn entry<'m>(
    mine: &'m mut HashMap<u64, BlockReport>,
    position: u64,
    path: &Path,
) -> Result<&'m mut BlockReport, StitchError> {
    mine.get_mut(&position)
        .ok_or_else(|| StitchError::Inconsistent { path: path.into(), problem: Inconsistency::NoEntry { position } })
}

/// Joins summaries (any order) into the single-run report; see the module
/// docs. The chain's bytes are not read: see [`stitch_with_chain`].
pub fn stitch(paths: &[PathBuf]) -> Result<Stitched, StitchError> {
    stitch_with_chain(paths, None)
}

/// Checks that the summaries' spans tile every file of the input exactly
/// (each byte verified by one range); `loaded` is sorted by range.
fn check_tiling(input: &Input, loaded: &[(PathBuf, ShardSummary)]) -> Result<(), StitchError> {
    let mut spans: Vec<(u32, u64, u64, &Path)> =
        loaded.iter().flat_map(|(p, s)| s.spans.iter().map(move |d| (d.file, d.start, d.end, p.as_path()))).collect();
    spans.sort_by_key(|&(f, start, end, _)| (f, start, end));
    let mut spans = spans.into_iter().peekable();
    for (f, stamp) in input.files.iter().enumerate() {
        let mut next = 0u64;
        while let Some((_, start, end, p)) = spans.next_if(|s| s.0 as usize == f) {
            if start != next || end < start || end > stamp.size {
                return Err(StitchError::Untiled(Untiled::Span {
                    summary: p.to_path_buf(),
                    start,
                    end,
                    file: stamp.path.clone(),
                    next,
                }));
            }
            next = end;
        }
        if next != stamp.size {
            return Err(StitchError::Untiled(Untiled::Uncovered { next, size: stamp.size, file: stamp.path.clone() }));
        }
    }
    if let Some((f, _, _, p)) = spans.next() {
        return Err(StitchError::Untiled(Untiled::NoSuchFile { summary: p.to_path_buf(), file: f }));
    }
    Ok(())
}

/// Re-hashes the chain's bytes (BLAKE3, all cores) span by span and checks
/// each summary's digests against them.
fn check_bytes(
    input: &Input,
    loaded: &[(PathBuf, ShardSummary)],
    chain: &[PathBuf],
    io: IoMode,
) -> Result<(), StitchError> {
    if chain.len() != input.files.len() {
        return Err(StitchError::Chain(ChainMismatch::FileCount { given: chain.len(), described: input.files.len() }));
    }
    for (file, stamp) in chain.iter().zip(&input.files) {
        let size = std::fs::metadata(file).map_err(crate::input::io_error(file))?.len();
        if size != stamp.size {
            return Err(StitchError::Chain(ChainMismatch::Size {
                file: file.clone(),
                size,
                recorded: stamp.path.clone(),
                recorded_size: stamp.size,
            }));
        }
    }
    for (p, s) in loaded {
        for d in &s.spans {
            let file = &chain[d.file as usize];
            let digest = hash_span(file, d.start, d.end, io)?;
            if hex::encode(digest) != d.blake3 {
                return Err(StitchError::Bytes { path: p.clone(), file: file.clone(), start: d.start, end: d.end });
            }
        }
    }
    Ok(())
}

/// Adds `value` to the total `what`, or names the summary that overflows it.
fn add(total: &mut u64, value: u64, what: &'static str, path: &Path) -> Result<(), StitchError> {
    *total = total.checked_add(value).ok_or(StitchError::Overflow { path: path.into(), what, value })?;
    Ok(())
}

/// [`stitch`], and with `chain` (the chain's files as `verify` takes them,
/// and how to read them) checks that every summary was made from these
/// bytes.
pub fn stitch_with_chain(paths: &[PathBuf], chain: Option<(&[PathBuf], IoMode)>) -> Result<Stitched, StitchError> {
    let mut loaded = Vec::with_capacity(paths.len());
    for p in paths {
        loaded.push((p.clone(), read_summary(p)?));
    }
    let Some((first_path, first)) = loaded.first() else { return Err(StitchError::Empty) };
    for (p, s) in &loaded[1..] {
        if !s.input.same_chain(&first.input) {
            return Err(StitchError::Foreign { path: p.clone(), first: first_path.clone() });
        }
    }
    let input = first.input.clone();
    loaded.sort_by_key(|(_, s)| s.range.start);
    // Contiguous from 0 to the end, no overlap, nothing twice.
    let mut missing = Vec::new();
    let mut expect = 0u64;
    let mut open_end = false;
    for (i, (p, s)) in loaded.iter().enumerate() {
        if open_end || s.range.start < expect {
            let (other, _) = &loaded[i - 1];
            let end = if open_end { None } else { Some(expect) };
            return Err(StitchError::Overlap { path: p.clone(), other: other.clone(), start: s.range.start, end });
        }
        if s.range.start > expect {
            missing.push(Range { start: expect, end: Some(s.range.start) });
        }
        match s.range.end {
            Some(e) => expect = e,
            None => open_end = true,
        }
    }
    if !open_end {
        missing.push(Range { start: expect, end: None });
    }
    if !missing.is_empty() {
        // Name the shards to re-run when the summaries are shards of one split.
        let counts: HashSet<u32> = loaded.iter().filter_map(|(_, s)| s.shard.map(|x| x.1)).collect();
        if counts.len() == 1 && loaded.iter().all(|(_, s)| s.shard.is_some()) {
            let n = *counts.iter().next().expect("one count");
            let have: HashSet<u32> = loaded.iter().filter_map(|(_, s)| s.shard.map(|x| x.0)).collect();
            let absent: Vec<u32> = (0..n).filter(|i| !have.contains(i)).collect();
            return Err(StitchError::Missing(Missing::Shards { absent, count: n }));
        }
        return Err(StitchError::Missing(Missing::Positions { gaps: missing, blocks: input.blocks }));
    }
    check_tiling(&input, &loaded)?;
    if let Some((chain, io)) = chain {
        check_bytes(&input, &loaded, chain, io)?;
    }

    let files: Vec<Arc<Path>> = input.files.iter().map(|f| Arc::from(Path::new(&f.path))).collect();
    let file_of = |i: u32, path: &Path| {
        files.get(i as usize).cloned().ok_or_else(|| StitchError::Inconsistent {
            path: path.into(),
            problem: Inconsistency::FileIndex { index: i, files: files.len() },
        })
    };
    let mut totals = Summary::default();
    let mut longest_seconds = 0.0f64;
    // Every block with a report, by position; and the malformed ones.
    let mut reports: BTreeMap<u64, BlockReport> = BTreeMap::new();
    let mut malformed: Vec<(u32, u64, String)> = Vec::new();
    let mut parent: Option<Parent> = None;
    let mut next_nonce: HashMap<String, Option<u64>> = HashMap::new();
    for (p, s) in &loaded {
        let mut mine: HashMap<u64, BlockReport> = HashMap::new();
        for b in &s.blocks {
            let failures = b
                .failures
                .iter()
                .map(|f| {
                    let rule = f
                        .rule
                        .parse::<Rule>()
                        .map_err(|e| StitchError::Inconsistent { path: p.clone(), problem: Inconsistency::Rule(e) })?;
                    Ok(Failure { rule, tx: f.tx, detail: f.detail.clone() })
                })
                .collect::<Result<Vec<_>, StitchError>>()?;
            let report = BlockReport {
                file: file_of(b.file, p)?,
                offset: b.offset,
                position: b.position,
                height: b.height,
                hash: unhex32(&b.hash, p, "hash")?,
                prev_hash: [0; 32],
                timestamp_ms: 0,
                tx_count: b.tx_count,
                failures,
            };
            mine.insert(b.position, report);
        }
        // The range's first block against the previous range's last.
        if let (Some(first), true) = (&s.first, s.range.start > 0) {
            let Some(par) = parent else {
                return Err(StitchError::Inconsistent { path: p.clone(), problem: Inconsistency::NoBlockBefore });
            };
            let prev_hash = unhex32(&first.prev_hash, p, "prev_hash")?;
            let r = entry(&mut mine, first.position, p)?;
            link_failures(&par, first.height, &prev_hash, first.timestamp_ms, &mut r.failures);
        }
        if let Some(last) = &s.last {
            parent = Some(Parent {
                height: last.height,
                hash: unhex32(&last.hash, p, "hash")?,
                timestamp_ms: last.timestamp_ms,
            });
            // What the whole run validated: its first and last blocks.
            if let Some(first) = &s.first
                && totals.first.is_none()
            {
                totals.first = Some(BlockRef { height: first.height, hash: unhex32(&first.hash, p, "hash")? });
            }
            totals.last = Some(BlockRef { height: last.height, hash: unhex32(&last.hash, p, "hash")? });
        }
        // Each sender's first nonce against the ranges before (the first
        // range checked its own against 0).
        for sender in &s.senders {
            if let (Some((position, tx, nonce)), true) = (sender.first, s.range.start > 0) {
                let expected = next_nonce.get(&sender.key).copied().unwrap_or(Some(0));
                if expected != Some(nonce) {
                    entry(&mut mine, position, p)?.failures.push(nonce_failure(tx, nonce, expected));
                }
            }
            next_nonce.insert(sender.key.clone(), sender.next);
        }
        for (position, mut r) in mine {
            // The verifier's order: block rules in table order, then each
            // transaction's in table order.
            r.failures.sort_by_key(|f| (f.tx.map_or(0, |t| u64::from(t) + 1), f.rule));
            reports.insert(position, r);
        }
        malformed.extend(s.malformed.iter().map(|m| (m.file, m.offset, m.detail.clone())));
        // Checked: a summary's numbers are input, and a wrapped total
        // would report a wrong chain quietly.
        let t = &s.totals;
        add(&mut totals.files, t.files, "files", p)?;
        add(&mut totals.blocks, t.blocks, "blocks", p)?;
        add(&mut totals.malformed, t.malformed, "malformed", p)?;
        add(&mut totals.transactions, t.transactions, "transactions", p)?;
        add(&mut totals.signatures, t.signatures, "signatures", p)?;
        add(&mut totals.bytes, t.bytes, "bytes", p)?;
        // The shards' work, not the stitch's own time (a damaged value
        // counts as none).
        let seconds = if s.seconds.is_finite() { s.seconds.max(0.0) } else { 0.0 };
        totals.seconds += seconds;
        longest_seconds = longest_seconds.max(seconds);
    }
    // The ranges' counts add up to the chain's, as the walks saw it.
    if (totals.blocks, totals.transactions, totals.files)
        != (input.blocks, input.transactions, input.files.len() as u64)
    {
        return Err(StitchError::Counts(CountsMismatch {
            blocks: totals.blocks,
            transactions: totals.transactions,
            files: totals.files,
            input_blocks: input.blocks,
            input_transactions: input.transactions,
            input_files: input.files.len(),
        }));
    }
    totals.invalid_blocks = reports.values().filter(|r| !r.valid()).count() as u64;
    totals.chain_id = match &input.chain_id {
        Some(id) => Some(unhex32(id, &loaded[0].0, "chain_id")?),
        None => None,
    };
    // Chain order: by file, then offset.
    let mut keyed: Vec<((u32, u64), Event)> = Vec::new();
    for r in reports.into_values().filter(|r| !r.valid()) {
        let file = files.iter().position(|f| *f == r.file).unwrap_or(0) as u32;
        keyed.push(((file, r.offset), Event::Block(r)));
    }
    for (file, offset, detail) in malformed {
        let path = file_of(file, Path::new("summary"))?;
        keyed.push(((file, offset), Event::Malformed { file: path, offset, detail }));
    }
    keyed.sort_by_key(|(k, _)| *k);
    Ok(Stitched {
        events: keyed.into_iter().map(|(_, e)| e).collect(),
        summary: totals,
        ranges: loaded.len(),
        longest_seconds,
    })
}
