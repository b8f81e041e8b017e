//! The hybrid backend (`--backend auto`: each batch split between the GPU
//! and the CPU) gives exactly the CPU's verdicts: for random mixes of valid
//! and invalid signatures (every family of `vigil_engine::test_utils::sig_cases`) under both
//! rule sets, at fixed GPU shares from 0 to 1 and on tiny batches, with the
//! learning splitter, through the `Verifier` on every conformance chain, and
//! through the `Validator`.
//!
//! Needs a GPU adapter (any: the hybrid is forced, so lavapipe does): without
//! one each test says so and passes, unless `VIGIL_REQUIRE_GPU=1`. GPU work
//! is kept to a few thousand signatures (lavapipe verifies ~1,500 a second)
//! and the signer is opened once for the whole file (the pipeline compiles
//! slowly).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use vigil_engine::gpu::GpuSigner;
use vigil_engine::sig::{self, SigItem, Signer, SignerConfig};
use vigil_engine::{
    BlockVerdict, CollectSink, GpuMode, Request, RuleSet, SigBatch, Validator, ValidatorConfig, Verdict, Verifier,
    VerifyOptions,
};

use crate::common;
use common::sig_cases::{Sig, generate_all};

const SEED: u64 = 0x6879_6272_6964; // "hybrid"

/// The signer, opened once for every test of this file; `None` after a skip
/// notice.
fn gpu() -> Option<Arc<GpuSigner>> {
    static GPU: OnceLock<Option<Arc<GpuSigner>>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| {
        let gpu = common::gpu::or_skip(GpuSigner::open_with(&common::gpu::options())).map(Arc::new);
        if let Some(gpu) = &gpu {
            eprintln!("GPU adapter: {} (software: {})", gpu.adapter().name, gpu.is_software());
        }
        gpu
    });
    if gpu.is_none() {
        // Each test says it skips (the panic for VIGIL_REQUIRE_GPU=1 came
        // from the first).
        common::gpu::or_skip(Err::<(), _>("no GPU adapter (see the first notice)"))?;
    }
    gpu.clone()
}

fn want(rules: RuleSet, sigs: &[Sig]) -> Vec<bool> {
    sigs.iter()
        .map(|s| {
            let single = sig::verify(rules, &s.public_key, &s.message, &s.signature);
            let built = if rules == RuleSet::Zip215 { s.want_zip215 } else { s.want_strict };
            assert_eq!(single, built, "{}", s.dump());
            single
        })
        .collect()
}

/// The verdicts of a fresh signer splitting each batch with `share` for the
/// GPU; checks its counters add up.
fn hybrid_verdicts(gpu: &Arc<GpuSigner>, rules: RuleSet, items: &[SigItem<'_>], share: f64) -> Vec<bool> {
    let mut signer = Signer::new(SignerConfig::gpu(gpu.clone(), GpuMode::Split(share)));
    let verdicts = signer.verify(rules, items);
    let stats = signer.stats();
    assert_eq!(stats.signatures, items.len() as u64);
    assert_eq!(stats.gpu_signatures + stats.cpu_signatures, items.len() as u64, "{stats:?}");
    assert_eq!(stats.gpu_failures, 0, "{:?}", signer.last_gpu_failure());
    verdicts
}

fn assert_same(what: &str, rules: RuleSet, sigs: &[Sig], got: &[bool], want: &[bool]) {
    assert_eq!(got.len(), want.len(), "{what} under {rules}: verdict count");
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!("{what} under {rules}: signature {i}: hybrid says {}, CPU says {}: {}", got[i], want[i], sigs[i].dump());
    }
}

#[test]
fn hybrid_verdicts_equal_the_cpu_at_every_split_and_batch_size() {
    let Some(gpu) = gpu() else { return };
    // Fresh, flipped, S ≥ L, small- and mixed-order, non-canonical and
    // non-decodable signatures, shuffled together.
    let sigs = generate_all(400, SEED);
    let items: Vec<SigItem<'_>> = sigs.iter().map(Sig::item).collect();
    let invalid = sigs.iter().filter(|s| !s.want_zip215).count();
    assert!(invalid > 50 && invalid < 350, "a mix: {invalid} of 400 invalid under zip215");
    let mut on_gpu = 0;
    for rules in RuleSet::ALL {
        let want = want(rules, &sigs);
        // Tiny batches (under the batch verifier's single-check size, odd
        // splits) at every share, then the whole mix at a few.
        let tiny = [0usize, 1, 2, 3, 7, 64];
        for (sizes, shares) in [(&tiny[..], &[0.0, 0.25, 0.5, 0.99, 1.0][..]), (&[400][..], &[0.0, 0.1, 0.6, 1.0][..])]
        {
            for &n in sizes {
                for &share in shares {
                    // Different windows of the mix for different cases.
                    let start = (n * 7 + (share * 100.0) as usize) % (sigs.len() - n + 1);
                    let window = start..start + n;
                    let got = hybrid_verdicts(&gpu, rules, &items[window.clone()], share);
                    let what = format!("{n} signatures from {start}, GPU share {share}");
                    assert_same(&what, rules, &sigs[window.clone()], &got, &want[window]);
                    on_gpu += (n as f64 * share).round() as usize;
                }
            }
        }
    }
    eprintln!("hybrid: every split equal to the CPU ({on_gpu} signatures on the GPU)");
}

