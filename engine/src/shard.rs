//! Scale-out: one chain verified as ranges of block positions (shards), each
//! in its own process (a Kubernetes Indexed Job's pods, a Slurm array's
//! tasks), and their boundary summaries stitched into exactly the report one
//! run over the whole chain gives.
//!
//! - **Positions.** A block's position is its 0-based index among the
//!   chain's well-formed blocks in chain order. [`walk`] finds every
//!   position's file and offset by framing the chain exactly as the verifier
//!   does (the same frame stage: headers and transaction lengths, no hashing,
//!   no signatures), so a malformed block ends its file in the walk too.
//! - **A range** `[start, end)` verifies its blocks with the chain id the
//!   walk saw first (or the pinned one). When `start > 0` it starts
//!   mid-chain: its first block's links (height, prev_hash, timestamp) and
//!   each sender's first nonce in the range are left open and written to the
//!   summary with everything else the range decided alone.
//! - **Items between blocks** (a malformed block and the rest of its file, an
//!   empty file) belong to the range holding the position of the next
//!   well-formed block; those after the last block belong to the range that
//!   runs to the end of the chain (a range whose end is at or past the
//!   chain's block count does).
//! - **[`stitch`]** checks the summaries fit (same input, ranges contiguous
//!   from 0 to the end, no overlap), replays the open checks in chain order
//!   (links across boundaries, each sender's first nonce against the
//!   previous ranges' last), merges the failures in the verifier's order and
//!   sums the totals.

use crate::chain::{Parent, link_failures, nonce_failure};
use crate::frame::{Limits, Source, frame_all};
use crate::hash::Digest;
use crate::input::{InputError, IoMode};
use crate::report::{BlockReport, Failure, MalformedReport, ReportSink, Rule, SenderFirst, Summary};
use crate::verify::{Verifier, VerifyOptions};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub const SUMMARY_FORMAT: &str = "vigil-shard-summary";
pub const SUMMARY_VERSION: u32 = 1;

/// One well-formed block as the walk found it.
#[derive(Debug, Clone, Copy)]
struct Walked {
    file: u32,
    offset: u64,
    len: u64,
    txs: u32,
}

/// Something between blocks: a malformed block (at `offset`, ending its
/// file) or an empty file (`offset` 0, no block). Anchored at the position
/// of the next well-formed block.
#[derive(Debug, Clone, Copy)]
struct Between {
    file: u32,
    offset: u64,
    anchor: u64,
}

/// The chain's layout: every block's place, found without hashing.
#[derive(Debug)]
pub struct Walk {
    files: Vec<PathBuf>,
    sizes: Vec<u64>,
    blocks: Vec<Walked>,
    between: Vec<Between>,
    /// Position of each file's first item (block or between), for counting
    /// files.
    file_anchor: Vec<u64>,
    /// The first well-formed block's chain id.
    pub chain_id: Option<Digest>,
}

impl Walk {
    pub fn blocks(&self) -> u64 {
        self.blocks.len() as u64
    }

    pub fn transactions(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.txs)).sum()
    }

    /// The walked files as summaries and indexes record them: names, the
    /// sizes the walk saw, modification times.
    fn stamps(&self) -> Vec<FileStamp> {
        self.files
            .iter()
            .zip(&self.sizes)
            .map(|(p, &size)| FileStamp { path: p.display().to_string(), size, mtime_ns: mtime_ns(p) })
            .collect()
    }

    /// Range boundaries for `n` shards, balanced by signatures (each block's
    /// transactions and its own): `n + 1` positions from 0 to the block
    /// count.
    pub fn shard_bounds(&self, n: u32) -> Vec<u64> {
        let weight = |b: &Walked| u64::from(b.txs) + 1;
        let total: u64 = self.blocks.iter().map(weight).sum();
        let mut bounds = vec![0u64];
        let mut done = 0u64;
        let mut position = 0u64;
        for i in 1..u64::from(n) {
            let target = total * i / u64::from(n);
            while done < target && (position as usize) < self.blocks.len() {
                done += weight(&self.blocks[position as usize]);
                position += 1;
            }
            bounds.push(position);
        }
        bounds.push(self.blocks());
        bounds
    }
}

