//! `vigil bench`: measures each stage of verification and the whole against
//! a baseline on the user's own machine, in one run (these machines are
//! noisy: only ratios measured side by side mean anything). The criterion
//! benches in `benches/` cover the same ground with statistics.

pub mod crossover;
pub mod gpu;
pub mod serve;

use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vigil_datasets::{GenConfig, generate};
use vigil_engine::GpuMode;
use vigil_engine::format::blocks;
use vigil_engine::hash::{self, Digest, K_BLOCK, K_LEAF, K_NODE, K_TX};
use vigil_engine::sig::{self, BatchSizer, RuleSet, SigItem, SignerConfig};
use vigil_engine::{BlockView, TxView};
use vigil_engine::{ReportSink, Segment, Verifier, VerifyOptions, expand_paths};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Verify this chain instead of generating one.
    pub chain: Option<PathBuf>,
    /// Transactions of the generated chain.
    pub txs: u64,
    /// Senders (devices) of the generated chain.
    pub senders: u32,
    /// Seconds to spend on each measurement (the best of three runs counts).
    pub seconds: f64,
    /// Also measure signatures and end to end on this GPU.
    pub gpu: Option<std::sync::Arc<vigil_engine::gpu::GpuSigner>>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { chain: None, txs: 100_000, senders: 64, seconds: 1.0, gpu: None }
    }
}

/// One comparison: ours against a baseline, same work, same run.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub stage: String,
    pub unit: &'static str,
    pub ours: String,
    pub ours_per_s: f64,
    pub baseline: String,
    pub baseline_per_s: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cpu: String,
    pub cores: usize,
    pub curve_backend: &'static str,
    /// The signature lanes used (`sig::lanes`), or "none".
    pub sig_lanes: &'static str,
    /// The GPU adapter measured, if any.
    pub gpu_adapter: Option<String>,
    pub hash_backend: &'static str,
    pub chain_transactions: u64,
    pub chain_blocks: u64,
    pub chain_bytes: u64,
    pub rows: Vec<Row>,
    /// (threads, transactions/s) of `vigil verify` end to end.
    pub threads_curve: Vec<(usize, f64)>,
    /// (batch size, signatures/s on one core) of zip215 batch verification.
    pub batch_curve: Vec<(usize, f64)>,
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

/// Runs `f` repeatedly for about `seconds` (at least 3 times) and returns the
/// best rate, `work` units per run.
fn rate<R>(seconds: f64, work: u64, mut f: impl FnMut() -> R) -> f64 {
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 3 || (started.elapsed() < budget && runs < 50) {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed());
        runs += 1;
    }
    work as f64 / best.as_secs_f64().max(1e-9)
}

/// `n` valid signatures by `keys` keys over 32-byte messages (BLAKE3 of the
/// index), signed on all cores: (public key, message, signature).
pub fn signed(n: usize, keys: usize) -> Vec<([u8; 32], [u8; 32], [u8; 64])> {
    let keys: Vec<ed25519_dalek::SigningKey> = (0..keys.max(1) as u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            ed25519_dalek::SigningKey::from_bytes(&seed)
        })
        .collect();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let key = &keys[i % keys.len()];
            let message = *blake3::hash(&(i as u64).to_le_bytes()).as_bytes();
            (key.verifying_key().to_bytes(), message, ed25519_dalek::Signer::sign(key, &message).to_bytes())
        })
        .collect()
}

/// A chain loaded for measurement: its files, bytes and signatures.
pub struct Loaded {
    pub files: Vec<PathBuf>,
    pub segments: Vec<Segment>,
    pub transactions: u64,
    pub blocks: u64,
    pub bytes: u64,
    _tmp: Option<tempfile::TempDir>,
}

