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
//! - **Bytes.** A summary carries the BLAKE3 of each byte span its range
//!   covered (per file), and its own checksum; an index carries each file's
//!   BLAKE3. The stitch checks that the summaries' spans tile every file
//!   exactly and, given the chain (`--chain`), re-hashes it and refuses a
//!   summary made from other bytes. A range checks that the blocks it
//!   verified are exactly where its walk (or index) said, so an index cannot
//!   hide or move blocks. docs/SHARDS.md says what this binds and what stays
//!   trusted.

use crate::chain::{Parent, link_failures, nonce_failure};
use crate::frame::{Limits, Source, frame_all};
use crate::hash::Digest;
use crate::input::{InputError, IoMode};
use crate::report::{BlockRef, BlockReport, Failure, MalformedReport, ReportSink, Rule, SenderFirst, Summary};
use crate::verify::{Verifier, VerifyOptions};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub const SUMMARY_FORMAT: &str = "vigil-shard-summary";
/// 2: byte digests (`spans`) and the summary's own `checksum`.
pub const SUMMARY_VERSION: u32 = 2;

/// The most shards a chain is cut into: far beyond any cluster's width, and
/// small enough that nothing sized by N (the stitch's list of missing
/// shards) can exhaust memory. Cutting computes only the two bounds of the
/// shard asked for, so N costs nothing else.
pub const MAX_SHARDS: u32 = 1 << 16;

