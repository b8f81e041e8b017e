//! Deterministic generator of synthetic vigil chains: IoT devices sending
//! sensor records, one authority proposing blocks, written as segment files
//! in chain format v1 (`FORMAT.md`), optionally with injected faults.
//!
//! Everything is derived from [`GenConfig::seed`] through per-block and
//! per-transaction random streams, so the same configuration gives the same
//! bytes whatever the number of threads. The work is done chunk by chunk (at
//! most [`CHUNK_BLOCKS`] blocks, about [`CHUNK_BYTES`] of bodies or
//! [`CHUNK_TXS`] transactions): a cheap sequential pass plans each block
//! (transaction count, senders, nonces, payload lengths, timestamps), rayon
//! builds and signs the transactions and computes each block's `tx_root`,
//! a sequential pass links the headers (heights, `prev_hash`, block hash),
//! rayon signs them, and the blocks are appended to the segment files.
//! Memory stays bounded however long the chain.
//!
//! # Faults
//!
//! Each [`Fault`] (`RULE@HEIGHT`, HEIGHT the 0-based chain position) breaks
//! exactly one rule of one block, such that the verifier reports that rule
//! on that block (and transaction) and nothing else anywhere:
//!
//! | rule              | injection |
//! |-------------------|-----------|
//! | `malformed`       | a copy of the block cut short (the header and half the body, or half the header if the body is empty) is the last thing in its segment file; the real block starts the next file |
//! | `chain_id`        | the block carries another chain id and its transactions are signed over it (not at height 0) |
//! | `height`          | stored height = parent's + 2; later heights count on from it (not at height 0) |
//! | `prev_hash`       | 32 random bytes (at height 0: nonzero bytes where zeros are required) |
//! | `timestamp`       | parent's timestamp − 1; the block's transactions are no later (not at height 0) |
//! | `tx_root`         | one bit of `tx_root` flipped before the block is signed |
//! | `block_signature` | `proposer_sig` made by another key, over the right hash |
//! | `tx_signature`    | one bit of one transaction's signature flipped; the leaf covers the bytes as written |
//! | `tx_timestamp`    | one transaction's timestamp = the block's + 1 |
//! | `nonce`           | one transaction skips a nonce; its sender's later nonces go on from it |
//!
//! A block that must carry a per-transaction fault gets one transaction if
//! its drawn count is 0.

#![warn(missing_docs)]
mod payload;
mod rng;

pub use payload::{KIND_ACCEL, KIND_ENV, KIND_GPS, KIND_LOG, KIND_POWER, primary_kind};

use ed25519_dalek::{Signer, SigningKey};
use rayon::prelude::*;
use rng::{Rng, derive};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use vigil_format::hash::{Digest, block_hash, leaf, merkle_root_in_place, tx_id};
use vigil_format::{
    BlockHeader, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN, MAX_TX_COUNT, Rule, TX_OVERHEAD, TxHeader, UnknownRule, VERSION,
    write_unsigned_tx,
};

/// Timestamp of the genesis block: 2026-01-01T00:00:00Z.
pub const GENESIS_TIMESTAMP_MS: u64 = 1_767_225_600_000;
/// Most blocks planned and built at once.
pub const CHUNK_BLOCKS: usize = 1024;
/// About the most body bytes built at once (a larger block is built alone).
pub const CHUNK_BYTES: usize = 32 << 20;
/// About the most transactions built at once.
pub const CHUNK_TXS: usize = 64 * 1024;
/// Segment files are named `000000.vblk` … `999999.vblk`.
pub const MAX_FILES: usize = 1_000_000;
/// Above this many senders, device keys are derived per chunk rather than
/// kept for the whole run.
const KEY_CACHE_SENDERS: u32 = 1 << 16;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Everything generated (keys, counts, payloads) derives from this:
    /// the same config writes the same bytes.
    pub seed: u64,
    /// Number of blocks in the chain (genesis included).
    pub blocks: u64,
    /// Each block's transaction count is drawn uniformly from this.
    pub txs_per_block: RangeInclusive<u32>,
    /// Number of devices (senders), at least 1.
    pub senders: u32,
    /// Payload bytes per transaction, drawn uniformly; at most 65,536.
    pub payload: RangeInclusive<u32>,
    /// Start a new segment file when the next block would push the current
    /// one past this many bytes (a file always holds at least one block).
    pub segment_size: u64,
    /// Violations to inject, at most one per rule and height; the rest of
    /// the chain is valid.
    pub faults: Vec<Fault>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 0,
            blocks: 100,
            txs_per_block: 0..=64,
            senders: 16,
            payload: 16..=512,
            segment_size: 64 << 20,
            faults: Vec::new(),
        }
    }
}

