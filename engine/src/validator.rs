//! The validation coprocessor: a node hands it blocks (format v1 bytes) and
//! raw signature batches and gets exact verdicts back, in-process (this
//! type, or the C ABI over it) or through `vigil serve`.
//!
//! Work goes through one bounded queue to one worker thread, which takes as
//! much as is waiting, up to `max_batch` signatures, and runs it together
//! (signature requests of many callers share one batch verification; blocks
//! go through the streaming [`Verifier`], several blocks a call). A lone
//! small request waits at most `max_delay` for company; a request of
//! `max_batch` signatures or more runs at once.
//!
//! Chain state (tip, heights, nonces) carries across calls for blocks
//! submitted in order. With `chain_id` set there is one chain and a block of
//! another chain breaks the chain_id rule; without it, each chain id seen is
//! its own chain (up to `max_chains`), so several independent streams can
//! share one validator; a chain keeps its slot only once one of its blocks
//! passes, so junk blocks with made-up chain ids cannot use the slots up.
//! `max_delay` is at most [`MAX_DELAY`] (10 s).
//!
//! Nothing is lost: every accepted submission is answered exactly once (a
//! verdict or a rejection), including those still queued when the validator
//! shuts down. The queue is bounded in bytes: [`Validator::submit`] waits for
//! room (back-pressure), [`Validator::try_submit`] refuses and counts an
//! overload.
//!
//! ```
//! use ed25519_dalek::{Signer, SigningKey};
//! use vigil_engine::{RuleSet, SigBatch, Validator, ValidatorConfig};
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let signature = key.sign(b"reading 42").to_bytes();
//! let mut batch = SigBatch::new();
//! batch.push(key.verifying_key().as_bytes(), b"reading 42", &signature);
//! batch.push(key.verifying_key().as_bytes(), b"reading 43", &signature);
//! let validator = Validator::new(ValidatorConfig::default());
//! assert_eq!(validator.check_signatures(RuleSet::Zip215, batch).unwrap(), [true, false]);
//! ```

use crate::format::{BlockView, Malformation, check_header};
use crate::hash::Digest;
use crate::report::{BlockReport, CollectSink};
use crate::sig::{RuleSet, SharedSigner, SigItem, Signer, SignerConfig, SignerStats};
use crate::stats::{BATCH_SIGNATURES, Histogram, HistogramSnapshot, LATENCY_SECONDS};
use crate::verify::{Verifier, VerifyOptions};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest `max_delay` a validator keeps: a longer one is cut to this
/// (a request could otherwise wait, and hold a shutdown, without end).
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// How a [`Validator`] batches and what it checks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidatorConfig {
    /// Pin the chain id (one chain); `None`: one chain per chain id seen.
    pub chain_id: Option<Digest>,
    /// When set, every block's proposer must be one of these keys.
    pub authorities: Option<HashSet<[u8; 32]>>,
    /// Signature rules for blocks (signature requests carry their own).
    pub rules: RuleSet,
    /// Signatures a batch holds before it runs without waiting.
    pub max_batch: usize,
    /// The longest a request waits for others to share its batch (at most
    /// [`MAX_DELAY`]).
    pub max_delay: Duration,
    /// Bytes of queued requests before submitters wait (or `try_submit`
    /// refuses).
    pub max_queue_bytes: usize,
    /// Chains kept when `chain_id` is not pinned. A chain takes a slot only
    /// once one of its blocks passes every check: blocks that fail never
    /// keep one.
    pub max_chains: usize,
    /// What verifies signatures (blocks' and requests' alike): the CPU, a
    /// GPU, or both. One [`Signer`] made of it serves every chain.
    pub signer: SignerConfig,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            chain_id: None,
            authorities: None,
            rules: RuleSet::Zip215,
            max_batch: 8192,
            max_delay: Duration::from_millis(2),
            max_queue_bytes: 256 << 20,
            max_chains: 1024,
            signer: SignerConfig::default(),
        }
    }
}

/// Signatures to verify, stored compactly: `(public key, message, signature)`
/// triples of any ed25519 chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigBatch {
    keys: Vec<[u8; 32]>,
    signatures: Vec<[u8; 64]>,
    messages: Vec<u8>,
    /// End of each message in `messages`.
    ends: Vec<usize>,
}

impl SigBatch {
    /// An empty batch.
    pub fn new() -> Self {
        SigBatch::default()
    }