pub fn load_or_generate(opts: &BenchOptions, progress: &dyn Fn(&str)) -> Result<Loaded, String> {
    let (dir, tmp) = match &opts.chain {
        Some(dir) => (dir.clone(), None),
        None => {
            let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            let per_block = 200u32;
            let cfg = GenConfig {
                seed: 1,
                blocks: opts.txs.div_ceil(u64::from(per_block)).max(1),
                txs_per_block: per_block..=per_block,
                senders: opts.senders,
                payload: 100..=300,
                segment_size: 64 << 20,
                faults: vec![],
            };
            progress(&format!("generating a chain of {} transactions", cfg.blocks * u64::from(per_block)));
            generate(tmp.path(), &cfg, &|_| {}).map_err(|e| e.to_string())?;
            (tmp.path().to_owned(), Some(tmp))
        }
    };
    let files = expand_paths(&[dir]).map_err(|e| e.to_string())?;
    let segments: Vec<Segment> = files
        .iter()
        .map(|f| Segment::open(f, vigil_engine::IoMode::Mmap))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let (mut transactions, mut blocks_n, mut bytes) = (0, 0, 0);
    for s in &segments {
        bytes += s.bytes().len() as u64;
        for (_, b) in blocks(s.bytes()) {
            let b = b.map_err(|e| format!("the bench chain is malformed: {e}"))?;
            transactions += u64::from(b.header.tx_count());
            blocks_n += 1;
        }
    }
    Ok(Loaded { files, segments, transactions, blocks: blocks_n, bytes, _tmp: tmp })
}

/// The naive baseline: every rule, one thread, one `blake3::keyed_hash` call
/// per message and one single signature verification per signature.
/// Returns (transactions, invalid blocks).
pub fn naive_verify(segments: &[&[u8]]) -> (u64, u64) {
    let (mut txs, mut invalid) = (0u64, 0u64);
    let mut nonces: HashMap<[u8; 32], u64> = HashMap::new();
    let mut parent: Option<(Digest, u64, u64)> = None;
    for data in segments {
        for (_, block) in blocks(data) {
            let Ok(block) = block else {
                invalid += 1;
                break;
            };
            let h = block.header;
            let mut ok = true;
            let mut level = Vec::new();
            for tx in block.txs() {
                let mut msg = h.chain_id.to_vec();
                msg.extend_from_slice(tx.signed_part());
                let id = *blake3::keyed_hash(&K_TX, &msg).as_bytes();
                ok &= sig::verify(RuleSet::Zip215, &tx.header().sender, &id, tx.signature());
                let mut leaf_msg = id.to_vec();
                leaf_msg.extend_from_slice(tx.signature());
                level.push(*blake3::keyed_hash(&K_LEAF, &leaf_msg).as_bytes());
                ok &= tx.header().timestamp_ms() <= h.timestamp_ms();
                let next = nonces.entry(tx.header().sender).or_insert(0);
                ok &= *next == tx.header().nonce();
                *next = tx.header().nonce().wrapping_add(1);
                txs += 1;
            }
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|c| {
                        if c.len() == 2 {
                            *blake3::keyed_hash(&K_NODE, &[c[0], c[1]].concat()).as_bytes()
                        } else {
                            c[0]
                        }
                    })
                    .collect();
            }
            let root = level.first().copied().unwrap_or(hash::EMPTY_TX_ROOT);
            ok &= root == h.tx_root;
            let block_hash = *blake3::keyed_hash(&K_BLOCK, h.hashed_bytes()).as_bytes();
            ok &= sig::verify(RuleSet::Zip215, &h.proposer, &block_hash, &h.proposer_sig);
            if let Some((ph, pheight, pts)) = parent {
                ok &= h.prev_hash == ph && Some(h.height()) == pheight.checked_add(1) && h.timestamp_ms() >= pts;
            }
            parent = Some((block_hash, h.height(), h.timestamp_ms()));
            invalid += u64::from(!ok);
        }
    }
    (txs, invalid)
}

/// Every transaction signature of a chain, with its tx_id as the message.
pub struct Signatures {
    pub keys: Vec<[u8; 32]>,
    pub ids: Vec<Digest>,
    pub sigs: Vec<[u8; 64]>,
}

