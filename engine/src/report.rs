//! What verification reports: rule names exactly as FORMAT.md gives them,
//! per-block failures, malformed blocks and the run's summary.

use crate::format::Malformation;
use crate::hash::Digest;
use std::path::Path;
use std::sync::Arc;

pub use vigil_format::{Rule, UnknownRule};

/// One rule a block breaks. `tx` is the transaction's index in its block,
/// for per-transaction rules only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub rule: Rule,
    pub tx: Option<u32>,
    pub detail: String,
}

/// The verdict on one well-formed block.
#[derive(Debug, Clone)]
pub struct BlockReport {
    pub file: Arc<Path>,
    /// Byte offset of the block in its file.
    pub offset: u64,
    /// 0-based index of the block among the well-formed blocks of the run.
    pub position: u64,
    /// The height stored in the header.
    pub height: u64,
    pub hash: Digest,
    pub prev_hash: Digest,
    pub timestamp_ms: u64,
    pub tx_count: u32,
    pub failures: Vec<Failure>,
}

impl BlockReport {
    pub fn valid(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A block that could not be framed; it ends its file.
#[derive(Debug, Clone)]
pub struct MalformedReport {
    pub file: Arc<Path>,
    pub offset: u64,
    pub reason: Malformation,
}

/// A block named by its stored height and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub height: u64,
    pub hash: Digest,
}

/// A file whose first well-formed block does not continue the last
/// well-formed block of the file before it (files out of order, or one
/// missing): told once, before that block's report (whose link failures
/// are reported as usual).
#[derive(Debug, Clone)]
pub struct Discontinuity {
    pub file: Arc<Path>,
    /// The block's byte offset in `file`.
    pub offset: u64,
    /// The file holding the block it was checked against.
    pub previous_file: Arc<Path>,
    /// That block: the one this block should continue.
    pub parent: BlockRef,
    /// What this block stores.
    pub height: u64,
    pub prev_hash: Digest,
}

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The chain's id: pinned, or the first well-formed block's.
    pub chain_id: Option<Digest>,
    /// The first and last well-formed blocks checked.
    pub first: Option<BlockRef>,
    pub last: Option<BlockRef>,
    pub files: u64,
    /// Well-formed blocks checked.
    pub blocks: u64,
    /// Well-formed blocks that break at least one rule.
    pub invalid_blocks: u64,
    /// Malformed blocks (each ends its file).
    pub malformed: u64,
    pub transactions: u64,
    /// Signatures checked: every transaction's and every block's.
    pub signatures: u64,
    /// Bytes of the files read.
    pub bytes: u64,
    pub seconds: f64,
}

impl Summary {
    pub fn valid(&self) -> bool {
        self.invalid_blocks == 0 && self.malformed == 0
    }
}

/// A sender's first transaction in a run. When the run starts mid-chain its
/// nonce is left to `vigil stitch`, which checks it against the ranges
/// before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderFirst {
    pub sender: [u8; 32],
    /// Chain position of its block, and its index there.
    pub position: u64,
    pub tx: u32,
    pub nonce: u64,
}

/// Where reports go, in chain order. The CLI prints them; a node collects
/// them.
pub trait ReportSink {
    fn block(&mut self, report: &BlockReport);
    fn malformed(&mut self, report: &MalformedReport);
    /// Senders' first transactions in the run (in a mid-chain run, nonces
    /// unchecked), told before the reports of the blocks holding them.
    fn first_nonces(&mut self, _firsts: &[SenderFirst]) {}
    /// A file that does not continue the one before it (see
    /// [`Discontinuity`]).
    fn discontinuity(&mut self, _report: &Discontinuity) {}
    /// Called after each batch with running totals.
    fn progress(&mut self, _totals: &Summary) {}
}

/// A sink that keeps every report, for tests and embedding.
#[derive(Debug, Default)]
pub struct CollectSink {
    pub blocks: Vec<BlockReport>,
    pub malformed: Vec<MalformedReport>,
}

impl ReportSink for CollectSink {
    fn block(&mut self, report: &BlockReport) {
        self.blocks.push(report.clone());
    }
    fn malformed(&mut self, report: &MalformedReport) {
        self.malformed.push(report.clone());
    }
}