/// One violation to inject: `rule` broken at chain position `height`
/// (0-based). Parses from and displays as `RULE@HEIGHT`, e.g.
/// `tx_signature@5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fault {
    /// The rule the block will break.
    pub rule: Rule,
    /// The block's chain position (0-based).
    pub height: u64,
}

/// A string that is not a [`Fault`] (`RULE@HEIGHT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultParseError {
    /// No `@` in the string (held whole).
    #[error("fault {0:?}: expected RULE@HEIGHT, e.g. tx_signature@5")]
    NoAt(String),
    /// The part before `@` is not a rule name.
    #[error("fault {fault:?}: {source}")]
    Rule {
        /// The whole string.
        fault: String,
        /// Why the rule name was refused.
        source: UnknownRule,
    },
    /// The part after `@` is not a `u64`.
    #[error("fault {fault:?}: height {height:?}: {source}")]
    Height {
        /// The whole string.
        fault: String,
        /// The part after `@`.
        height: String,
        /// Why it does not parse.
        source: std::num::ParseIntError,
    },
}

impl FromStr for Fault {
    type Err = FaultParseError;
    fn from_str(s: &str) -> Result<Self, FaultParseError> {
        let (rule, height) = s.split_once('@').ok_or_else(|| FaultParseError::NoAt(s.to_owned()))?;
        let rule = rule.parse::<Rule>().map_err(|source| FaultParseError::Rule { fault: s.to_owned(), source })?;
        let height = height.parse::<u64>().map_err(|source| FaultParseError::Height {
            fault: s.to_owned(),
            height: height.to_owned(),
            source,
        })?;
        Ok(Fault { rule, height })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.rule, self.height)
    }
}

impl Fault {
    /// Why this fault cannot be injected at its height, if it cannot (the
    /// first block defines the chain id and starts the height and timestamp
    /// sequence, so those rules cannot fail there).
    pub fn impossible(&self) -> Option<&'static str> {
        match (self.rule, self.height) {
            (Rule::ChainId, 0) => Some("the first block defines the chain id"),
            (Rule::Height, 0) => Some("the first block's height is not checked"),
            (Rule::Timestamp, 0) => Some("the first block's timestamp is not checked"),
            _ => None,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Manifest {
    /// The chain id every block carries (derived from the seed).
    pub chain_id: Digest,
    /// Public key of the single block proposer (the only authority).
    pub proposer: [u8; 32],
    /// Segment files written, in chain order: `OUT_DIR/000000.vblk`, ….
    pub files: Vec<PathBuf>,
    /// Every real block, in chain order. The truncated copy written for a
    /// `malformed` fault is not listed (its place is in [`Manifest::faults`]).
    pub blocks: Vec<BlockInfo>,
    /// The injected faults, in chain order.
    pub faults: Vec<InjectedFault>,
    /// Transactions in the real blocks.
    pub transactions: u64,
    /// Bytes written, in all files (malformed copies included).
    pub bytes: u64,
}

/// Where one block of the chain was written, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockInfo {
    /// Index into [`Manifest::files`].
    pub file: usize,
    /// Byte offset in that file.
    pub offset: u64,
    /// The height stored in the header.
    pub height: u64,
    /// Transactions in its body.
    pub tx_count: u32,
    /// Its block hash.
    pub hash: Digest,
}

/// Where the verifier will report an injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InjectedFault {
    /// The rule broken.
    pub rule: Rule,
    /// Chain position (0-based), as given.
    pub height: u64,
    /// Index into [`Manifest::files`] of the block reported: for `malformed`
    /// the truncated copy, otherwise the block itself.
    pub file: usize,
    /// Byte offset of that block in that file.
    pub offset: u64,
    /// The transaction's index in its block, for per-transaction rules.
    pub tx: Option<u32>,
}

