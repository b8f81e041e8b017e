//! The verifier: a pipeline of stages joined by bounded channels, so memory
//! stays flat whatever the chain's size and a slow stage holds the others
//! back.
//!
//! ```text
//! frame ─▶ hash ─▶ signatures ─▶ chain rules + reports (caller's thread)
//! (each its own thread; the heavy parts on rayon workers)
//! ```
//!
//! - **frame** (`frame.rs`) cuts segment files into batches of many blocks:
//!   at most `max_batch_txs` transactions and about `max_batch_bytes`
//!   (a single larger block forms a batch of its own); block bodies are
//!   walked on all cores.
//! - **hash** computes every tx_id, leaf, Merkle root and block hash.
//! - **signatures** verifies all the batch's signatures together
//!   (transactions' and blocks'), so signature batches span many blocks.
//!   Its own stage, so that while a GPU verifies one batch the cores hash
//!   the next.
//! - **chain rules** applies links, heights, timestamps and nonces (sharded
//!   by sender across cores) in chain order and hands each verdict to the
//!   [`ReportSink`]; in mmap mode it then releases the batch's pages.
//!
//! Mapped files must not shrink while they are verified: the kernel answers
//! a read past the new end with SIGBUS, which is not caught.
//! `IoMode::Read` (`--no-mmap`) reads with plain `read` calls instead, and a
//! file that changes size under it is reported as an I/O error naming it.

use crate::chain::{BlockFacts, BlockSignatureFault, ChainState, NonceMiss};
use crate::checkpoint::{Checkpoint, CheckpointError, Marks};
use crate::format::BlockView;
use crate::frame::{Batch, Limits, Source, frame_all};
use crate::hash::{self, Digest};
use crate::in_pool;
use crate::input::{ChainInput, InputError, IoMode};
use crate::report::{
    BlockRef, BlockReport, Discontinuity, Flow, MalformedReport, ReportSink, Rule, SenderFirst, Summary,
};
pub use crate::sig::GpuMode;
use crate::sig::{RuleSet, SharedSigner, SigItem, Signer, SignerConfig, SignerStats};
use crossbeam_channel::bounded;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

/// How a [`Verifier`] checks a chain. `Default` is what `vigil verify` does
/// without flags: zip215, files read as the input layer picks, the batch
/// size learned, rayon's global pool, no GPU, a whole chain from its start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Pin the chain id instead of taking the first block's.
    pub chain_id: Option<Digest>,
    /// When set, every block's proposer must be one of these keys.
    pub authorities: Option<HashSet<[u8; 32]>>,
    /// How input files are read (memory-mapped or streamed).
    pub io: IoMode,
    /// Signature rules; chains in format v1 use zip215 (strict is a
    /// stricter audit, not the chain's rule).
    pub rules: RuleSet,
    /// Worker threads of the hash and signature stages (default: rayon's
    /// global pool).
    pub threads: Option<usize>,
    /// What verifies the signatures: the CPU (its batch size learned or
    /// fixed), a GPU, or both ([`Verifier::new`] makes a [`Signer`] of it).
    pub signer: SignerConfig,
    /// Transactions and bytes a batch holds at most; `None`: by backend
    /// (32 Ki transactions and 32 MiB on the CPU; 256 Ki and 128 MiB with a
    /// GPU, whose dispatches need hundreds of thousands of signatures to
    /// fill a large device).
    pub max_batch_txs: Option<usize>,
    /// Bytes of block data a batch holds at most; see `max_batch_txs`.
    pub max_batch_bytes: Option<usize>,
    /// Chain position of the run's first block (a range of a longer chain).
    pub first_position: u64,
    /// The run starts mid-chain: its first block's links and each sender's
    /// first nonce are left to `vigil stitch` (told to the sink).
    pub mid_chain: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            chain_id: None,
            authorities: None,
            io: IoMode::default(),
            rules: RuleSet::Zip215,
            threads: None,
            signer: SignerConfig::default(),
            max_batch_txs: None,
            max_batch_bytes: None,
            first_position: 0,
            mid_chain: false,
        }
    }
}

/// Batches in flight between two stages.
const QUEUE: usize = 2;
/// Transactions hashed together by one task.
const HASH_GROUP: usize = 512;

/// What the hash stage found for a batch.
struct Hashed {
    /// (block hash, computed Merkle root) per block.
    digests: Vec<(Digest, Digest)>,
    tx_ids: Vec<Digest>,
}