/// Checks a shard spec: `0 <= i < n <= MAX_SHARDS`.
pub fn check_shard(i: u32, n: u32) -> Result<(), String> {
    if n == 0 || n > MAX_SHARDS {
        return Err(format!("shard count {n} is not in 1..={MAX_SHARDS}"));
    }
    if i >= n {
        return Err(format!("shard index {i} is not below the shard count {n} (indices start at 0)"));
    }
    Ok(())
}

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
    /// Each file's BLAKE3, when the walk was read from an index (which
    /// records them): ranges covering a whole file check it.
    digests: Option<Vec<Digest>>,
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

    /// The position where cut `i` of `n` falls (cut 0 is position 0, cut
    /// `n` the block count): the first position whose blocks before it
    /// weigh at least `i / n` of the chain's signatures (each block's
    /// transactions and its own).
    fn cut(&self, i: u32, n: u32) -> u64 {
        let weight = |b: &Walked| u64::from(b.txs) + 1;
        let total: u128 = self.blocks.iter().map(|b| u128::from(weight(b))).sum();
        let target = total * u128::from(i) / u128::from(n.max(1));
        let mut done = 0u128;
        let mut position = 0u64;
        for b in &self.blocks {
            if done >= target {
                break;
            }
            done += u128::from(weight(b));
            position += 1;
        }
        position
    }

    /// The range of shard `i` of `n`, balanced by signatures; deterministic.
    /// `n` is checked ([`check_shard`]); nothing is allocated by `n`.
    pub fn shard_range(&self, i: u32, n: u32) -> Result<Range, ShardError> {
        check_shard(i, n).map_err(ShardError::Range)?;
        Ok(Range { start: self.cut(i, n), end: Some(self.cut(i + 1, n)) })
    }

    /// Range boundaries for `n` shards (`n + 1` positions from 0 to the
    /// block count), as [`Walk::shard_range`] cuts them; for `n` checked by
    /// the caller.
    pub fn shard_bounds(&self, n: u32) -> Vec<u64> {
        (0..=n).map(|i| self.cut(i, n)).collect()
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
        digests: None,
    };
    let mut seen = HashSet::new();
    for f in files {
        if !seen.insert(f) {
            return Err(InputError::Duplicate { path: f.clone(), first: f.clone() });
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
/// 2: each file's BLAKE3 in the header; blocks checked to tile each file.
const INDEX_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a vigil index ({problem})")]
    Invalid { path: PathBuf, problem: String },
    #[error("{path} was made for other files or versions of them ({problem}); run `vigil index` again")]
    Stale { path: PathBuf, problem: String },
    #[error("{path}: reading the chain to hash it: {source}")]
    Hash { path: PathBuf, source: InputError },
}

/// The header of an index file (JSON between the magic and the records).
#[derive(Debug, Serialize, Deserialize)]
struct IndexHeader {
    files: Vec<FileStamp>,
    chain_id: Option<String>,
    blocks: u64,
    between: u64,
    /// BLAKE3 of each file's bytes (hex), in `files` order.
    digests: Vec<String>,
}

impl Walk {
    /// Writes the walk as a sidecar index (`vigil index`): shards read it
    /// instead of walking the chain before their range. Binary: magic,
    /// version, a JSON header (files with sizes and modification times),
    /// 24 bytes a block, 20 an in-between item, 8 a file, then a BLAKE3 of
    /// all that; written atomically. The header holds each file's BLAKE3,
    /// hashed here in a pass of its own over the chain (on all cores, with
    /// `io`): an index is made once, and its shards check their whole files
    /// against it for free (they hash what they verify anyway).
    pub fn write_index(&self, path: &Path, io_mode: IoMode) -> Result<(), IndexError> {
        let io = |source| IndexError::Io { path: path.into(), source };
        let mut digests = Vec::with_capacity(self.files.len());
        for (f, &size) in self.files.iter().zip(&self.sizes) {
            let digest =
                hash_span(f, 0, size, io_mode).map_err(|source| IndexError::Hash { path: path.into(), source })?;
            digests.push(hex::encode(digest));
        }
        let header = IndexHeader {
            files: self.stamps(),
            chain_id: self.chain_id.map(hex::encode),
            blocks: self.blocks.len() as u64,
            between: self.between.len() as u64,
            digests,
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
        write_atomically(path, &out).map_err(io)
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
            return Err(invalid(&format!(
                "version {version}, this vigil reads version {INDEX_VERSION} only: run `vigil index` again"
            )));
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
        if let Some(problem) = untiled(&sizes, &blocks, &between) {
            return Err(invalid(&problem));
        }
        // Each file's first position: the blocks in the files before it.
        if file_anchor.iter().enumerate().any(|(f, &a)| a != blocks.partition_point(|b| (b.file as usize) < f) as u64) {
            return Err(invalid("a file's first position is not where its blocks are"));
        }
        if header.digests.len() != files.len() {
            return Err(invalid("not one digest per file"));
        }
        let digests = header
            .digests
            .iter()
            .map(|h| {
                hex::decode(h)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| invalid("a file digest is not 32 hex bytes"))
            })
            .collect::<Result<Vec<Digest>, _>>()?;
        let chain_id = match header.chain_id {
            Some(h) => Some(
                hex::decode(&h)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| invalid("chain id is not 32 hex bytes"))?,
            ),
            None => None,
        };
        let walk =
            Walk { files: files.to_vec(), sizes, blocks, between, file_anchor, chain_id, digests: Some(digests) };
        Ok((walk, header.files))
    }
}