/// Frames `files` as the verifier does, keeping only where blocks are.
pub fn walk(files: &[PathBuf], io: IoMode) -> Result<Walk, InputError> {
    let mut w = Walk {
        files: files.to_vec(),
        sizes: Vec::with_capacity(files.len()),
        blocks: Vec::new(),
        between: Vec::new(),
        file_anchor: Vec::new(),
        chain_id: None,
    };
    let mut seen = HashSet::new();
    for f in files {
        if !seen.insert(f) {
            return Err(InputError::Duplicate(f.clone()));
        }
        w.sizes.push(std::fs::metadata(f).map_err(crate::input::io_error(f))?.len());
    }
    let sources: Vec<Source<'_>> = files.iter().map(|f| Source::File(f)).collect();
    let index: HashMap<&Path, u32> = files.iter().enumerate().map(|(i, f)| (f.as_path(), i as u32)).collect();
    let mut error = None;
    let limits = Limits { txs: 1 << 20, bytes: 64 << 20 };
    frame_all(&sources, io, limits, None, |batch| {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                error = Some(e);
                return false;
            }
        };
        let file = index[&*batch.file];
        if batch.first_of_file {
            w.file_anchor.push(w.blocks.len() as u64);
        }
        if w.chain_id.is_none()
            && let Some(view) = batch.views().first()
        {
            w.chain_id = Some(view.header.chain_id);
        }
        for (b, framed) in batch.blocks.iter().enumerate() {
            let txs = (batch.first_tx[b + 1] - batch.first_tx[b]) as u32;
            w.blocks.push(Walked { file, offset: framed.offset, len: framed.len as u64, txs });
        }
        if let Some((offset, _)) = &batch.malformed {
            w.between.push(Between { file, offset: *offset, anchor: w.blocks.len() as u64 });
        } else if batch.first_of_file && batch.blocks.is_empty() && w.sizes[file as usize] == 0 {
            w.between.push(Between { file, offset: 0, anchor: w.blocks.len() as u64 });
        }
        batch.release();
        true
    });
    match error {
        Some(e) => Err(e),
        None => Ok(w),
    }
}

const INDEX_MAGIC: &[u8; 8] = b"VIGILIDX";
const INDEX_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a vigil index ({problem})")]
    Invalid { path: PathBuf, problem: String },
    #[error("{path} was made for other files or versions of them ({problem}); run `vigil index` again")]
    Stale { path: PathBuf, problem: String },
}

/// The header of an index file (JSON between the magic and the records).
#[derive(Debug, Serialize, Deserialize)]
struct IndexHeader {
    files: Vec<FileStamp>,
    chain_id: Option<String>,
    blocks: u64,
    between: u64,
}