#[test]
fn the_learning_splitter_gives_the_cpu_verdicts_batch_after_batch() {
    let Some(gpu) = gpu() else { return };
    let sigs = generate_all(1200, SEED ^ 1);
    let items: Vec<SigItem<'_>> = sigs.iter().map(Sig::item).collect();
    for rules in RuleSet::ALL {
        let want = want(rules, &sigs);
        // One splitter learning over batches of varied sizes, as a run does
        // (on lavapipe it learns to leave the GPU out but for probes).
        let mut signer = Signer::new(SignerConfig::gpu(gpu.clone(), GpuMode::Hybrid));
        let mut start = 0;
        for n in [300, 5, 200, 130, 1, 400, 64, 100].into_iter().cycle().take(12) {
            let window = start..(start + n).min(sigs.len());
            let got = signer.verify(rules, &items[window.clone()]);
            assert_same(&format!("batch {window:?}"), rules, &sigs[window.clone()], &got, &want[window.clone()]);
            start = if window.end == sigs.len() { 0 } else { window.end };
        }
        let splitter = signer.splitter();
        let (alone, beside) = splitter.gpu_models();
        assert!(alone.or(beside).is_some(), "the GPU was calibrated");
        eprintln!(
            "{rules}: GPU (latency s, sig/s) alone {alone:?}, beside the CPU {beside:?}; CPU sig/s (alone, beside) {:?}; \
             crossover {:?}",
            splitter.cpu_rates(rules),
            splitter.crossover(rules)
        );
        let stats = signer.stats();
        assert!(stats.gpu_calls > 0 && stats.gpu_signatures > 0, "{stats:?}");
        assert_eq!(stats.gpu_failures, 0, "{:?}", signer.last_gpu_failure());
    }
}

use common::gpu::Report;

fn report(files: &[PathBuf], rules: RuleSet, gpu: Option<Arc<GpuSigner>>, gpu_mode: GpuMode) -> Report {
    // Small batches: several per chain, so splits fall inside and across blocks.
    let mut opts = VerifyOptions::default();
    (opts.rules, opts.max_batch_txs) = (rules, Some(700));
    opts.signer = SignerConfig::default().with_gpu(gpu, gpu_mode);
    common::gpu::report(files, opts)
}

#[test]
fn verifier_with_the_hybrid_reports_exactly_what_the_cpu_reports_on_every_conformance_file() {
    let Some(gpu) = gpu() else { return };
    let chains = common::data::conformance_chains();
    let shares = [0.5, 1.0, 0.3, 0.0, 0.9];
    for (i, files) in chains.iter().enumerate() {
        for rules in RuleSet::ALL {
            let cpu = report(files, rules, None, GpuMode::Only);
            // The valid chain also with the learning splitter.
            let modes: &[GpuMode] = if i == 0 {
                &[GpuMode::Split(0.5), GpuMode::Hybrid]
            } else {
                &[GpuMode::Split(shares[i % shares.len()])]
            };
            for &mode in modes {
                let hybrid = report(files, rules, Some(gpu.clone()), mode);
                assert_eq!(hybrid, cpu, "{files:?} under {rules}, {mode:?}");
            }
        }
    }
}

#[test]
fn validator_with_the_hybrid_answers_what_the_cpu_answers() {
    let Some(gpu) = gpu() else { return };
    let chains = common::data::conformance_chains();
    let mut config = ValidatorConfig::default();
    config.signer = SignerConfig::gpu(gpu, GpuMode::Split(0.25));
    let validator = Validator::new(config);
    assert!(validator.status().backend.starts_with("auto: cpu + gpu"), "{}", validator.status().backend);
    // The valid chain's blocks (one request each) and signature requests.
    let mut on_cpu = CollectSink::default();
    Verifier::new(VerifyOptions::default()).verify_files(&chains[0], &mut on_cpu).unwrap();
    let mut blocks = Vec::new();
    for f in &chains[0] {
        let data = std::fs::read(f).unwrap();
        for (offset, b) in vigil_engine::format::blocks(&data) {
            let view = b.unwrap();
            let end = offset as usize + view.len();
            blocks.push(validator.submit(Request::Block(data[offset as usize..end].to_vec())).unwrap());
        }
    }
    let sigs = generate_all(400, SEED ^ 2);
    let mut requests = Vec::new();
    for (i, chunk) in sigs.chunks(37).enumerate() {
        let mut batch = SigBatch::new();
        for s in chunk {
            batch.push(&s.public_key, &s.message, &s.signature);
        }
        let rules = RuleSet::ALL[i % 2];
        requests.push((rules, chunk, validator.submit(Request::Signatures { rules, batch }).unwrap()));
    }
    assert_eq!(blocks.len(), on_cpu.blocks.len());
    for (pending, w) in blocks.into_iter().zip(&on_cpu.blocks) {
        match pending.wait() {
            Verdict::Block(BlockVerdict::Checked(got)) => {
                assert_eq!((got.height, got.hash, &got.failures), (w.height, w.hash, &w.failures))
            }
            other => panic!("{other:?}"),
        }
    }
    for (rules, chunk, pending) in requests {
        let Verdict::Signatures(got) = pending.wait() else { panic!("not signatures") };
        assert_same("a signature request", rules, chunk, &got, &want(rules, chunk));
    }
    // The requests' and the blocks' signatures went through the validator's
    // one signer, a share of them on the GPU, none failing.
    let stats = validator.signer_stats();
    assert!(stats.signatures >= 400 && stats.gpu_signatures > 0, "{stats:?}");
    assert_eq!(stats.gpu_signatures + stats.cpu_signatures, stats.signatures, "{stats:?}");
    assert_eq!((stats.gpu_failures, stats.cpu_fallbacks), (0, 0), "{stats:?}");
}