/// How the blocks and in-between items of a walk (an index's) fail to tile
/// the files as framing does, or `None`: in each file, blocks back to back
/// from byte 0, then either the file's end or one in-between item (a
/// malformed tail, or an empty file) at the end of the last block, anchored
/// at the next file's first position. So an index can neither leave bytes
/// out (hiding a block at a file's end) nor move blocks; whether the bytes
/// there frame as it says is checked by the range that verifies them.
fn untiled(sizes: &[u64], blocks: &[Walked], between: &[Between]) -> Option<String> {
    // Where the next block of each file must start, and whether its tail
    // has been seen (nothing may follow it).
    let mut next = vec![0u64; sizes.len()];
    let mut closed = vec![false; sizes.len()];
    let mut last_file = 0u32;
    for (position, b) in blocks.iter().enumerate() {
        let f = b.file as usize;
        if b.file < last_file || b.offset != next[f] || b.len == 0 {
            return Some(format!("block at position {position} is not where framing puts it"));
        }
        last_file = b.file;
        next[f] = b.offset + b.len;
    }
    for t in between {
        let f = t.file as usize;
        if closed[f] || t.offset != next[f] {
            return Some(format!("an in-between item of file {f} is not at the end of its blocks"));
        }
        // Its anchor: the number of blocks in files up to this one.
        if t.anchor != blocks.partition_point(|b| b.file <= t.file) as u64 {
            return Some(format!("an in-between item of file {f} is anchored at the wrong position"));
        }
        closed[f] = true;
        next[f] = sizes[f];
    }
    (0..sizes.len())
        .find(|&f| next[f] != sizes[f] || (sizes[f] == 0 && !closed[f]))
        .map(|f| format!("file {f}'s blocks end at byte {}, not at its end ({} bytes)", next[f], sizes[f]))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, renamed
/// into place; on any failure the temporary file is removed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Bytes read at a time to hash a span with plain reads.
const HASH_CHUNK: u64 = 16 << 20;

/// BLAKE3 of bytes `start..end` of `path`, on all cores of the current
/// rayon pool: mapped (`IoMode::Mmap`, after checking the file is long
/// enough, as mapping past its end would fault) or read in chunks.
pub fn hash_span(path: &Path, start: u64, end: u64, io: IoMode) -> Result<Digest, InputError> {
    use std::io::{Read, Seek};
    let err = |e| crate::input::io_error(path)(e);
    let mut h = blake3::Hasher::new();
    if end > start {
        let mut file = std::fs::File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len < end {
            return Err(InputError::Changed { path: path.into(), expected: end });
        }
        match io {
            IoMode::Mmap => {
                let n = usize::try_from(end - start).map_err(|e| err(std::io::Error::other(e)))?;
                // Within the file's length; a file that shrinks while mapped
                // is reported by name, as when verifying (`input::sigbus`).
                let map = crate::input::Mapped::map_span(&file, path, start, n).map_err(err)?;
                h.update_rayon(&map);
            }
            IoMode::Read => {
                file.seek(std::io::SeekFrom::Start(start)).map_err(err)?;
                let mut buf = vec![0u8; HASH_CHUNK.min(end - start) as usize];
                let mut left = end - start;
                while left > 0 {
                    let n = HASH_CHUNK.min(left) as usize;
                    file.read_exact(&mut buf[..n]).map_err(|e| match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => InputError::Changed { path: path.into(), expected: end },
                        _ => err(e),
                    })?;
                    h.update_rayon(&buf[..n]);
                    left -= n as u64;
                }
            }
        }
    }
    Ok(*h.finalize().as_bytes())
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
    /// The bytes the range verified: per file touched, the span and its
    /// BLAKE3. The ranges of one chain tile every file exactly.
    pub spans: Vec<SpanDigest>,
    /// BLAKE3 (hex) of this summary's compact JSON with `checksum` empty:
    /// set by [`write_summary`], checked by [`read_summary`]. It catches
    /// accidental edits and damage; it is not a signature (anyone can
    /// recompute it).
    pub checksum: String,
}

/// Bytes `start..end` of file `file` (an index into `input.files`), and
/// their BLAKE3 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanDigest {
    pub file: u32,
    pub start: u64,
    pub end: u64,
    pub blake3: String,
}

