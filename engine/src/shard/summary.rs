//! The range summary schema (`verify --summary FILE`, JSON via serde): what
//! one range leaves for the stitch, and its reading and writing.

use super::files::{FileStamp, first_change, write_atomically};
use super::range::{Range, ShardSpecError, check_shard};
use super::walk::Walk;
use crate::verify::VerifyOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` field of every summary.
pub const SUMMARY_FORMAT: &str = "vigil-shard-summary";

/// 2: byte digests (`spans`) and the summary's own `checksum`.
pub const SUMMARY_VERSION: u32 = 2;

/// What a summary was computed from: two summaries stitch only when these
/// are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The chain's files, in order.
    pub files: Vec<FileStamp>,
    /// Well-formed blocks and transactions in the whole chain (the walk).
    pub blocks: u64,
    /// Transactions in those blocks.
    pub transactions: u64,
    /// The chain's id (pinned, or the first block's); hex.
    pub chain_id: Option<String>,
    /// Signature rules and the authority set (BLAKE3 of the sorted keys).
    pub rules: String,
    /// BLAKE3 (hex) of the sorted authority keys, when a set is given.
    pub authorities: Option<String>,
}

impl Input {
    /// What a range of `walk` verified with `opts` is computed from.
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

/// A block at a range's edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Its position.
    pub position: u64,
    /// Its height.
    pub height: u64,
    /// Its hash (hex).
    pub hash: String,
    /// Its parent's hash as it names it (hex).
    pub prev_hash: String,
    /// Its timestamp, milliseconds.
    pub timestamp_ms: u64,
}

/// A sender seen in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderEntry {
    /// The sender's public key (hex).
    pub key: String,
    /// Its first transaction in the range, `[position, tx index, nonce]`;
    /// its nonce is left to the stitch in ranges that start mid-chain.
    pub first: Option<(u64, u32, u64)>,
    /// The nonce expected next after the range (`None`: none is valid).
    pub next: Option<u64>,
}

/// A rule a block fails, as a summary records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureEntry {
    /// The rule's name (as `vigil verify` prints it).
    pub rule: String,
    /// The transaction's index in its block, or `None` for a block rule.
    pub tx: Option<u32>,
    /// What failed.
    pub detail: String,
}

/// A block the stitch needs: one with failures, the range's first, or one
/// holding a sender's first transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// Index into `input.files`.
    pub file: u32,
    /// Its offset in the file.
    pub offset: u64,
    /// Its position.
    pub position: u64,
    /// Its height.
    pub height: u64,
    /// Its hash (hex).
    pub hash: String,
    /// Its transaction count.
    pub tx_count: u32,
    /// The rules it fails, in the verifier's order.
    pub failures: Vec<FailureEntry>,
}

/// A malformed block in the range (it ends its file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedEntry {
    /// Index into `input.files`.
    pub file: u32,
    /// Its offset in the file.
    pub offset: u64,
    /// Why it does not frame.
    pub detail: String,
}

/// A range's counts; the stitch sums them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Files counted (those whose first item is in the range).
    pub files: u64,
    /// Well-formed blocks verified.
    pub blocks: u64,
    /// Malformed blocks.
    pub malformed: u64,
    /// Transactions verified.
    pub transactions: u64,
    /// Signatures checked: every transaction's and every block's.
    pub signatures: u64,
    /// Bytes of the files read.
    pub bytes: u64,
}

/// What one range leaves for the stitch (`--summary FILE`), JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// Always [`SUMMARY_FORMAT`].
    pub format: String,
    /// Always [`SUMMARY_VERSION`].
    pub version: u32,
    /// What the range was computed from.
    pub input: Input,
    /// The range verified (its end normalized: `None` to the chain's end).
    pub range: Range,
    /// `[index, count]` when the range is a shard.
    pub shard: Option<(u32, u32)>,
    /// The range's first block.
    pub first: Option<Edge>,
    /// The range's last block.
    pub last: Option<Edge>,
    /// Every sender seen in the range, sorted by key.
    pub senders: Vec<SenderEntry>,
    /// The blocks the stitch needs.
    pub blocks: Vec<BlockEntry>,
    /// The malformed blocks in the range.
    pub malformed: Vec<MalformedEntry>,
    /// The range's counts.
    pub totals: Totals,
    /// Seconds the range took to verify.
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
    /// Index into `input.files`.
    pub file: u32,
    /// The span's first byte.
    pub start: u64,
    /// The byte past the span.
    pub end: u64,
    /// BLAKE3 of the span (hex).
    pub blake3: String,
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

/// Why a summary could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Read {
        /// The summary file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a summary this vigil reads, or is damaged.
    #[error("{path}: not a vigil shard summary: {problem}")]
    Invalid {
        /// The summary file.
        path: PathBuf,
        /// What is wrong with it.
        problem: SummaryProblem,
    },
}

/// What makes bytes not a valid summary ([`SummaryError::Invalid`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryProblem {
    /// Not JSON, or not the schema.
    #[error("{0}")]
    Json(serde_json::Error),
    /// Another `format` than [`SUMMARY_FORMAT`].
    #[error("format {format}, expected {SUMMARY_FORMAT:?}")]
    Format {
        /// The `format` field as found (JSON).
        format: serde_json::Value,
    },
    /// Another `version` than [`SUMMARY_VERSION`].
    #[error(
        "version {version}, this vigil reads version {SUMMARY_VERSION} only (summaries from an older vigil carry no \
         digest of their bytes): verify the range again"
    )]
    Version {
        /// The `version` field as found (JSON).
        version: serde_json::Value,
    },
    /// The checksum does not match the contents.
    #[error("checksum mismatch: the summary was edited or damaged since it was written")]
    Checksum,
    /// A shard spec out of bounds.
    #[error("shard: {0}")]
    Shard(ShardSpecError),
    /// A range that ends before it starts.
    #[error("range {range} ends before it starts")]
    Backwards {
        /// The range.
        range: Range,
    },
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
    let invalid = |problem: SummaryProblem| SummaryError::Invalid { path: path.into(), problem };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid(SummaryProblem::Json(e)))?;
    let (format, version) = (&value["format"], &value["version"]);
    if format.as_str() != Some(SUMMARY_FORMAT) {
        return Err(invalid(SummaryProblem::Format { format: format.clone() }));
    }
    if version.as_u64() != Some(u64::from(SUMMARY_VERSION)) {
        return Err(invalid(SummaryProblem::Version { version: version.clone() }));
    }
    let s: ShardSummary = serde_json::from_value(value).map_err(|e| invalid(SummaryProblem::Json(e)))?;
    if checksum(&s) != s.checksum {
        return Err(invalid(SummaryProblem::Checksum));
    }
    if let Some((i, n)) = s.shard {
        check_shard(i, n).map_err(|e| invalid(SummaryProblem::Shard(e)))?;
    }
    if s.range.end.is_some_and(|e| e < s.range.start) {
        return Err(invalid(SummaryProblem::Backwards { range: s.range }));
    }
    Ok(s)
}