impl Walk {
    /// Writes the walk as a sidecar index (`vigil index`): shards read it
    /// instead of walking the chain before their range. Binary: magic,
    /// version, a JSON header (files with sizes and modification times),
    /// 24 bytes a block, 20 an in-between item, 8 a file, then a BLAKE3 of
    /// all that; written atomically.
    pub fn write_index(&self, path: &Path) -> Result<(), IndexError> {
        let io = |source| IndexError::Io { path: path.into(), source };
        let header = IndexHeader {
            files: self.stamps(),
            chain_id: self.chain_id.map(hex::encode),
            blocks: self.blocks.len() as u64,
            between: self.between.len() as u64,
        };
        let json = serde_json::to_vec(&header).map_err(|e| io(std::io::Error::other(e)))?;
        let mut out = Vec::with_capacity(16 + json.len() + self.blocks.len() * 24);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for b in &self.blocks {
            out.extend_from_slice(&b.file.to_le_bytes());
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.len.to_le_bytes());
            out.extend_from_slice(&b.txs.to_le_bytes());
        }
        for b in &self.between {
            out.extend_from_slice(&b.file.to_le_bytes());
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.anchor.to_le_bytes());
        }
        for a in &self.file_anchor {
            out.extend_from_slice(&a.to_le_bytes());
        }
        let digest = blake3::hash(&out);
        out.extend_from_slice(digest.as_bytes());
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, &out).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads an index written by [`Walk::write_index`] for `files`; an
    /// index for other files, or for files whose size or modification time
    /// has changed since, is refused (`Stale`).
    pub fn read_index(path: &Path, files: &[PathBuf]) -> Result<Walk, IndexError> {
        let bytes = std::fs::read(path).map_err(|source| IndexError::Io { path: path.into(), source })?;
        let (walk, stamps) = Walk::parse_index(path, &bytes, files)?;
        if let Some(problem) = first_change(&stamps, files) {
            return Err(IndexError::Stale { path: path.into(), problem });
        }
        Ok(walk)
    }

    /// Decodes an index's bytes for `files`: everything [`Walk::read_index`]
    /// checks but whether the files on disk still match the stamps the
    /// index records, which it returns for that check. Reads no file (the
    /// fuzz targets in `fuzz/` feed it any bytes); `path` names the index in
    /// errors.
    pub fn parse_index(path: &Path, bytes: &[u8], files: &[PathBuf]) -> Result<(Walk, Vec<FileStamp>), IndexError> {
        let invalid = |problem: &str| IndexError::Invalid { path: path.into(), problem: problem.into() };
        if bytes.len() < 16 + 32 || &bytes[..8] != INDEX_MAGIC {
            return Err(invalid("no VIGILIDX magic"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != digest {
            return Err(invalid("checksum mismatch: the file is damaged"));
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if version != INDEX_VERSION {
            return Err(invalid(&format!("version {version}, this vigil reads {INDEX_VERSION}")));
        }
        let json_len = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
        let json = body.get(16..16 + json_len).ok_or_else(|| invalid("header runs past the end"))?;
        let header: IndexHeader = serde_json::from_slice(json).map_err(|e| invalid(&e.to_string()))?;
        let mut rest = &body[16 + json_len..];
        let need = (header.blocks as u128) * 24 + (header.between as u128) * 20 + (header.files.len() as u128) * 8;
        if need != rest.len() as u128 {
            return Err(invalid("record counts do not match the file's length"));
        }
        // The records are checked against the header's file count and sizes.
        if header.files.len() != files.len() {
            let problem = format!("{} files recorded, {} given", header.files.len(), files.len());
            return Err(IndexError::Stale { path: path.into(), problem });
        }
        let sizes: Vec<u64> = header.files.iter().map(|f| f.size).collect();
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head
        };
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let nfiles = files.len() as u32;
        let mut blocks = Vec::with_capacity(header.blocks as usize);
        for _ in 0..header.blocks {
            let r = take(24);
            let b = Walked { file: u32_at(r, 0), offset: u64_at(r, 4), len: u64_at(r, 12), txs: u32_at(r, 20) };
            if b.file >= nfiles || b.offset.checked_add(b.len).is_none_or(|end| end > sizes[b.file as usize]) {
                return Err(invalid("a block lies outside its file"));
            }
            blocks.push(b);
        }
        let mut between = Vec::with_capacity(header.between as usize);
        for _ in 0..header.between {
            let r = take(20);
            let b = Between { file: u32_at(r, 0), offset: u64_at(r, 4), anchor: u64_at(r, 12) };
            if b.file >= nfiles || b.offset > sizes[b.file as usize] || b.anchor > header.blocks {
                return Err(invalid("an item lies outside the chain"));
            }
            between.push(b);
        }
        let file_anchor: Vec<u64> = (0..files.len()).map(|_| u64_at(take(8), 0)).collect();
        let chain_id = match header.chain_id {
            Some(h) => Some(
                hex::decode(&h)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| invalid("chain id is not 32 hex bytes"))?,
            ),
            None => None,
        };
        Ok((Walk { files: files.to_vec(), sizes, blocks, between, file_anchor, chain_id }, header.files))
    }
}

/// A range of positions; `end: None` runs to the end of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub start: u64,
    pub end: Option<u64>,
}

impl Range {
    /// The range as run on `walk`: an end at or past the block count runs
    /// to the end (so it holds what comes after the last block).
    pub fn normalized(self, walk: &Walk) -> Range {
        Range { start: self.start, end: self.end.filter(|&e| e < walk.blocks()) }
    }

    fn holds(&self, position: u64) -> bool {
        position >= self.start && self.end.is_none_or(|e| position < e)
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end {
            Some(e) => write!(f, "{}..{e}", self.start),
            None => write!(f, "{}..", self.start),
        }
    }
}

/// A file as the summary identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since 1970 (0 when unknown).
    pub mtime_ns: u128,
}

