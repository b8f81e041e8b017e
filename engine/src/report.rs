//! What verification reports: rule names exactly as FORMAT.md gives them,
//! per-block failures, malformed blocks and the run's summary.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::format::Malformation;
use crate::hash::Digest;
use std::path::Path;
use std::sync::Arc;

pub use vigil_format::{Rule, UnknownRule};

/// One rule a block breaks. `tx` is the transaction's index in its block,
/// for per-transaction rules only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The rule broken.
    pub rule: Rule,
    /// The transaction's index in its block (per-transaction rules), else `None`.
    pub tx: Option<u32>,
    /// What was found against what was expected, for people.
    pub detail: String,
}

/// The verdict on one well-formed block.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlockReport {
    /// The segment file holding the block, as given.
    pub file: Arc<Path>,
    /// Byte offset of the block in its file.
    pub offset: u64,
    /// 0-based index of the block among the well-formed blocks of the run.
    pub position: u64,
    /// The height stored in the header.
    pub height: u64,
    /// The block hash, as computed.
    pub hash: Digest,
    /// The parent hash stored in the header.
    pub prev_hash: Digest,
    /// The header's `timestamp_ms`.
    pub timestamp_ms: u64,
    /// The header's `tx_count`.
    pub tx_count: u32,
    /// Every rule the block breaks, in FORMAT.md's order; empty when valid.
    pub failures: Vec<Failure>,
}

impl BlockReport {
    /// Whether the block breaks no rule.
    pub fn valid(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A block that could not be framed; it ends its file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MalformedReport {
    /// The segment file, as given.
    pub file: Arc<Path>,
    /// Byte offset of the block in the file.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: Malformation,
}

/// A block named by its stored height and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// The height stored in its header.
    pub height: u64,
    /// Its block hash.
    pub hash: Digest,
}

/// A file whose first well-formed block does not continue the last
/// well-formed block of the file before it (files out of order, or one
/// missing): told once, before that block's report (whose link failures
/// are reported as usual).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discontinuity {
    /// The file whose first block does not continue.
    pub file: Arc<Path>,
    /// The block's byte offset in `file`.
    pub offset: u64,
    /// The file holding the block it was checked against.
    pub previous_file: Arc<Path>,
    /// That block: the one this block should continue.
    pub parent: BlockRef,
    /// What this block stores.
    pub height: u64,
    /// The parent hash it stores.
    pub prev_hash: Digest,
}

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The chain's id: pinned, or the first well-formed block's.
    pub chain_id: Option<Digest>,
    /// The first and last well-formed blocks checked.
    pub first: Option<BlockRef>,
    /// See `first`.
    pub last: Option<BlockRef>,
    /// Segment files (or streams) read.
    pub files: u64,
    /// Well-formed blocks checked.
    pub blocks: u64,
    /// Well-formed blocks that break at least one rule.
    pub invalid_blocks: u64,
    /// Malformed blocks (each ends its file).
    pub malformed: u64,
    /// Transactions in the well-formed blocks.
    pub transactions: u64,
    /// Signatures checked: every transaction's and every block's.
    pub signatures: u64,
    /// Bytes of the files read.
    pub bytes: u64,
    /// Wall-clock seconds since the verifier was created.
    pub seconds: f64,
}

impl Summary {
    /// Whether the chain is valid: no invalid and no malformed block.
    pub fn valid(&self) -> bool {
        self.invalid_blocks == 0 && self.malformed == 0
    }
}

/// A sender's first transaction in a run. When the run starts mid-chain its
/// nonce is left to `vigil stitch`, which checks it against the ranges
/// before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderFirst {
    /// The sender's public key.
    pub sender: [u8; 32],
    /// Chain position of its block, and its index there.
    pub position: u64,
    /// See `position`.
    pub tx: u32,
    /// The nonce it carries.
    pub nonce: u64,
}

/// Where reports go, in chain order. The CLI prints them; a node collects
/// them.
pub trait ReportSink {
    /// The verdict on a well-formed block.
    fn block(&mut self, report: &BlockReport);
    /// A block that could not be framed (nothing after it in its file is
    /// checked).
    fn malformed(&mut self, report: &MalformedReport);
    /// Senders' first transactions in the run (in a mid-chain run, nonces
    /// unchecked), told before the reports of the blocks holding them.
    fn first_nonces(&mut self, _firsts: &[SenderFirst]) {}
    /// A file that does not continue the one before it (see
    /// [`Discontinuity`]).
    fn discontinuity(&mut self, _report: &Discontinuity) {}
    /// Called after each batch with running totals.
    fn progress(&mut self, _totals: &Summary) {}
    /// Asked after each batch (its reports given, [`ReportSink::progress`]
    /// called): go on, go on after a checkpoint, or stop here.
    fn after_batch(&mut self) -> Flow {
        Flow::Continue
    }
    /// The checkpoint asked for with [`Flow::Checkpoint`] (or why none
    /// could be made).
    fn checkpoint(&mut self, _state: Result<Checkpoint, CheckpointError>) {}
}

/// What a [`ReportSink`] wants after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flow {
    /// Go on.
    Continue,
    /// Hand [`ReportSink::checkpoint`] the state after this batch, then go
    /// on.
    Checkpoint,
    /// Stop after this batch (the verifier's run returns, with
    /// [`crate::Verifier::stopped`] set; batches read ahead are dropped).
    Stop,
}

/// A sink that keeps every report, for tests and embedding.
#[derive(Debug, Default)]
pub struct CollectSink {
    /// Every [`ReportSink::block`] report, in order.
    pub blocks: Vec<BlockReport>,
    /// Every [`ReportSink::malformed`] report, in order.
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