/// What the hash and signature stages found for a batch.
struct Computed {
    /// (block hash, computed Merkle root) per block.
    digests: Vec<(Digest, Digest)>,
    tx_ok: Vec<bool>,
    block_ok: Vec<bool>,
}

/// Verifies a chain, carrying chain state across calls.
pub struct Verifier {
    opts: VerifyOptions,
    pool: Option<rayon::ThreadPool>,
    chain: ChainState,
    totals: Summary,
    started: Instant,
    /// Verifies the signatures (and learns how best to), perhaps shared.
    signer: SharedSigner,
    /// The file of the last well-formed block: a block from another file
    /// is its file's first, checked for continuing it.
    tip_file: Option<Arc<Path>>,
    /// How far through which files, for checkpoints.
    marks: Marks,
    /// A sink said [`Flow::Stop`].
    stopped: bool,
    /// The last file counted in the totals.
    counted: Option<Arc<Path>>,
}

impl Verifier {
    /// A verifier with a signer of its own, made from `opts.signer`.
    pub fn new(opts: VerifyOptions) -> Self {
        let signer = Signer::new(opts.signer.clone()).shared();
        Verifier::with_signer(opts, signer)
    }

    /// A verifier whose signatures go through `signer` (shared with other
    /// users, one batch at a time: what it learns serves them all);
    /// `opts.signer` is then not used.
    pub fn with_signer(opts: VerifyOptions, signer: SharedSigner) -> Self {
        let pool = opts.threads.and_then(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().ok());
        Verifier {
            chain: if opts.mid_chain { ChainState::mid_chain(opts.chain_id) } else { ChainState::new(opts.chain_id) },
            signer,
            pool,
            tip_file: None,
            marks: Marks::default(),
            stopped: false,
            counted: None,
            totals: Summary::default(),
            started: Instant::now(),
            opts,
        }
    }

    /// A verifier that continues from `checkpoint`: its chain state, block
    /// positions and file marks. `files` are the chain's files as this run
    /// names them, the checkpoint's first (check them with
    /// [`crate::checkpoint::Resume::plan`], and verify what it returns).
    pub fn resume(mut opts: VerifyOptions, checkpoint: &Checkpoint, files: &[PathBuf]) -> Self {
        opts.first_position = checkpoint.blocks;
        opts.mid_chain = false;
        let mut verifier = Verifier::new(opts);
        verifier.chain = checkpoint.chain_state();
        verifier.marks = Marks::resumed(checkpoint, files);
        verifier.tip_file = verifier.marks.tip_file();
        verifier
    }

    /// The checkpoint after the last batch verified (the files behind it
    /// digested; those passed whole only once).
    pub fn checkpoint(&mut self) -> Result<Checkpoint, CheckpointError> {
        let Verifier { marks, chain, opts, totals, .. } = self;
        marks.checkpoint(chain, opts.rules, opts.authorities.as_ref(), totals.blocks, totals.transactions, opts.io)
    }

    /// Where the run has got: the file being read, the end of its last
    /// well-formed block, and the end of the bytes accounted for (past it
    /// when a malformed block ended the file).
    pub fn position(&self) -> Option<(Arc<Path>, u64, u64)> {
        self.marks.position()
    }

    /// Whether the last run stopped early because its sink said
    /// [`Flow::Stop`].
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The chain state so far.
    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// The signer its signatures go through.
    pub fn signer(&self) -> &SharedSigner {
        &self.signer
    }

    /// The signer's counters so far (GPU calls, failures, fallbacks).
    pub fn signer_stats(&self) -> SignerStats {
        self.signer.lock().unwrap_or_else(PoisonError::into_inner).stats()
    }

    /// Totals so far (`seconds` since the verifier was created).
    pub fn summary(&self) -> Summary {
        Summary { seconds: self.started.elapsed().as_secs_f64(), chain_id: self.chain.chain_id, ..self.totals.clone() }
    }

    /// Verifies `files` in order as one chain.
    pub fn verify_files(&mut self, files: &[PathBuf], sink: &mut dyn ReportSink) -> Result<Summary, InputError> {
        let sources: Vec<Source<'_>> = files.iter().map(|f| Source::File(f)).collect();
        self.run(&sources, sink)?;
        Ok(self.summary())
    }