/// What a summary was computed from: two summaries stitch only when these
/// are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub files: Vec<FileStamp>,
    /// Well-formed blocks and transactions in the whole chain (the walk).
    pub blocks: u64,
    pub transactions: u64,
    /// The chain's id (pinned, or the first block's); hex.
    pub chain_id: Option<String>,
    /// Signature rules and the authority set (BLAKE3 of the sorted keys).
    pub rules: String,
    pub authorities: Option<String>,
}

impl Input {
    pub fn new(walk: &Walk, opts: &VerifyOptions) -> Input {
        let files = walk.stamps();
        let authorities = opts.authorities.as_ref().map(|set| {
            let mut keys: Vec<&[u8; 32]> = set.iter().collect();
            keys.sort();
            let mut h = blake3::Hasher::new();
            for k in keys {
                h.update(k);
            }
            h.finalize().to_hex().to_string()
        });
        Input {
            files,
            blocks: walk.blocks(),
            transactions: walk.transactions(),
            chain_id: opts.chain_id.or(walk.chain_id).map(hex::encode),
            rules: opts.rules.to_string(),
            authorities,
        }
    }

    /// Whether `other` describes the same chain: file names and sizes,
    /// counts, chain id and rules (modification times may differ between
    /// machines holding copies).
    pub fn same_chain(&self, other: &Input) -> bool {
        let names_sizes = |i: &Input| i.files.iter().map(|f| (f.path.clone(), f.size)).collect::<Vec<_>>();
        names_sizes(self) == names_sizes(other)
            && (self.blocks, self.transactions, &self.chain_id, &self.rules, &self.authorities)
                == (other.blocks, other.transactions, &other.chain_id, &other.rules, &other.authorities)
    }

    /// Whether `files` still look as they did (sizes and modification
    /// times), without reading them.
    pub fn matches_files(&self, files: &[PathBuf]) -> bool {
        first_change(&self.files, files).is_none()
    }
}

/// How `files` differ from `stamps` (names, sizes, modification times), or
/// `None` when they look the same; reads no file's contents.
fn first_change(stamps: &[FileStamp], files: &[PathBuf]) -> Option<String> {
    if stamps.len() != files.len() {
        return Some(format!("{} files recorded, {} given", stamps.len(), files.len()));
    }
    stamps.iter().zip(files).find_map(|(s, p)| {
        let now = std::fs::metadata(p).map(|m| m.len()).ok();
        let same = s.path == p.display().to_string() && now == Some(s.size) && mtime_ns(p) == s.mtime_ns;
        (!same).then(|| format!("{} changed (or is another file)", p.display()))
    })
}

fn mtime_ns(p: &Path) -> u128 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// A block at a range's edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub position: u64,
    pub height: u64,
    pub hash: String,
    pub prev_hash: String,
    pub timestamp_ms: u64,
}

/// A sender seen in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderEntry {
    pub key: String,
    /// Its first transaction in the range, `[position, tx index, nonce]`;
    /// its nonce is left to the stitch in ranges that start mid-chain.
    pub first: Option<(u64, u32, u64)>,
    /// The nonce expected next after the range (`None`: none is valid).
    pub next: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureEntry {
    pub rule: String,
    pub tx: Option<u32>,
    pub detail: String,
}

/// A block the stitch needs: one with failures, the range's first, or one
/// holding a sender's first transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// Index into `input.files`.
    pub file: u32,
    pub offset: u64,
    pub position: u64,
    pub height: u64,
    pub hash: String,
    pub tx_count: u32,
    pub failures: Vec<FailureEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedEntry {
    pub file: u32,
    pub offset: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    pub blocks: u64,
    pub malformed: u64,
    pub transactions: u64,
    pub signatures: u64,
    pub bytes: u64,
}

/// What one range leaves for the stitch (`--summary FILE`), JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    pub format: String,
    pub version: u32,
    pub input: Input,
    pub range: Range,
    /// `[index, count]` when the range is a shard.
    pub shard: Option<(u32, u32)>,
    pub first: Option<Edge>,
    pub last: Option<Edge>,
    pub senders: Vec<SenderEntry>,
    pub blocks: Vec<BlockEntry>,
    pub malformed: Vec<MalformedEntry>,
    pub totals: Totals,
    pub seconds: f64,
}