    /// Room for `count` signatures whose messages total `message_bytes`, so
    /// filling it allocates exactly once (a server sizes it from the request).
    pub fn with_capacity(count: usize, message_bytes: usize) -> Self {
        SigBatch {
            keys: Vec::with_capacity(count),
            signatures: Vec::with_capacity(count),
            messages: Vec::with_capacity(message_bytes),
            ends: Vec::with_capacity(count),
        }
    }

    /// Appends one triple (the message is copied).
    pub fn push(&mut self, public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) {
        self.keys.push(*public_key);
        self.signatures.push(*signature);
        self.messages.extend_from_slice(message);
        self.ends.push(self.messages.len());
    }

    /// Signatures held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds no signature.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The i-th triple.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn get(&self, i: usize) -> SigItem<'_> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        SigItem {
            public_key: &self.keys[i],
            message: &self.messages[start..self.ends[i]],
            signature: &self.signatures[i],
        }
    }

    /// Every triple, in the order pushed.
    pub fn items(&self) -> impl ExactSizeIterator<Item = SigItem<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Bytes held, for queue accounting.
    pub fn bytes(&self) -> usize {
        self.len() * (32 + 64 + 8) + self.messages.len()
    }
}

/// What a submitted block is found to be.
#[derive(Debug, Clone)]
pub enum BlockVerdict {
    /// A well-formed block, checked against every rule in chain context:
    /// valid when `failures` is empty.
    Checked(BlockReport),
    /// Not a single well-formed block (FORMAT.md framing), so not applied to
    /// any chain.
    Malformed {
        /// Byte offset in the submission where framing failed.
        offset: u64,
        /// What is wrong there.
        reason: Malformation,
    },
    /// A well-formed block followed by more bytes: a submission is exactly
    /// one block. Not applied.
    ExtraBytes {
        /// Bytes of the block at the start.
        block_len: u64,
        /// Bytes submitted.
        total: u64,
    },
    /// A block of a new chain when `max_chains` chains are already kept.
    TooManyChains {
        /// The new chain's id (the block's `chain_id`).
        chain_id: Digest,
    },
}

impl BlockVerdict {
    /// A checked block with no failure; false for every other verdict.
    pub fn valid(&self) -> bool {
        matches!(self, BlockVerdict::Checked(r) if r.valid())
    }
}

/// A request for the validator.
#[derive(Debug, Clone)]
pub enum Request {
    /// One block, format v1 bytes (exactly one block, nothing after it).
    Block(Vec<u8>),
    /// Signatures to verify under `rules`.
    Signatures {
        /// The rules they are checked under.
        rules: RuleSet,
        /// The signatures.
        batch: SigBatch,
    },
}

impl Request {
    fn bytes(&self) -> usize {
        match self {
            Request::Block(b) => b.len(),
            Request::Signatures { batch, .. } => batch.bytes(),
        }
    }

    /// Signatures it brings to a batch.
    fn signatures(&self) -> usize {
        match self {
            // A block's transactions and its proposer's, from the header
            // alone (the worker frames the body).
            Request::Block(b) => check_header(b, b.len() as u64).map_or(1, |h| h.tx_count() as usize + 1),
            Request::Signatures { batch, .. } => batch.len(),
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone)]
pub enum Verdict {
    /// For [`Request::Block`].
    Block(BlockVerdict),
    /// One verdict per signature, in order.
    Signatures(Vec<bool>),
}

/// Why a request was not accepted (it was not queued: submit it again later
/// or elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// `try_submit` only: the queue holds `max_queue_bytes` already.
    #[error("the validator's queue is full")]
    Overloaded,
    /// The validator is being dropped.
    #[error("the validator is shutting down")]
    Closed,
}

/// A verdict on its way: poll it or wait for it.
#[derive(Debug)]
pub struct Pending {
    rx: crossbeam_channel::Receiver<Verdict>,
}

impl Pending {
    /// The verdict, waiting for it.
    pub fn wait(self) -> Verdict {
        self.rx.recv().expect("the validator answers every accepted request")
    }

    /// The verdict if it is ready.
    pub fn poll(&self) -> Option<Verdict> {
        self.rx.try_recv().ok()
    }

    /// The verdict if it comes within `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Verdict> {
        self.rx.recv_timeout(timeout).ok()
    }
}