impl Signatures {
    pub fn of(segments: &[&[u8]]) -> Signatures {
        let mut s = Signatures { keys: vec![], ids: vec![], sigs: vec![] };
        for data in segments {
            for (_, block) in blocks(data) {
                let Ok(block) = block else { break };
                for tx in block.txs() {
                    s.keys.push(tx.header().sender);
                    s.ids.push(hash::tx_id(&block.header.chain_id, tx.signed_part()));
                    s.sigs.push(*tx.signature());
                }
            }
        }
        s
    }

    pub fn items(&self) -> Vec<SigItem<'_>> {
        (0..self.keys.len())
            .map(|i| SigItem { public_key: &self.keys[i], message: &self.ids[i], signature: &self.sigs[i] })
            .collect()
    }
}

/// A sink that only counts (the bench measures verification, not printing).
#[derive(Default)]
struct CountSink {
    invalid: u64,
}

impl ReportSink for CountSink {
    fn block(&mut self, r: &vigil_engine::BlockReport) {
        self.invalid += u64::from(!r.valid());
    }
    fn malformed(&mut self, _: &vigil_engine::MalformedReport) {
        self.invalid += 1;
    }
}

fn one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a 1-thread pool").install(f)
}

fn verify_once(files: &[PathBuf], threads: usize) -> u64 {
    let mut opts = VerifyOptions::default();
    opts.threads = Some(threads);
    let mut sink = CountSink::default();
    let summary = Verifier::new(opts).verify_files(files, &mut sink).expect("bench chain readable");
    assert_eq!(sink.invalid, 0, "the bench chain must be valid");
    summary.transactions
}

fn fmt_rate(per_s: f64, unit: &str) -> String {
    if per_s >= 1e6 { format!("{:.2}M {unit}/s", per_s / 1e6) } else { format!("{:.1}k {unit}/s", per_s / 1e3) }
}

fn row(stage: &str, unit: &'static str, ours: f64, baseline_name: &str, baseline: f64) -> Row {
    Row {
        stage: stage.to_owned(),
        unit,
        ours: fmt_rate(ours, unit),
        ours_per_s: ours,
        baseline: format!("{baseline_name}: {}", fmt_rate(baseline, unit)),
        baseline_per_s: baseline,
        ratio: ours / baseline,
    }
}