/// The sources that frame `range` of `walk` exactly as a whole run does,
/// and the files it counts.
fn plan(walk: &Walk, range: Range) -> (Vec<Source<'_>>, u64) {
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
    let sources = walk
        .files
        .iter()
        .zip(span)
        .filter_map(|(path, s)| s.map(|(start, end)| Source::Part(path, start, end)))
        .collect();
    let files = walk.file_anchor.iter().filter(|&&a| range.holds(a)).count() as u64;
    (sources, files)
}

/// Collects what the summary keeps.
struct Collector {
    file_index: HashMap<Arc<Path>, u32>,
    files: Vec<PathBuf>,
    wanted: HashSet<u64>,
    first_position: u64,
    firsts: Vec<SenderFirst>,
    blocks: Vec<BlockEntry>,
    malformed: Vec<MalformedEntry>,
    first: Option<Edge>,
    last: Option<Edge>,
    /// Every report, for a range run that prints them.
    forward: Option<Box<dyn ReportSink>>,
}

impl Collector {
    fn file(&mut self, path: &Arc<Path>) -> u32 {
        if let Some(&i) = self.file_index.get(path) {
            return i;
        }
        let i = self.files.iter().position(|f| f.as_path() == &**path).unwrap_or(0) as u32;
        self.file_index.insert(path.clone(), i);
        i
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

impl ReportSink for Collector {
    fn block(&mut self, r: &BlockReport) {
        if self.first.is_none() {
            self.first = Some(edge(r));
        }
        self.last = Some(edge(r));
        if !r.valid() || r.position == self.first_position || self.wanted.contains(&r.position) {
            let file = self.file(&r.file);
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
pub fn run_range(
    walk: &Walk,
    range: Range,
    shard: Option<(u32, u32)>,
    opts: VerifyOptions,
    forward: Option<Box<dyn ReportSink>>,
) -> Result<ShardSummary, InputError> {
    let range = range.normalized(walk);
    let input = Input::new(walk, &opts);
    let (sources, files) = plan(walk, range);
    let opts = VerifyOptions {
        chain_id: opts.chain_id.or(walk.chain_id),
        first_position: range.start,
        mid_chain: range.start > 0,
        ..opts
    };
    let mut verifier = Verifier::new(opts);
    let mut c = Collector {
        file_index: HashMap::new(),
        files: walk.files.clone(),
        wanted: HashSet::new(),
        first_position: range.start,
        firsts: Vec::new(),
        blocks: Vec::new(),
        malformed: Vec::new(),
        first: None,
        last: None,
        forward,
    };
    let summary = verifier.run_sources(&sources, &mut c)?;
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
    })
}

/// Writes `summary` to `path` atomically (a temporary file renamed).
pub fn write_summary(path: &Path, summary: &ShardSummary) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a vigil shard summary: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

pub fn read_summary(path: &Path) -> Result<ShardSummary, SummaryError> {
    let bytes = std::fs::read(path).map_err(|source| SummaryError::Read { path: path.into(), source })?;
    parse_summary(path, &bytes)
}

/// Decodes a summary's bytes (what [`read_summary`] read); `path` names it
/// in errors. Reads no file: the fuzz targets in `fuzz/` feed it any bytes.
pub fn parse_summary(path: &Path, bytes: &[u8]) -> Result<ShardSummary, SummaryError> {
    let s: ShardSummary = serde_json::from_slice(bytes)
        .map_err(|e| SummaryError::Invalid { path: path.into(), problem: e.to_string() })?;
    if s.format != SUMMARY_FORMAT || s.version != SUMMARY_VERSION {
        return Err(SummaryError::Invalid {
            path: path.into(),
            problem: format!(
                "format {:?} version {}, expected {SUMMARY_FORMAT:?} version {SUMMARY_VERSION}",
                s.format, s.version
            ),
        });
    }
    Ok(s)
}

#[derive(Debug, thiserror::Error)]
pub enum StitchError {
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error("no summaries given")]
    Empty,
    #[error("{path} is for another input than {first} (files, sizes, chain id or rules differ)")]
    Foreign { path: PathBuf, first: PathBuf },
    #[error("{path} and {other} both cover positions {range}")]
    Overlap { path: PathBuf, other: PathBuf, range: String },
    #[error("missing: {0}")]
    Missing(String),
    #[error("{path}: {problem}")]
    Inconsistent { path: PathBuf, problem: String },
}

/// One line of the stitched report, in chain order.
#[derive(Debug, Clone)]
pub enum Event {
    Block(BlockReport),
    Malformed { file: Arc<Path>, offset: u64, detail: String },
}

/// The whole chain's report, rebuilt from its ranges' summaries: the events
/// (invalid blocks and malformed ones) in chain order and the totals.
#[derive(Debug)]
pub struct Stitched {
    pub events: Vec<Event>,
    pub summary: Summary,
}

fn unhex32(s: &str, path: &Path, what: &str) -> Result<Digest, StitchError> {
    hex::decode(s).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| StitchError::Inconsistent {
        path: path.into(),
        problem: format!("{what} {s:?} is not 32 hex bytes"),
    })
}

/// The report of the block at `position`, which the summary must hold.
fn entry<'m>(
    mine: &'m mut HashMap<u64, BlockReport>,
    position: u64,
    path: &Path,
) -> Result<&'m mut BlockReport, StitchError> {
    mine.get_mut(&position).ok_or_else(|| StitchError::Inconsistent {
        path: path.into(),
        problem: format!("no block entry for position {position}"),
    })
}