/// Counters since the validator started, for [`Validator::status`] (and
/// the server's `status` request, which serializes it as JSON: field names
/// are part of that protocol).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct ValidatorStatus {
    /// Seconds since [`Validator::new`].
    pub uptime_seconds: f64,
    /// Requests waiting.
    pub queue_requests: u64,
    /// Their bytes (as the queue bound counts them).
    pub queue_bytes: u64,
    /// The configured `max_queue_bytes`.
    pub max_queue_bytes: u64,
    /// Requests accepted.
    pub requests: u64,
    /// Batches the worker ran.
    pub batches: u64,
    /// Blocks checked against the rules ([`BlockVerdict::Checked`]).
    pub blocks: u64,
    /// Blocks checked and found invalid.
    pub invalid_blocks: u64,
    /// Blocks answered [`BlockVerdict::Malformed`] or [`BlockVerdict::ExtraBytes`].
    pub malformed_blocks: u64,
    /// Signature requests' signatures (blocks' are not counted here).
    pub signatures: u64,
    /// Of `signatures`, those that did not verify.
    pub invalid_signatures: u64,
    /// Every signature checked, blocks' and requests'.
    pub signatures_checked: u64,
    /// `signatures_checked` over the worker's busy time and over uptime.
    pub busy_seconds: f64,
    /// `signatures_checked / busy_seconds` (0 before any work).
    pub signatures_per_busy_second: f64,
    /// `signatures_checked / uptime_seconds`.
    pub signatures_per_second: f64,
    /// `try_submit` refusals for a full queue.
    pub overloaded: u64,
    /// Submitters that waited for room (back-pressure).
    pub waited_for_room: u64,
    /// Chains kept.
    pub chains: u64,
    /// The configured `max_batch` (signatures).
    pub max_batch: u64,
    /// The configured `max_delay`, in microseconds (after clamping).
    pub max_delay_us: u64,
    /// What verifies signatures: `cpu`, `gpu: ADAPTER` or
    /// `auto: cpu + gpu: ADAPTER`.
    pub backend: String,
    /// Block requests accepted.
    pub block_requests: u64,
    /// Signature requests accepted.
    pub signature_requests: u64,
    /// Seconds from a request's submission to its verdict.
    pub latency_seconds: HistogramSnapshot,
    /// Signatures a batch held (requests' and blocks' as queued).
    pub batch_signatures: HistogramSnapshot,
    /// Where signatures were verified: CPU, GPU, GPU failures and the CPU
    /// fallbacks for them.
    pub signer: SignerStats,
}

struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    blocks: AtomicU64,
    invalid_blocks: AtomicU64,
    malformed_blocks: AtomicU64,
    signatures: AtomicU64,
    invalid_signatures: AtomicU64,
    signatures_checked: AtomicU64,
    busy_ns: AtomicU64,
    overloaded: AtomicU64,
    waited_for_room: AtomicU64,
    chains: AtomicU64,
    block_requests: AtomicU64,
    signature_requests: AtomicU64,
    latency: Histogram,
    batch_signatures: Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            requests: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            invalid_blocks: AtomicU64::new(0),
            malformed_blocks: AtomicU64::new(0),
            signatures: AtomicU64::new(0),
            invalid_signatures: AtomicU64::new(0),
            signatures_checked: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            waited_for_room: AtomicU64::new(0),
            chains: AtomicU64::new(0),
            block_requests: AtomicU64::new(0),
            signature_requests: AtomicU64::new(0),
            latency: Histogram::new(LATENCY_SECONDS),
            batch_signatures: Histogram::new(BATCH_SIGNATURES),
        }
    }
}

struct Job {
    request: Request,
    bytes: usize,
    signatures: usize,
    enqueued: Instant,
    reply: crossbeam_channel::Sender<Verdict>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    bytes: usize,
    signatures: usize,
    closed: bool,
}