    /// Verifies `inputs` (files and streams, from [`crate::expand_inputs`])
    /// in order as one chain.
    pub fn verify_inputs(&mut self, inputs: &[ChainInput], sink: &mut dyn ReportSink) -> Result<Summary, InputError> {
        let sources: Vec<Source<'_>> = inputs
            .iter()
            .map(|input| match input {
                ChainInput::File(f) => Source::File(f),
                ChainInput::Stream(s) => Source::Stream(s),
            })
            .collect();
        self.run(&sources, sink)?;
        Ok(self.summary())
    }

    /// Verifies one segment file, continuing the chain.
    pub fn verify_file(&mut self, path: &Path, sink: &mut dyn ReportSink) -> Result<(), InputError> {
        self.run(&[Source::File(path)], sink)
    }

    /// Verifies one segment file's bytes held in memory (a node's block
    /// buffer, a test's mutated copy), continuing the chain. `name` is what
    /// reports call the file.
    pub fn verify_bytes(&mut self, name: &Path, data: &[u8], sink: &mut dyn ReportSink) {
        self.run(&[Source::Bytes(name, data)], sink).expect("in-memory input has no I/O errors");
    }

    /// Verifies `sources` (whole files, parts of files, bytes) in order,
    /// continuing the chain.
    pub fn run_sources(&mut self, sources: &[Source<'_>], sink: &mut dyn ReportSink) -> Result<Summary, InputError> {
        self.run(sources, sink)?;
        Ok(self.summary())
    }

    fn run(&mut self, sources: &[Source<'_>], sink: &mut dyn ReportSink) -> Result<(), InputError> {
        self.stopped = false;
        let backend = self.signer.lock().unwrap_or_else(PoisonError::into_inner).config().clone();
        let limits = Limits {
            txs: self.opts.max_batch_txs.unwrap_or(if backend.has_gpu() { 256 << 10 } else { 32 << 10 }),
            bytes: self.opts.max_batch_bytes.unwrap_or(if backend.has_gpu() { 128 << 20 } else { 32 << 20 }),
        };
        let (io, rules) = (self.opts.io, self.opts.rules);
        let Verifier { pool, signer, .. } = self;
        let (pool, signer) = (&*pool, &*signer);
        let wall = Instant::now();
        std::thread::scope(|scope| {
            let (framed_tx, framed_rx) = bounded(QUEUE);
            let (hashed_tx, hashed_rx) = bounded(QUEUE);
            let (computed_tx, computed_rx) = bounded(QUEUE);
            let framer = scope.spawn(move || {
                let (started, mut waiting) = (Instant::now(), Duration::ZERO);
                frame_all(sources, io, limits, pool.as_ref(), |batch| {
                    let t = Instant::now();
                    let sent = framed_tx.send(batch).is_ok();
                    waiting += t.elapsed();
                    sent
                });
                started.elapsed().saturating_sub(waiting)
            });
            let hasher = scope.spawn(move || {
                let mut busy = Duration::ZERO;
                for batch in framed_rx {
                    let t = Instant::now();
                    let item = batch.map(|batch: Batch<'_>| {
                        let hashed = in_pool(pool.as_ref(), || hash_batch(&batch));
                        (batch, hashed)
                    });
                    busy += t.elapsed();
                    if hashed_tx.send(item).is_err() {
                        break;
                    }
                }
                busy
            });
            let sig_stage = scope.spawn(move || {
                let mut busy = Duration::ZERO;
                for item in hashed_rx {
                    let t = Instant::now();
                    let item = item.map(|(batch, hashed): (Batch<'_>, Hashed)| {
                        let mut guard = signer.lock().unwrap_or_else(PoisonError::into_inner);
                        let signer: &mut Signer = &mut guard;
                        let computed = in_pool(pool.as_ref(), || verify_batch(&batch, hashed, rules, signer));
                        (batch, computed)
                    });
                    busy += t.elapsed();
                    if computed_tx.send(item).is_err() {
                        break;
                    }
                }
                busy
            });
            let mut chain = Duration::ZERO;
            for item in computed_rx {
                let (batch, computed) = item?;
                let t = Instant::now();
                // A file counts once, however many runs continue it.
                if batch.first_of_file && self.counted.as_ref() != Some(&batch.file) {
                    self.totals.files += 1;
                    self.counted = Some(batch.file.clone());
                }
                let (state, totals, tip_file) = (&mut self.chain, &mut self.totals, &mut self.tip_file);
                apply_chain_rules(state, totals, tip_file, &self.opts, &batch, &computed, sink);
                self.marks.advance(&batch);
                batch.release();
                chain += t.elapsed();
                sink.progress(&Summary { seconds: self.started.elapsed().as_secs_f64(), ..self.totals.clone() });
                match sink.after_batch() {
                    Flow::Continue => {}
                    Flow::Checkpoint => {
                        let (marks, opts, totals) = (&mut self.marks, &self.opts, &self.totals);
                        sink.checkpoint(marks.checkpoint(
                            &self.chain,
                            opts.rules,
                            opts.authorities.as_ref(),
                            totals.blocks,
                            totals.transactions,
                            opts.io,
                        ));
                    }
                    Flow::Stop => {
                        // Dropping the channel's receiver ends the stages
                        // upstream at their next send.
                        self.stopped = true;
                        break;
                    }
                }
            }
            // Each run's busy time of each pipeline stage (a stage waiting
            // for its neighbours is not busy; one waiting for rayon workers
            // that another stage keeps busy is), to find the stage that
            // bounds it (the CLI: VIGIL_STAGE_TIMES=1).
            if tracing::enabled!(target: "vigil::stages", tracing::Level::DEBUG) {
                let frame = framer.join().unwrap_or_default();
                let hash = hasher.join().unwrap_or_default();
                let signatures = sig_stage.join().unwrap_or_default();
                tracing::debug!(
                    target: "vigil::stages",
                    "busy seconds of {:.3} s: frame {:.3}, hash {:.3}, signatures {:.3}, chain rules {:.3}",
                    wall.elapsed().as_secs_f64(),
                    frame.as_secs_f64(),
                    hash.as_secs_f64(),
                    signatures.as_secs_f64(),
                    chain.as_secs_f64()
                );
                #[cfg(feature = "gpu")]
                if let Some(gpu) = &backend.gpu {
                    tracing::debug!(target: "vigil::stages", "GPU signature calls so far: {}", gpu.call_stats());
                }
            }
            Ok(())
        })
    }
}

/// The hash stage for one batch: tx_ids, leaves, Merkle roots, block
/// hashes.
fn hash_batch(batch: &Batch<'_>) -> Hashed {
    let views = batch.views();
    // The batch's transactions, flat, so work spreads evenly over cores
    // whatever the block sizes.
    let txs = batch.txs(&views);
    let first_tx = &batch.first_tx;

    // tx_ids and leaves in groups of one block's transactions (one chain
    // id), many messages per SIMD step, groups across cores.
    let mut tx_ids = vec![[0u8; 32]; txs.len()];
    let mut leaves = vec![[0u8; 32]; txs.len()];
    let mut groups = Vec::new();
    let (mut ids_rest, mut leaves_rest) = (&mut tx_ids[..], &mut leaves[..]);
    for (b, view) in views.iter().enumerate() {
        for start in (first_tx[b]..first_tx[b + 1]).step_by(HASH_GROUP) {
            let end = (start + HASH_GROUP).min(first_tx[b + 1]);
            let (ids_group, ids_tail) = std::mem::take(&mut ids_rest).split_at_mut(end - start);
            let (leaves_group, leaves_tail) = std::mem::take(&mut leaves_rest).split_at_mut(end - start);
            (ids_rest, leaves_rest) = (ids_tail, leaves_tail);
            groups.push((&view.header.chain_id, &txs[start..end], ids_group, leaves_group));
        }
    }
    groups.into_par_iter().for_each(|(chain_id, txs, ids, leaves)| hash::tx_ids_and_leaves(chain_id, txs, ids, leaves));
    let digests = views
        .par_iter()
        .enumerate()
        .map_init(Vec::new, |scratch, (b, view)| {
            (hash::block_hash(view.header), hash::merkle_root(&leaves[first_tx[b]..first_tx[b + 1]], scratch))
        })
        .collect();
    Hashed { digests, tx_ids }
}

/// The signature stage for one batch: all its signatures, transactions' and
/// blocks', together.
fn verify_batch(batch: &Batch<'_>, hashed: Hashed, rules: RuleSet, signer: &mut Signer) -> Computed {
    let views = batch.views();
    let txs = batch.txs(&views);
    let Hashed { digests, tx_ids } = hashed;
    let items: Vec<SigItem<'_>> = txs
        .iter()
        .zip(&tx_ids)
        .map(|(tx, id)| SigItem { public_key: &tx.header().sender, message: id, signature: tx.signature() })
        .chain(views.iter().zip(&digests).map(|(view, (block_hash, _))| SigItem {
            public_key: &view.header.proposer,
            message: block_hash,
            signature: &view.header.proposer_sig,
        }))
        .collect();
    let mut verdicts = signer.verify(rules, &items);
    let block_ok = verdicts.split_off(txs.len());
    Computed { digests, tx_ok: verdicts, block_ok }
}

/// The chain-rule stage for one batch: nonces for the whole batch, then each
/// block in order; reports go to `sink`.
fn apply_chain_rules(
    chain: &mut ChainState,
    totals: &mut Summary,
    tip_file: &mut Option<Arc<Path>>,
    opts: &VerifyOptions,
    batch: &Batch<'_>,
    computed: &Computed,
    sink: &mut dyn ReportSink,
) {
    let views = batch.views();
    let txs = batch.txs(&views);
    let senders: Vec<([u8; 32], u64)> = txs.iter().map(|tx| (tx.header().sender, tx.header().nonce())).collect();
    let mut nonce_misses = chain.check_nonces(&senders).into_iter().peekable();
    let first_tx = &batch.first_tx;
    let first_position = opts.first_position + totals.blocks;
    if !chain.firsts().is_empty() {
        let firsts: Vec<SenderFirst> = chain
            .firsts()
            .iter()
            .map(|f| {
                // The block holding transaction f.index of the batch.
                let b = first_tx.partition_point(|&start| start <= f.index as usize) - 1;
                SenderFirst {
                    sender: f.sender,
                    position: first_position + b as u64,
                    tx: (f.index as usize - first_tx[b]) as u32,
                    nonce: f.nonce,
                }
            })
            .collect();
        sink.first_nonces(&firsts);
    }
    for (b, (view, framed)) in views.iter().zip(&batch.blocks).enumerate() {
        let (start, end) = (first_tx[b], first_tx[b + 1]);
        let mut misses = Vec::new();
        while let Some(m) = nonce_misses.next_if(|m| (m.index as usize) < end) {
            misses.push(NonceMiss { index: m.index - start as u32, ..m });
        }
        let facts = BlockFacts {
            hash: computed.digests[b].0,
            computed_root: computed.digests[b].1,
            block_signature: block_signature_verdict(view, computed.block_ok[b], opts.authorities.as_ref()),
            bad_tx_signatures: (start..end).filter(|&i| !computed.tx_ok[i]).map(|i| (i - start) as u32).collect(),
            nonce_misses: misses,
        };
        let parent = chain.parent;
        let mut failures = Vec::new();
        chain.apply(view, &txs[start..end], &facts, &mut failures);
        // A file's first block that breaks the link to the last block of
        // the file before it (the chain rules said so): one diagnostic for
        // the boundary, before the block's report with its failures.
        if let (Some(parent), Some(previous)) = (parent, tip_file.as_ref())
            && *previous != batch.file
            && failures.iter().any(|f| matches!(f.rule, Rule::Height | Rule::PrevHash))
        {
            sink.discontinuity(&Discontinuity {
                file: batch.file.clone(),
                offset: framed.offset,
                previous_file: previous.clone(),
                parent: BlockRef { height: parent.height, hash: parent.hash },
                height: view.header.height(),
                prev_hash: view.header.prev_hash,
            });
        }
        *tip_file = Some(batch.file.clone());
        let tx_count = view.header.tx_count();
        let report = BlockReport {
            file: batch.file.clone(),
            offset: framed.offset,
            position: opts.first_position + totals.blocks,
            height: view.header.height(),
            hash: facts.hash,
            prev_hash: view.header.prev_hash,
            timestamp_ms: view.header.timestamp_ms(),
            tx_count,
            failures,
        };
        let this = BlockRef { height: report.height, hash: report.hash };
        totals.first.get_or_insert(this);
        totals.last = Some(this);
        totals.blocks += 1;
        totals.transactions += u64::from(tx_count);
        totals.signatures += u64::from(tx_count) + 1;
        if !report.valid() {
            totals.invalid_blocks += 1;
        }
        sink.block(&report);
    }
    totals.bytes += batch.bytes;
    if let Some((offset, reason)) = &batch.malformed {
        totals.malformed += 1;
        sink.malformed(&MalformedReport { file: batch.file.clone(), offset: *offset, reason: reason.clone() });
    }
}

fn block_signature_verdict(
    view: &BlockView<'_>,
    signature_ok: bool,
    authorities: Option<&HashSet<[u8; 32]>>,
) -> Result<(), BlockSignatureFault> {
    let proposer = view.header.proposer;
    let is_authority = authorities.is_none_or(|set| set.contains(&proposer));
    BlockSignatureFault::of(proposer, signature_ok, is_authority).map_or(Ok(()), Err)
}