/// Joins summaries (any order) into the single-run report; see the module
/// docs.
pub fn stitch(paths: &[PathBuf]) -> Result<Stitched, StitchError> {
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
            let end = if open_end { "the end".to_string() } else { expect.to_string() };
            return Err(StitchError::Overlap {
                path: p.clone(),
                other: other.clone(),
                range: format!("{}..{end}", s.range.start),
            });
        }
        if s.range.start > expect {
            missing.push(format!("positions {expect}..{}", s.range.start));
        }
        match s.range.end {
            Some(e) => expect = e,
            None => open_end = true,
        }
    }
    if !open_end {
        missing.push(format!("positions {expect}.. (to the end of the chain, {} blocks)", input.blocks));
    }
    if !missing.is_empty() {
        // Name the shards to re-run when the summaries are shards of one split.
        let counts: HashSet<u32> = loaded.iter().filter_map(|(_, s)| s.shard.map(|x| x.1)).collect();
        if counts.len() == 1 && loaded.iter().all(|(_, s)| s.shard.is_some()) {
            let n = *counts.iter().next().expect("one count");
            let have: HashSet<u32> = loaded.iter().filter_map(|(_, s)| s.shard.map(|x| x.0)).collect();
            let absent: Vec<String> = (0..n).filter(|i| !have.contains(i)).map(|i| format!("{i}/{n}")).collect();
            return Err(StitchError::Missing(format!("shards {} (re-run those with --shard I/N)", absent.join(", "))));
        }
        return Err(StitchError::Missing(missing.join(", ")));
    }

    let files: Vec<Arc<Path>> = input.files.iter().map(|f| Arc::from(Path::new(&f.path))).collect();
    let file_of = |i: u32, path: &Path| {
        files.get(i as usize).cloned().ok_or_else(|| StitchError::Inconsistent {
            path: path.into(),
            problem: format!("file index {i} out of {}", files.len()),
        })
    };
    let mut totals = Summary::default();
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
                        .map_err(|e| StitchError::Inconsistent { path: p.clone(), problem: e })?;
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
                return Err(StitchError::Inconsistent {
                    path: p.clone(),
                    problem: "a range after position 0 with no block before it".into(),
                });
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
        // Summaries are read, not trusted: a sum that overflows is refused.
        let add = |total: &mut u64, n: u64, what: &str| {
            *total = total.checked_add(n).ok_or_else(|| StitchError::Inconsistent {
                path: p.clone(),
                problem: format!("the {what} totals overflow when summed"),
            })?;
            Ok::<(), StitchError>(())
        };
        add(&mut totals.files, s.totals.files, "files")?;
        add(&mut totals.blocks, s.totals.blocks, "blocks")?;
        add(&mut totals.malformed, s.totals.malformed, "malformed")?;
        add(&mut totals.transactions, s.totals.transactions, "transactions")?;
        add(&mut totals.signatures, s.totals.signatures, "signatures")?;
        add(&mut totals.bytes, s.totals.bytes, "bytes")?;
        totals.seconds = totals.seconds.max(s.seconds);
    }
    totals.invalid_blocks = reports.values().filter(|r| !r.valid()).count() as u64;
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
    Ok(Stitched { events: keyed.into_iter().map(|(_, e)| e).collect(), summary: totals })
}