struct Shared {
    config: ValidatorConfig,
    queue: Mutex<Queue>,
    /// Signalled when work arrives or the queue closes.
    work: Condvar,
    /// Signalled when room frees up.
    room: Condvar,
    counters: Counters,
    started: Instant,
    /// Verifies every signature, requests' and blocks', and learns how.
    signer: SharedSigner,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The coprocessor. Cheap to share (`&self` everywhere); dropping it (or
/// [`Validator::shutdown`]) answers everything queued, then stops the worker.
pub struct Validator {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("config", &self.shared.config).finish()
    }
}

impl Validator {
    /// Starts a validator: its worker thread (`vigil-validator`) and its
    /// signer (the GPU of `config`, if any). `max_delay` is cut to
    /// [`MAX_DELAY`].
    ///
    /// # Panics
    /// When the thread cannot be spawned.
    pub fn new(mut config: ValidatorConfig) -> Validator {
        config.max_delay = config.max_delay.min(MAX_DELAY);
        let signer = Signer::new(config.signer.clone()).shared();
        let shared = Arc::new(Shared {
            config,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            counters: Counters::default(),
            started: Instant::now(),
            signer,
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("vigil-validator".into())
            .spawn(move || Worker::new(worker_shared).run())
            .expect("spawn the validator thread");
        Validator { shared, worker: Some(worker) }
    }

    /// The configuration it runs with (`max_delay` as clamped).
    pub fn config(&self) -> &ValidatorConfig {
        &self.shared.config
    }

    /// Queues `request`, waiting for room when the queue is full.
    ///
    /// # Errors
    /// [`SubmitError::Closed`] once the validator is closing.
    pub fn submit(&self, request: Request) -> Result<Pending, SubmitError> {
        self.enqueue(request, true)
    }

    /// Queues `request`, or refuses at once when the queue is full.
    ///
    /// # Errors
    /// [`SubmitError::Overloaded`] when the queue is full,
    /// [`SubmitError::Closed`] once the validator is closing.
    pub fn try_submit(&self, request: Request) -> Result<Pending, SubmitError> {
        self.enqueue(request, false)
    }

    /// Submits one block and waits for its verdict.
    pub fn check_block(&self, block: Vec<u8>) -> Result<BlockVerdict, SubmitError> {
        match self.submit(Request::Block(block))?.wait() {
            Verdict::Block(v) => Ok(v),
            Verdict::Signatures(_) => unreachable!("a block request gets a block verdict"),
        }
    }

    /// Submits signatures and waits for their verdicts.
    pub fn check_signatures(&self, rules: RuleSet, batch: SigBatch) -> Result<Vec<bool>, SubmitError> {
        match self.submit(Request::Signatures { rules, batch })?.wait() {
            Verdict::Signatures(v) => Ok(v),
            Verdict::Block(_) => unreachable!("a signature request gets signature verdicts"),
        }
    }

    fn enqueue(&self, request: Request, wait: bool) -> Result<Pending, SubmitError> {
        let shared = &self.shared;
        let bytes = request.bytes();
        let signatures = request.signatures();
        let mut q = shared.lock();
        let mut waited = false;
        // A request bigger than the whole budget still goes in when the
        // queue is empty, so nothing is refused for good.
        while !q.closed && !q.jobs.is_empty() && q.bytes + bytes > shared.config.max_queue_bytes {
            if !wait {
                shared.counters.overloaded.fetch_add(1, Relaxed);
                return Err(SubmitError::Overloaded);
            }
            if !waited {
                shared.counters.waited_for_room.fetch_add(1, Relaxed);
                waited = true;
            }
            q = shared.room.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if q.closed {
            return Err(SubmitError::Closed);
        }
        let (reply, rx) = crossbeam_channel::bounded(1);
        q.jobs.push_back(Job { request, bytes, signatures, enqueued: Instant::now(), reply });
        q.bytes += bytes;
        q.signatures += signatures;
        shared.counters.requests.fetch_add(1, Relaxed);
        let by_kind = match q.jobs.back().map(|j| &j.request) {
            Some(Request::Block(_)) => &shared.counters.block_requests,
            _ => &shared.counters.signature_requests,
        };
        by_kind.fetch_add(1, Relaxed);
        drop(q);
        shared.work.notify_one();
        Ok(Pending { rx })
    }

    /// Its signer's counters so far: where signatures were verified, GPU
    /// failures and CPU fallbacks (waits for a batch in progress).
    pub fn signer_stats(&self) -> SignerStats {
        self.shared.signer.lock().unwrap_or_else(PoisonError::into_inner).stats()
    }

    /// Its counters now.
    pub fn status(&self) -> ValidatorStatus {
        let s = &self.shared;
        let c = &s.counters;
        let q = s.lock();
        let (queue_requests, queue_bytes) = (q.jobs.len() as u64, q.bytes as u64);
        drop(q);
        let uptime = s.started.elapsed().as_secs_f64();
        let busy = c.busy_ns.load(Relaxed) as f64 / 1e9;
        let checked = c.signatures_checked.load(Relaxed);
        let rate = |secs: f64| if secs > 0.0 { checked as f64 / secs } else { 0.0 };
        ValidatorStatus {
            uptime_seconds: uptime,
            queue_requests,
            queue_bytes,
            max_queue_bytes: s.config.max_queue_bytes as u64,
            requests: c.requests.load(Relaxed),
            batches: c.batches.load(Relaxed),
            blocks: c.blocks.load(Relaxed),
            invalid_blocks: c.invalid_blocks.load(Relaxed),
            malformed_blocks: c.malformed_blocks.load(Relaxed),
            signatures: c.signatures.load(Relaxed),
            invalid_signatures: c.invalid_signatures.load(Relaxed),
            signatures_checked: checked,
            busy_seconds: busy,
            signatures_per_busy_second: rate(busy),
            signatures_per_second: rate(uptime),
            overloaded: c.overloaded.load(Relaxed),
            waited_for_room: c.waited_for_room.load(Relaxed),
            chains: c.chains.load(Relaxed),
            max_batch: s.config.max_batch as u64,
            max_delay_us: s.config.max_delay.as_micros() as u64,
            backend: s.config.signer.backend_name(),
            block_requests: c.block_requests.load(Relaxed),
            signature_requests: c.signature_requests.load(Relaxed),
            latency_seconds: c.latency.snapshot(),
            batch_signatures: c.batch_signatures.snapshot(),
            signer: self.signer_stats(),
        }
    }

    /// Stops taking requests (submitters waiting for room get `Closed`);
    /// everything already queued is still answered.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        self.shared.room.notify_all();
    }

    /// Closes, answers every queued request, then stops the worker.
    pub fn shutdown(mut self) {
        self.close_and_join();
    }

    fn close_and_join(&mut self) {
        self.close();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.close_and_join();
    }
}

/// The worker thread's state: the chains (whose verifiers share the
/// validator's signer).
struct Worker {
    shared: Arc<Shared>,
    chains: HashMap<Digest, Verifier>,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Worker {
        Worker { shared, chains: HashMap::new() }
    }

    fn run(mut self) {
        while let Some(jobs) = self.next_batch() {
            let started = Instant::now();
            let enqueued: Vec<Instant> = jobs.iter().map(|j| j.enqueued).collect();
            let signatures: usize = jobs.iter().map(|j| j.signatures).sum();
            self.process(jobs);
            let c = &self.shared.counters;
            c.busy_ns.fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
            c.batches.fetch_add(1, Relaxed);
            c.batch_signatures.observe(signatures as f64);
            // Every request of the batch is answered by now.
            for at in enqueued {
                c.latency.observe(at.elapsed().as_secs_f64());
            }
        }
    }

    /// Waits for work, then for `max_batch` signatures or the first
    /// request's `max_delay`, whichever comes first, and takes a batch.
    /// `None` once the queue is closed and empty.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let shared = &*self.shared;
        let config = &shared.config;
        let mut q = shared.lock();
        while q.jobs.is_empty() {
            if q.closed {
                return None;
            }
            q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        // A delay too long to add to an instant means: wait for a full batch.
        let deadline = q.jobs[0].enqueued.checked_add(config.max_delay);
        while !q.closed && q.signatures < config.max_batch {
            let now = Instant::now();
            match deadline {
                Some(d) if now >= d => break,
                Some(d) => q = shared.work.wait_timeout(q, d - now).unwrap_or_else(PoisonError::into_inner).0,
                None => q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner),
            }
        }
        let mut jobs = Vec::new();
        let mut signatures = 0;
        while let Some(job) = q.jobs.front() {
            if !jobs.is_empty() && signatures + job.signatures > config.max_batch {
                break;
            }
            let job = q.jobs.pop_front().expect("front exists");
            signatures += job.signatures;
            q.bytes -= job.bytes;
            q.signatures -= job.signatures;
            jobs.push(job);
        }
        drop(q);
        shared.room.notify_all();
        Some(jobs)
    }

    fn process(&mut self, jobs: Vec<Job>) {
        let mut blocks = Vec::new();
        let mut by_rules: HashMap<RuleSet, Vec<(SigBatch, crossbeam_channel::Sender<Verdict>)>> = HashMap::new();
        for job in jobs {
            match job.request {
                Request::Block(bytes) => blocks.push((bytes, job.reply)),
                Request::Signatures { rules, batch } => by_rules.entry(rules).or_default().push((batch, job.reply)),
            }
        }
        for (rules, requests) in by_rules {
            self.signatures(rules, requests);
        }
        self.blocks(blocks);
    }

    /// Every signature of every request in one verification, answers split
    /// back per request.
    fn signatures(&mut self, rules: RuleSet, requests: Vec<(SigBatch, crossbeam_channel::Sender<Verdict>)>) {
        let items: Vec<SigItem<'_>> = requests.iter().flat_map(|(b, _)| b.items()).collect();
        let verdicts = self.shared.signer.lock().unwrap_or_else(PoisonError::into_inner).verify(rules, &items);
        let c = &self.shared.counters;
        c.signatures.fetch_add(items.len() as u64, Relaxed);
        c.signatures_checked.fetch_add(items.len() as u64, Relaxed);
        c.invalid_signatures.fetch_add(verdicts.iter().filter(|v| !**v).count() as u64, Relaxed);
        let mut rest = &verdicts[..];
        for (batch, reply) in &requests {
            let (mine, tail) = rest.split_at(batch.len());
            rest = tail;
            // A caller that went away does not need its answer.
            let _ = reply.send(Verdict::Signatures(mine.to_vec()));
        }
    }

    /// Blocks in submission order: each framed alone (a malformed one is
    /// answered and applied to no chain), then each chain's blocks verified
    /// together, in order.
    fn blocks(&mut self, blocks: Vec<(Vec<u8>, crossbeam_channel::Sender<Verdict>)>) {
        let c = &self.shared.counters;
        let config = &self.shared.config;
        // Per chain, in order of first appearance: (concatenated blocks, replies).
        let mut groups: Vec<(Digest, Vec<u8>, Vec<crossbeam_channel::Sender<Verdict>>)> = Vec::new();
        // Chains first seen in this batch: kept only if one of their blocks passes.
        let mut new_chains: Vec<Digest> = Vec::new();
        for (bytes, reply) in blocks {
            let chain_id = match BlockView::parse(&bytes, 0) {
                Ok((view, len)) if len == bytes.len() => view.header.chain_id,
                parsed => {
                    let verdict = match parsed {
                        Ok((_, len)) => BlockVerdict::ExtraBytes { block_len: len as u64, total: bytes.len() as u64 },
                        Err(reason) => BlockVerdict::Malformed { offset: 0, reason },
                    };
                    c.malformed_blocks.fetch_add(1, Relaxed);
                    let _ = reply.send(Verdict::Block(verdict));
                    continue;
                }
            };
            let key = config.chain_id.unwrap_or(chain_id);
            if !self.chains.contains_key(&key) {
                if self.chains.len() >= config.max_chains {
                    let _ = reply.send(Verdict::Block(BlockVerdict::TooManyChains { chain_id }));
                    continue;
                }
                let opts = VerifyOptions {
                    chain_id: Some(key),
                    authorities: config.authorities.clone(),
                    rules: config.rules,
                    ..VerifyOptions::default()
                };
                self.chains.insert(key, Verifier::with_signer(opts, self.shared.signer.clone()));
                if config.chain_id.is_none() {
                    new_chains.push(key);
                }
            }
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => {
                    g.1.extend_from_slice(&bytes);
                    g.2.push(reply);
                }
                None => groups.push((key, bytes, vec![reply])),
            }
        }
        for (key, bytes, replies) in groups {
            let mut any_valid = false;
            let verifier = self.chains.get_mut(&key).expect("made above");
            let mut sink = CollectSink::default();
            verifier.verify_bytes(Path::new("<submitted>"), &bytes, &mut sink);
            debug_assert!(sink.malformed.is_empty(), "each block was framed alone first");
            debug_assert_eq!(sink.blocks.len(), replies.len());
            for (mut report, reply) in sink.blocks.into_iter().zip(replies) {
                // Offsets were into the concatenation; each block is its own submission.
                report.offset = 0;
                c.blocks.fetch_add(1, Relaxed);
                c.signatures_checked.fetch_add(u64::from(report.tx_count) + 1, Relaxed);
                if report.valid() {
                    any_valid = true;
                } else {
                    c.invalid_blocks.fetch_add(1, Relaxed);
                }
                let _ = reply.send(Verdict::Block(BlockVerdict::Checked(report)));
            }
            // A new chain none of whose blocks passed (junk, a forged
            // genesis) gives its slot back: the next block of that chain id
            // starts it afresh.
            if !any_valid && new_chains.contains(&key) {
                self.chains.remove(&key);
            }
        }
        c.chains.store(self.chains.len() as u64, Relaxed);
    }
}