/// Why [`generate`] wrote nothing, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// The [`GenConfig`] asks for something impossible (the message says what).
    #[error("invalid generator config: {0}")]
    Config(String),
    /// The output directory already holds `.vblk` files.
    #[error("{}: already holds .vblk files; not overwriting a chain", .0.display())]
    ChainExists(PathBuf),
    /// Creating or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> GenError + '_ {
    move |source| GenError::Io { path: path.to_owned(), source }
}

/// Checks `cfg`; returns its faults by chain position.
fn validate(cfg: &GenConfig) -> Result<BTreeMap<u64, Rule>, GenError> {
    let bad = |msg: String| Err(GenError::Config(msg));
    if cfg.blocks == 0 {
        return bad("blocks must be at least 1".into());
    }
    if cfg.senders == 0 {
        return bad("senders must be at least 1".into());
    }
    if cfg.txs_per_block.is_empty() {
        return bad(format!("empty txs_per_block range {:?}", cfg.txs_per_block));
    }
    if *cfg.txs_per_block.end() > MAX_TX_COUNT {
        return bad(format!("txs_per_block up to {} > {MAX_TX_COUNT}", cfg.txs_per_block.end()));
    }
    if cfg.payload.is_empty() {
        return bad(format!("empty payload range {:?}", cfg.payload));
    }
    if *cfg.payload.end() > MAX_PAYLOAD_LEN {
        return bad(format!("payload up to {} > {MAX_PAYLOAD_LEN}", cfg.payload.end()));
    }
    let mut faults = BTreeMap::new();
    for f in &cfg.faults {
        if f.height >= cfg.blocks {
            return bad(format!("fault {f}: the chain has only {} blocks", cfg.blocks));
        }
        if let Some(why) = f.impossible() {
            return bad(format!("fault {f}: impossible at height 0: {why}"));
        }
        if let Some(other) = faults.insert(f.height, f.rule) {
            return bad(format!("faults {other}@{0} and {f}: at most one fault per height", f.height));
        }
    }
    let max_txs = u64::from((*cfg.txs_per_block.end()).max(1));
    let max_body = max_txs * (TX_OVERHEAD as u64 + u64::from(*cfg.payload.end()));
    if max_body > u64::from(u32::MAX) {
        return bad(format!(
            "a block of {max_txs} transactions of {} payload bytes could pass body_len's limit of {} bytes",
            cfg.payload.end(),
            u32::MAX
        ));
    }
    Ok(faults)
}

/// Secret key of device `index`.
pub fn device_secret(seed: u64, index: u32) -> [u8; 32] {
    derive("device key", &[seed, u64::from(index)])
}

/// Secret key of the block proposer.
pub fn proposer_secret(seed: u64) -> [u8; 32] {
    derive("proposer key", &[seed])
}

/// The chain id of the chain generated from `seed`.
pub fn chain_id(seed: u64) -> Digest {
    derive("chain id", &[seed])
}

/// One block as planned by the sequential pass.
struct BlockPlan {
    pos: u64,
    height: u64,
    timestamp: u64,
    chain_id: Digest,
    /// Index of its first transaction in `Chunk::txs`.
    tx_start: usize,
    tx_count: u32,
    /// Offset of its body in the chunk's body buffer.
    body_start: usize,
    body_len: usize,
    fault: Option<Rule>,
    /// The transaction a per-transaction fault applies to.
    fault_tx: Option<u32>,
    /// The bit flipped by a `tx_signature` (of 512) or `tx_root` (of 256) fault.
    fault_bit: usize,
    /// The bytes a `prev_hash` fault stores.
    bad_prev_hash: Digest,
}