/// What a user of ed25519-zebra would write: batches of 64, each signature
/// of a failed batch checked on its own. Returns how many are valid. (The
/// baseline of `vigil bench`, `sig_jsonl` and the `sigs` criterion bench.)
pub fn zebra_batch_64(items: &[SigItem<'_>]) -> usize {
    items
        .chunks(64)
        .map(|chunk| {
            let mut v = ed25519_zebra::batch::Verifier::new();
            for it in chunk {
                v.queue((
                    ed25519_zebra::VerificationKeyBytes::from(*it.public_key),
                    ed25519_zebra::Signature::from_bytes(it.signature),
                    it.message,
                ));
            }
            if v.verify(rand::rng()).is_ok() {
                return chunk.len();
            }
            chunk.iter().filter(|it| sig::verify(RuleSet::Zip215, it.public_key, it.message, it.signature)).count()
        })
        .sum()
}

/// Runs every measurement; `progress` hears what is being measured.
pub fn run(opts: &BenchOptions, progress: &dyn Fn(&str)) -> Result<BenchReport, String> {
    let loaded = load_or_generate(opts, progress)?;
    let segs: Vec<&[u8]> = loaded.segments.iter().map(|s| s.bytes()).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let secs = opts.seconds;
    let n = loaded.transactions;
    let mut rows = Vec::new();

    progress("hashing (one core)");
    // Framed once beforehand (as the verifier's frame stage does): this row
    // measures hashing, not the walk over the bodies.
    let views: Vec<(BlockView<'_>, Vec<TxView<'_>>)> = segs
        .iter()
        .flat_map(|d| blocks(d).map_while(|(_, b)| b.ok()))
        .map(|view| (view, view.txs().collect()))
        .collect();
    let hash_ours = one_thread(|| rate(secs, n, || hash_chain(&views)));
    let hash_base = one_thread(|| rate(secs, n, || hash_chain_per_message(&views)));
    rows.push(row("hash: tx_id, leaf, Merkle (1 core)", "tx", hash_ours, "blake3 per message", hash_base));

    progress("signatures (one core)");
    let sigs = Signatures::of(&segs);
    let items = sigs.items();
    let sample = &items[..items.len().min(20_000)];
    let mut out = vec![false; sample.len()];
    let sig_ours_1 = one_thread(|| {
        let mut sizer = BatchSizer::new();
        rate(secs, sample.len() as u64, || sig::verify_many_tuned(RuleSet::Zip215, sample, &mut out, &mut sizer))
    });
    let strict = |items: &[SigItem<'_>]| {
        items.iter().all(|it| {
            let key = ed25519_dalek::VerifyingKey::from_bytes(it.public_key).expect("valid key");
            key.verify_strict(it.message, &ed25519_dalek::Signature::from_bytes(it.signature)).is_ok()
        })
    };
    let short = &sample[..sample.len().min(4_000)];
    let sig_base_1 = rate(secs, short.len() as u64, || assert!(strict(short)));
    rows.push(row("signatures, zip215 (1 core)", "sig", sig_ours_1, "dalek verify_strict", sig_base_1));
    let zebra_1 = rate(secs, short.len() as u64, || assert_eq!(zebra_batch_64(short), short.len()));
    rows.push(row("signatures, zip215 (1 core)", "sig", sig_ours_1, "zebra batch of 64", zebra_1));
    let mut out_strict = vec![false; sample.len()];
    let strict_lanes_1 = one_thread(|| {
        rate(secs, sample.len() as u64, || sig::verify_many(RuleSet::Strict, sample, &mut out_strict, 1))
    });
    rows.push(row("signatures, strict (1 core)", "sig", strict_lanes_1, "dalek verify_strict", sig_base_1));

    progress("signatures with 1% invalid (one core)");
    // The same signatures, every hundredth with a flipped message bit.
    let tampered: Vec<Vec<u8>> = sample
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut m = it.message.to_vec();
            if i % 100 == 50 {
                m[0] ^= 1;
            }
            m
        })
        .collect();
    let spam: Vec<SigItem<'_>> = sample
        .iter()
        .zip(&tampered)
        .map(|(it, m)| SigItem { public_key: it.public_key, message: m, signature: it.signature })
        .collect();
    let mut out = vec![false; spam.len()];
    let sig_spam_1 = one_thread(|| {
        let mut sizer = BatchSizer::new();
        rate(secs, spam.len() as u64, || sig::verify_many_tuned(RuleSet::Zip215, &spam, &mut out, &mut sizer))
    });
    assert_eq!(out.iter().filter(|&&ok| !ok).count(), (0..spam.len()).filter(|i| i % 100 == 50).count());
    rows.push(row("signatures, zip215, 1% invalid (1 core)", "sig", sig_spam_1, "all valid", sig_ours_1));

    progress("signatures (all cores)");
    let mut out = vec![false; items.len()];
    let mut sizer = BatchSizer::new();
    let sig_ours_all = rate(secs, items.len() as u64, || {
        for (chunk, out) in items.chunks(32 * 1024).zip(out.chunks_mut(32 * 1024)) {
            sig::verify_many_tuned(RuleSet::Zip215, chunk, out, &mut sizer);
        }
    });
    let sig_base_all = rate(secs, (short.len() * cores) as u64, || {
        (0..cores).into_par_iter().for_each(|_| assert!(strict(short)));
    });
    rows.push(row(
        &format!("signatures, zip215 ({cores} cores)"),
        "sig",
        sig_ours_all,
        "dalek verify_strict",
        sig_base_all,
    ));

    progress("end to end");
    let e2e = rate(secs, n, || verify_once(&loaded.files, cores));
    let naive_segs = &segs[..1];
    let (naive_txs, naive_invalid) = naive_verify(naive_segs);
    assert_eq!(naive_invalid, 0);
    let naive = rate(secs, naive_txs, || naive_verify(naive_segs));
    rows.push(row(&format!("end to end, vigil verify ({cores} cores)"), "tx", e2e, "naive, 1 thread", naive));
    rows.push(row(
        &format!("end to end against signatures alone ({cores} cores)"),
        "tx",
        e2e,
        "signatures alone",
        sig_ours_all,
    ));

    if let Some(gpu) = &opts.gpu {
        progress("signatures and end to end on the GPU");
        let name = gpu.adapter().name.clone();
        let sig_gpu =
            rate(secs, sample.len() as u64, || gpu.verify(RuleSet::Zip215, sample).expect("GPU verification"));
        rows.push(row(&format!("signatures on the GPU ({name})"), "sig", sig_gpu, "CPU, all cores", sig_ours_all));
        let e2e_gpu = rate(secs, n, || {
            let mut opts = VerifyOptions::default();
            opts.signer = SignerConfig::gpu(gpu.clone(), GpuMode::Only);
            let mut sink = CountSink::default();
            Verifier::new(opts).verify_files(&loaded.files, &mut sink).expect("bench chain readable");
            assert_eq!(sink.invalid, 0);
        });
        rows.push(row(&format!("end to end, --backend gpu ({name})"), "tx", e2e_gpu, "--backend cpu", e2e));
    }

    progress("scaling with threads");
    let threads_curve = (1..=cores).map(|t| (t, rate(secs, n, || verify_once(&loaded.files, t)))).collect();
    progress("batch sizes");
    let batch_curve = [1usize, 4, 16, 64, 256, 1024, 4096]
        .into_iter()
        .map(|size| {
            let work = &items[..items.len().min(size.max(4096))];
            let mut out = vec![false; work.len()];
            let per_s = one_thread(|| {
                rate(secs / 2.0, work.len() as u64, || {
                    for (c, o) in work.chunks(size).zip(out.chunks_mut(size)) {
                        sig::verify_zip215_batch(c, o);
                    }
                })
            });
            (size, per_s)
        })
        .collect();

    Ok(BenchReport {
        cpu: cpu_model(),
        cores,
        curve_backend: sig::curve_backend(),
        sig_lanes: sig::lanes::Lanes::best().map_or("none", |l| l.name()),
        gpu_adapter: opts.gpu.as_ref().map(|g| g.adapter().name.clone()),
        hash_backend: vigil_engine::hash::lanes::backend_name(),
        chain_transactions: n,
        chain_blocks: loaded.blocks,
        chain_bytes: loaded.bytes,
        rows,
        threads_curve,
        batch_curve,
    })
}