/// Why a range could not be verified into a summary.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// A range or shard outside the chain.
    #[error("{0}")]
    Range(String),
    /// The chain's bytes are not where the walk or index said, or changed
    /// during the run.
    #[error("{0}")]
    Mismatch(String),
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
fn short_of_the_end(walk: &Walk, spans: &[(u32, u64, u64)]) -> Option<String> {
    let &(first, ..) = spans.first()?;
    let mut expect = spans.iter().map(|s| (s.0, (s.1, s.2)));
    for f in first..walk.files.len() as u32 {
        let size = walk.sizes[f as usize];
        let name = walk.files[f as usize].display();
        match expect.next() {
            Some((file, (start, end))) if file == f && end == size && (f == first || start == 0) => {}
            Some((file, (_, end))) if file == f => {
                return Some(format!("the blocks read end at byte {end} of {name}, not at its end ({size} bytes)"));
            }
            _ => return Some(format!("no block of {name} was read, though the range runs to the chain's end")),
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
    misplaced: Option<String>,
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

    fn misplaced(&mut self, problem: String) {
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
            self.misplaced(format!(
                "a block at byte {} of {} (position {}) is not where the walk or index put it",
                r.offset,
                r.file.display(),
                r.position
            ));
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
            self.misplaced(format!(
                "a malformed block at byte {} of {} is not where the walk or index put it",
                m.offset,
                m.file.display()
            ));
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
        return Err(ShardError::Range(format!(
            "the range starts at position {}, past the chain's {} blocks",
            range.start,
            walk.blocks()
        )));
    }
    let range = range.normalized(walk);
    let input = Input::new(walk, &opts);
    let (spans, files) = plan(walk, range);
    if range.end.is_none()
        && let Some(problem) = short_of_the_end(walk, &spans)
    {
        return Err(ShardError::Mismatch(format!("{problem}: the index does not describe this chain")));
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
            return Err(ShardError::Mismatch(format!(
                "{}: its bytes are not those the index was made from; run `vigil index` again",
                path.display()
            )));
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
        return Err(ShardError::Mismatch(format!(
            "{problem}: the index (or the walk, if the chain changed since) does not describe the chain's bytes"
        )));
    }
    if (c.seen, summary.malformed) != (expected, expected_malformed) {
        return Err(ShardError::Mismatch(format!(
            "{} blocks and {} malformed were read where the walk or index has {expected} and {expected_malformed}",
            c.seen, summary.malformed
        )));
    }
    if let Some(problem) = first_change(&input.files, &walk.files) {
        return Err(ShardError::Mismatch(format!("{problem} during the run: verify again")));
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

/// The checksum of `summary`: BLAKE3 of its compact JSON with `checksum`
/// empty (a JSON round trip gives the same bytes, so a reader recomputes it
/// from what it parsed, whatever the file's layout).
/// The checksum [`write_summary`] records and [`read_summary`] checks:
/// BLAKE3 of the summary's JSON with an empty `checksum` field. It catches
/// accidental edits; anyone can recompute it (docs/SHARDS.md).
pub fn checksum(summary: &ShardSummary) -> String {
    let unsummed = ShardSummary { checksum: String::new(), ..summary.clone() };
    let json = serde_json::to_vec(&unsummed).expect("a summary serializes");
    blake3::hash(&json).to_hex().to_string()
}

/// Writes `summary` to `path` atomically (a temporary file renamed; removed
/// if the write fails), with its checksum.
pub fn write_summary(path: &Path, summary: &ShardSummary) -> std::io::Result<()> {
    let summed = ShardSummary { checksum: checksum(summary), ..summary.clone() };
    let json = serde_json::to_vec_pretty(&summed).map_err(std::io::Error::other)?;
    write_atomically(path, &json)
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a vigil shard summary: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// Reads a summary written by [`write_summary`]: its format and version
/// first (an older version is refused by name), then its checksum and the
/// numbers the stitch relies on.
pub fn read_summary(path: &Path) -> Result<ShardSummary, SummaryError> {
    let bytes = std::fs::read(path).map_err(|source| SummaryError::Read { path: path.into(), source })?;
    parse_summary(path, &bytes)
}

/// Decodes a summary's bytes (what [`read_summary`] read); `path` names it
/// in errors. Reads no file: the fuzz targets in `fuzz/` feed it any bytes.
pub fn parse_summary(path: &Path, bytes: &[u8]) -> Result<ShardSummary, SummaryError> {
    let invalid = |problem: String| SummaryError::Invalid { path: path.into(), problem };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let (format, version) = (&value["format"], &value["version"]);
    if format.as_str() != Some(SUMMARY_FORMAT) {
        return Err(invalid(format!("format {format}, expected {SUMMARY_FORMAT:?}")));
    }
    if version.as_u64() != Some(u64::from(SUMMARY_VERSION)) {
        return Err(invalid(format!(
            "version {version}, this vigil reads version {SUMMARY_VERSION} only (summaries from an older vigil \
             carry no digest of their bytes): verify the range again"
        )));
    }
    let s: ShardSummary = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    if checksum(&s) != s.checksum {
        return Err(invalid("checksum mismatch: the summary was edited or damaged since it was written".into()));
    }
    if let Some((i, n)) = s.shard {
        check_shard(i, n).map_err(|e| invalid(format!("shard: {e}")))?;
    }
    if s.range.end.is_some_and(|e| e < s.range.start) {
        return Err(invalid(format!("range {} ends before it starts", s.range)));
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
    /// The summaries' spans do not cover every byte of the chain once.
    #[error("the summaries do not cover the chain's bytes exactly: {0}")]
    Untiled(String),
    /// A total does not fit in 64 bits: some summary's numbers are not a
    /// real range's.
    #[error("{path}: the total {what} overflows with this summary's {value}")]
    Overflow { path: PathBuf, what: &'static str, value: u64 },
    /// `--chain` is not the chain the summaries describe.
    #[error("--chain: {0}")]
    Chain(String),
    /// A summary whose byte digest is not the chain's.
    #[error(
        "{path} was made from other bytes than {file} holds (bytes {start}..{end} differ): verify that range again on this chain"
    )]
    Bytes { path: PathBuf, file: PathBuf, start: u64, end: u64 },
    /// The ranges' counts do not add up to the chain's.
    #[error("the summaries do not add up: {0}")]
    Counts(String),
    #[error(transparent)]
    Input(#[from] InputError),
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
                return Err(StitchError::Untiled(format!(
                    "{} covers bytes {start}..{end} of {}, where bytes {next}.. come next",
                    p.display(),
                    stamp.path
                )));
            }
            next = end;
        }
        if next != stamp.size {
            return Err(StitchError::Untiled(format!(
                "bytes {next}..{} of {} are in no summary",
                stamp.size, stamp.path
            )));
        }
    }
    if let Some((f, _, _, p)) = spans.next() {
        return Err(StitchError::Untiled(format!("{} names file {f}, which the input does not have", p.display())));
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
        return Err(StitchError::Chain(format!(
            "{} files given, the summaries describe {}",
            chain.len(),
            input.files.len()
        )));
    }
    for (file, stamp) in chain.iter().zip(&input.files) {
        let size = std::fs::metadata(file).map_err(crate::input::io_error(file))?.len();
        if size != stamp.size {
            return Err(StitchError::Chain(format!(
                "{} has {size} bytes, the summaries' {} has {}",
                file.display(),
                stamp.path,
                stamp.size
            )));
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
    check_tiling(&input, &loaded)?;
    if let Some((chain, io)) = chain {
        check_bytes(&input, &loaded, chain, io)?;
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
                        .map_err(|e| StitchError::Inconsistent { path: p.clone(), problem: e.to_string() })?;
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
        totals.seconds = totals.seconds.max(s.seconds);
    }
    // The ranges' counts add up to the chain's, as the walks saw it.
    if (totals.blocks, totals.transactions, totals.files)
        != (input.blocks, input.transactions, input.files.len() as u64)
    {
        return Err(StitchError::Counts(format!(
            "the summaries hold {} blocks, {} transactions in {} files; their input has {}, {} in {}",
            totals.blocks,
            totals.transactions,
            totals.files,
            input.blocks,
            input.transactions,
            input.files.len()
        )));
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
    Ok(Stitched { events: keyed.into_iter().map(|(_, e)| e).collect(), summary: totals })
}