struct TxPlan {
    /// Index of its block in `Chunk::blocks`.
    block: u32,
    index: u32,
    sender: u32,
    nonce: u64,
    payload_len: u32,
}

#[derive(Default)]
struct Chunk {
    blocks: Vec<BlockPlan>,
    txs: Vec<TxPlan>,
    body_len: usize,
}

/// The sequential state of planning: nonces, timestamps, height shifts.
struct Planner<'a> {
    cfg: &'a GenConfig,
    faults: &'a BTreeMap<u64, Rule>,
    chain_id: Digest,
    nonces: HashMap<u32, u64>,
    parent_ts: Option<u64>,
    height_shift: u64,
    pos: u64,
}

impl Planner<'_> {
    fn plan_block(&mut self, chunk: &mut Chunk) {
        let (seed, pos) = (self.cfg.seed, self.pos);
        let fault = self.faults.get(&pos).copied();
        let mut rng = Rng::new("block plan", &[seed, pos]);
        let mut frng = Rng::new("block fault", &[seed, pos]);

        let txs = &self.cfg.txs_per_block;
        let mut tx_count = rng.range(u64::from(*txs.start()), u64::from(*txs.end())) as u32;
        if fault.is_some_and(Rule::is_per_transaction) && tx_count == 0 {
            tx_count = 1;
        }
        // About a second per block; now and then the same millisecond.
        let delta = if rng.chance(1, 40) { 0 } else { rng.range(700, 1300) };
        let timestamp = match self.parent_ts {
            None => GENESIS_TIMESTAMP_MS,
            Some(parent) if fault == Some(Rule::Timestamp) => parent - 1,
            Some(parent) => parent + delta,
        };
        if fault == Some(Rule::Height) {
            self.height_shift += 1;
        }
        let chain_id =
            if fault == Some(Rule::ChainId) { derive("foreign chain id", &[seed, pos]) } else { self.chain_id };
        let fault_tx = fault.filter(|r| r.is_per_transaction()).map(|_| frng.below(u64::from(tx_count)) as u32);
        let fault_bit = frng.below(512) as usize;
        let mut bad_prev_hash = [0u8; 32];
        frng.fill(&mut bad_prev_hash);
        bad_prev_hash[0] |= 1;

        let block_index = chunk.blocks.len() as u32;
        let tx_start = chunk.txs.len();
        let body_start = chunk.body_len;
        let senders = u64::from(self.cfg.senders);
        // A few chatty devices: half the records come from the first eighth.
        let chatty = senders.div_ceil(8);
        let (plo, phi) = (u64::from(*self.cfg.payload.start()), u64::from(*self.cfg.payload.end()));
        let mut last: Option<u32> = None;
        for index in 0..tx_count {
            let sender = match last {
                // Bursts: the same device again.
                Some(s) if rng.chance(1, 6) => s,
                _ if rng.chance(1, 2) => rng.below(chatty) as u32,
                _ => rng.below(senders) as u32,
            };
            last = Some(sender);
            let payload_len = rng.range(plo, phi) as u32;
            let next = self.nonces.entry(sender).or_insert(0);
            if fault == Some(Rule::Nonce) && fault_tx == Some(index) {
                *next += 1;
            }
            let nonce = *next;
            *next += 1;
            chunk.txs.push(TxPlan { block: block_index, index, sender, nonce, payload_len });
            chunk.body_len += TX_OVERHEAD + payload_len as usize;
        }
        chunk.blocks.push(BlockPlan {
            pos,
            height: pos + self.height_shift,
            timestamp,
            chain_id,
            tx_start,
            tx_count,
            body_start,
            body_len: chunk.body_len - body_start,
            fault,
            fault_tx,
            fault_bit,
            bad_prev_hash,
        });
        self.parent_ts = Some(timestamp);
        self.pos += 1;
    }

    fn plan_chunk(&mut self) -> Chunk {
        let mut chunk = Chunk::default();
        while self.pos < self.cfg.blocks
            && chunk.blocks.len() < CHUNK_BLOCKS
            && chunk.body_len < CHUNK_BYTES
            && chunk.txs.len() < CHUNK_TXS
        {
            self.plan_block(&mut chunk);
        }
        chunk
    }
}