/// Every tx_id, leaf and Merkle root of framed blocks with vigil's hashing.
pub fn hash_chain(blocks: &[(BlockView<'_>, Vec<TxView<'_>>)]) -> Digest {
    let mut acc = [0u8; 32];
    let (mut ids, mut leaves, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for (block, txs) in blocks {
        ids.resize(txs.len(), [0; 32]);
        leaves.resize(txs.len(), [0; 32]);
        hash::tx_ids_and_leaves(&block.header.chain_id, txs, &mut ids, &mut leaves);
        acc[0] ^= hash::merkle_root(&leaves, &mut scratch)[0];
    }
    acc
}

/// The same with one `blake3::keyed_hash` call per message.
pub fn hash_chain_per_message(blocks: &[(BlockView<'_>, Vec<TxView<'_>>)]) -> Digest {
    let mut acc = [0u8; 32];
    for (block, txs) in blocks {
        let mut leaves: Vec<Digest> = txs
            .iter()
            .map(|tx| {
                let mut msg = block.header.chain_id.to_vec();
                msg.extend_from_slice(tx.signed_part());
                let id = *blake3::keyed_hash(&K_TX, &msg).as_bytes();
                let mut leaf = id.to_vec();
                leaf.extend_from_slice(tx.signature());
                *blake3::keyed_hash(&K_LEAF, &leaf).as_bytes()
            })
            .collect();
        acc[0] ^= hash::merkle_root_in_place(&mut leaves)[0];
    }
    acc
}