/// Builds and signs a chunk's transactions into one body buffer (blocks'
/// bodies back to back) and returns it with every transaction's leaf.
fn build_txs(seed: u64, chunk: &Chunk, keys: &HashMap<u32, SigningKey>) -> (Vec<u8>, Vec<Digest>) {
    let mut body = vec![0u8; chunk.body_len];
    let mut slices = Vec::with_capacity(chunk.txs.len());
    let mut rest = &mut body[..];
    for tx in &chunk.txs {
        let (this, tail) = std::mem::take(&mut rest).split_at_mut(TX_OVERHEAD + tx.payload_len as usize);
        slices.push(this);
        rest = tail;
    }
    let mut leaves = vec![[0u8; 32]; chunk.txs.len()];
    chunk.txs.par_iter().zip(slices.into_par_iter()).zip(leaves.par_iter_mut()).with_min_len(16).for_each_init(
        || (Vec::new(), Vec::new()),
        |(payload, signed), ((tx, out), leaf_out)| {
            let block = &chunk.blocks[tx.block as usize];
            let faulty = block.fault_tx == Some(tx.index);
            let key = &keys[&tx.sender];
            let sender = key.verifying_key().to_bytes();
            let mut rng = Rng::new("tx", &[seed, block.pos, u64::from(tx.index)]);
            let ts = if faulty && block.fault == Some(Rule::TxTimestamp) {
                block.timestamp + 1
            } else {
                block.timestamp.saturating_sub(rng.below(5001))
            };
            let kind = payload::fill(payload, &sender, ts, tx.payload_len as usize, &mut rng);
            signed.clear();
            let header = TxHeader::new(sender, tx.nonce, ts, kind, tx.payload_len);
            write_unsigned_tx(signed, &header, payload);
            let id = tx_id(&block.chain_id, signed);
            let mut sig = key.sign(&id).to_bytes();
            if faulty && block.fault == Some(Rule::TxSignature) {
                sig[block.fault_bit / 8] ^= 1 << (block.fault_bit % 8);
            }
            out[..signed.len()].copy_from_slice(signed);
            out[signed.len()..].copy_from_slice(&sig);
            *leaf_out = leaf(&id, &sig);
        },
    );
    (body, leaves)
}

/// Appends blocks to segment files, starting a new file when needed.
struct Writer<'a> {
    dir: &'a Path,
    segment_size: u64,
    files: Vec<PathBuf>,
    current: Option<(BufWriter<File>, u64)>,
    bytes: u64,
}

impl Writer<'_> {
    /// Makes room for `len` bytes; returns where they will go.
    fn place(&mut self, len: u64) -> Result<(usize, u64), GenError> {
        let full = match &self.current {
            None => true,
            Some((_, used)) => *used > 0 && used + len > self.segment_size,
        };
        if full {
            self.end_segment()?;
            if self.files.len() >= MAX_FILES {
                return Err(GenError::Config(format!("more than {MAX_FILES} segment files: raise segment_size")));
            }
            let path = self.dir.join(format!("{:06}.vblk", self.files.len()));
            let file = File::create_new(&path).map_err(io_err(&path))?;
            self.files.push(path);
            self.current = Some((BufWriter::with_capacity(1 << 20, file), 0));
        }
        let used = self.current.as_ref().map_or(0, |c| c.1);
        Ok((self.files.len() - 1, used))
    }

    fn write(&mut self, data: &[u8]) -> Result<(), GenError> {
        let (w, used) = self.current.as_mut().expect("place() opened a file");
        let path = self.files.last().expect("a file is open");
        w.write_all(data).map_err(io_err(path))?;
        *used += data.len() as u64;
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Closes the current file; the next block starts a new one.
    fn end_segment(&mut self) -> Result<(), GenError> {
        if let Some((mut w, _)) = self.current.take() {
            let path = self.files.last().expect("a file is open");
            w.flush().map_err(io_err(path))?;
        }
        Ok(())
    }
}

/// Device keys for the senders a chunk uses.
fn ensure_keys(seed: u64, senders: u32, chunk: &Chunk, keys: &mut HashMap<u32, SigningKey>) {
    if senders > KEY_CACHE_SENDERS {
        keys.clear();
    }
    let mut needed: Vec<u32> = chunk.txs.iter().map(|t| t.sender).filter(|s| !keys.contains_key(s)).collect();
    needed.sort_unstable();
    needed.dedup();
    let derived: Vec<(u32, SigningKey)> =
        needed.par_iter().map(|&i| (i, SigningKey::from_bytes(&device_secret(seed, i)))).collect();
    keys.extend(derived);
}

/// Generates the chain described by `cfg` into `out_dir` (created if
/// missing; it must not hold `*.vblk` files yet). `progress` is called with
/// the number of blocks written so far, after each chunk.
pub fn generate(out_dir: &Path, cfg: &GenConfig, progress: &(dyn Fn(u64) + Sync)) -> Result<Manifest, GenError> {
    let faults = validate(cfg)?;
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    for entry in std::fs::read_dir(out_dir).map_err(io_err(out_dir))? {
        let entry = entry.map_err(io_err(out_dir))?;
        if entry.file_name().as_encoded_bytes().ends_with(b".vblk") {
            return Err(GenError::ChainExists(out_dir.to_owned()));
        }
    }

    let seed = cfg.seed;
    let chain = chain_id(seed);
    let proposer_key = SigningKey::from_bytes(&proposer_secret(seed));
    let proposer = proposer_key.verifying_key().to_bytes();
    let mut planner = Planner {
        cfg,
        faults: &faults,
        chain_id: chain,
        nonces: HashMap::new(),
        parent_ts: None,
        height_shift: 0,
        pos: 0,
    };
    let mut writer =
        Writer { dir: out_dir, segment_size: cfg.segment_size, files: Vec::new(), current: None, bytes: 0 };
    let mut keys = HashMap::new();
    let mut blocks = Vec::with_capacity(usize::try_from(cfg.blocks).unwrap_or(0).min(1 << 24));
    let mut injected = Vec::new();
    let mut transactions = 0u64;
    let mut prev_hash = [0u8; 32];

    while planner.pos < cfg.blocks {
        let chunk = planner.plan_chunk();
        ensure_keys(seed, cfg.senders, &chunk, &mut keys);
        let (body, leaves) = build_txs(seed, &chunk, &keys);
        let roots: Vec<Digest> = chunk
            .blocks
            .par_iter()
            .map(|b| merkle_root_in_place(&mut leaves[b.tx_start..b.tx_start + b.tx_count as usize].to_vec()))
            .collect();

        // Link the headers in order.
        let mut headers = Vec::with_capacity(chunk.blocks.len());
        for (b, mut tx_root) in chunk.blocks.iter().zip(roots) {
            if b.fault == Some(Rule::TxRoot) {
                let bit = b.fault_bit % 256;
                tx_root[bit / 8] ^= 1 << (bit % 8);
            }
            let header = BlockHeader {
                magic: MAGIC,
                version: VERSION.to_le_bytes(),
                flags: [0; 2],
                chain_id: b.chain_id,
                height: b.height.to_le_bytes(),
                timestamp_ms: b.timestamp.to_le_bytes(),
                prev_hash: if b.fault == Some(Rule::PrevHash) { b.bad_prev_hash } else { prev_hash },
                tx_root,
                tx_count: b.tx_count.to_le_bytes(),
                body_len: (b.body_len as u32).to_le_bytes(),
                proposer,
                proposer_sig: [0; 64],
            };
            let hash = block_hash(&header);
            prev_hash = hash;
            headers.push((header, hash));
        }
        headers.par_iter_mut().zip(&chunk.blocks).for_each(|((header, hash), b)| {
            header.proposer_sig = if b.fault == Some(Rule::BlockSignature) {
                SigningKey::from_bytes(&derive("rogue proposer key", &[seed, b.pos])).sign(hash).to_bytes()
            } else {
                proposer_key.sign(hash).to_bytes()
            };
        });

        for ((header, hash), b) in headers.iter().zip(&chunk.blocks) {
            let body = &body[b.body_start..b.body_start + b.body_len];
            if b.fault == Some(Rule::Malformed) {
                // A copy cut short ends its file; the real block starts the next.
                let (head, part) = if body.is_empty() {
                    (&header.as_bytes()[..HEADER_LEN / 2], &body[..0])
                } else {
                    (&header.as_bytes()[..], &body[..body.len() / 2])
                };
                let (file, offset) = writer.place((head.len() + part.len()) as u64)?;
                writer.write(head)?;
                writer.write(part)?;
                writer.end_segment()?;
                injected.push(InjectedFault { rule: Rule::Malformed, height: b.pos, file, offset, tx: None });
            }
            let (file, offset) = writer.place((HEADER_LEN + body.len()) as u64)?;
            writer.write(header.as_bytes())?;
            writer.write(body)?;
            if let Some(rule) = b.fault.filter(|r| *r != Rule::Malformed) {
                injected.push(InjectedFault { rule, height: b.pos, file, offset, tx: b.fault_tx });
            }
            blocks.push(BlockInfo { file, offset, height: b.height, tx_count: b.tx_count, hash: *hash });
            transactions += u64::from(b.tx_count);
        }
        progress(planner.pos);
    }
    writer.end_segment()?;

    Ok(Manifest {
        chain_id: chain,
        proposer,
        files: writer.files,
        blocks,
        faults: injected,
        transactions,
        bytes: writer.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_display() {
        let f: Fault = "tx_signature@5".parse().unwrap();
        assert_eq!(f, Fault { rule: Rule::TxSignature, height: 5 });
        assert_eq!(f.to_string(), "tx_signature@5");
        for bad in ["nonsense@1", "nonce", "nonce@", "nonce@-1", "@3"] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_configs_are_refused() {
        let ok = GenConfig::default();
        assert!(validate(&ok).is_ok());
        let fault = |s: &str| vec![s.parse::<Fault>().unwrap()];
        #[allow(clippy::reversed_empty_ranges)]
        let bad = [
            GenConfig { blocks: 0, ..ok.clone() },
            GenConfig { senders: 0, ..ok.clone() },
            GenConfig { txs_per_block: 5..=4, ..ok.clone() },
            GenConfig { txs_per_block: 0..=MAX_TX_COUNT + 1, ..ok.clone() },
            GenConfig { payload: 9..=8, ..ok.clone() },
            GenConfig { payload: 0..=MAX_PAYLOAD_LEN + 1, ..ok.clone() },
            GenConfig { txs_per_block: 0..=MAX_TX_COUNT, payload: 0..=MAX_PAYLOAD_LEN, ..ok.clone() },
            GenConfig { faults: fault("nonce@100"), ..ok.clone() },
            GenConfig { faults: fault("chain_id@0"), ..ok.clone() },
            GenConfig { faults: fault("height@0"), ..ok.clone() },
            GenConfig { faults: fault("timestamp@0"), ..ok.clone() },
            GenConfig { faults: vec!["nonce@3".parse().unwrap(), "tx_root@3".parse().unwrap()], ..ok.clone() },
        ];
        for cfg in bad {
            assert!(matches!(validate(&cfg), Err(GenError::Config(_))), "{cfg:?}");
        }
        for rule in ["malformed", "prev_hash", "tx_root", "block_signature", "tx_signature", "tx_timestamp", "nonce"] {
            assert!(validate(&GenConfig { faults: fault(&format!("{rule}@0")), ..ok.clone() }).is_ok());
        }
    }
}
