//! The verifier with signatures on the GPU gives exactly the CPU's report on
//! every conformance file (valid chain and every fault file), and so does the
//! coprocessor (`Validator`) with the GPU, blocks and signature requests
//! together. Needs a GPU
//! adapter: without one the test says so and passes, unless
//! `VIGIL_REQUIRE_GPU=1` (CI, on lavapipe).

use std::path::PathBuf;
use std::sync::Arc;
use vigil_engine::format::blocks;
use vigil_engine::gpu::GpuSigner;
use vigil_engine::sig::{self, SignerConfig};
use vigil_engine::{
    BlockVerdict, CollectSink, GpuMode, Request, RuleSet, SigBatch, Validator, ValidatorConfig, Verdict, Verifier,
    VerifyOptions,
};

use crate::common;

use common::gpu::Report;

fn report(files: &[PathBuf], rules: RuleSet, gpu: Option<Arc<GpuSigner>>) -> Report {
    let mut opts = VerifyOptions::default();
    opts.rules = rules;
    opts.signer = SignerConfig::default().with_gpu(gpu, GpuMode::Only);
    common::gpu::report(files, opts)
}

#[test]
fn gpu_backend_reports_exactly_what_the_cpu_reports_on_every_conformance_file() {
    let Some(gpu) = common::gpu::or_skip(GpuSigner::open_with(&common::gpu::options())).map(Arc::new) else { return };
    eprintln!("GPU adapter: {}", gpu.adapter().name);
    let chains = common::data::conformance_chains();
    for files in &chains {
        for rules in RuleSet::ALL {
            let cpu = report(files, rules, None);
            let on_gpu = report(files, rules, Some(gpu.clone()));
            assert_eq!(on_gpu, cpu, "{files:?} under {rules}");
        }
    }
    // The same signer (compiled once) behind the coprocessor.
    validator_on_the_gpu_equals_the_cpu(&chains, gpu);
}

/// Every conformance chain's blocks, one request each, interleaved with
/// signature requests made of the same chains' transactions (some with a
/// bit flipped), through one GPU validator: block reports equal the
/// verifier's on the CPU, signature verdicts equal `sig::verify`'s.
fn validator_on_the_gpu_equals_the_cpu(chains: &[Vec<PathBuf>], gpu: Arc<GpuSigner>) {
    let (mut blocks_checked, mut sigs_checked) = (0, 0);
    for files in chains {
        let mut want = CollectSink::default();
        Verifier::new(VerifyOptions::default()).verify_files(files, &mut want).unwrap();
        // A validator for each chain (the fault files share the valid
        // chain's id), pinned to the chain's id so a block of another chain
        // breaks the chain_id rule as in a file; the signer is shared,
        // compiled once.
        let first = std::fs::read(&files[0]).unwrap();
        let chain_id = blocks(&first).next().unwrap().1.unwrap().header.chain_id;
        let mut config = ValidatorConfig::default();
        config.chain_id = Some(chain_id);
        config.signer = SignerConfig::gpu(gpu.clone(), GpuMode::Only);
        let v = &Validator::new(config);
        let mut pending = Vec::new();
        let mut sig_requests = Vec::new();
        for f in files {
            let data = std::fs::read(f).unwrap();
            for (offset, b) in blocks(&data) {
                let Ok(view) = b else { break };
                let end = offset as usize + view.len();
                pending.push(v.submit(Request::Block(data[offset as usize..end].to_vec())).unwrap());
                let mut batch = SigBatch::new();
                for (i, tx) in view.txs().enumerate() {
                    let mut signature = *tx.signature();
                    signature[i % 64] ^= u8::from(i % 3 == 0);
                    let tx_id = vigil_engine::hash::tx_id(&view.header.chain_id, tx.signed_part());
                    batch.push(&tx.header().sender, &tx_id, &signature);
                }
                let rules = RuleSet::ALL[sig_requests.len() % 2];
                sig_requests.push((rules, batch.clone(), v.submit(Request::Signatures { rules, batch }).unwrap()));
            }
        }
        let mut checked = want.blocks.iter();
        for p in pending {
            match p.wait() {
                Verdict::Block(BlockVerdict::Checked(got)) => {
                    let w = checked.next().expect("as many reports as checked blocks");
                    assert_eq!((got.position, got.hash, &got.failures), (w.position, w.hash, &w.failures), "{files:?}");
                    blocks_checked += 1;
                }
                other => panic!("{files:?}: {other:?}"),
            }
        }
        assert!(checked.next().is_none(), "{files:?}: every well-formed block answered");
        for (rules, batch, p) in sig_requests {
            let Verdict::Signatures(got) = p.wait() else { panic!("not signatures") };
            let want: Vec<bool> =
                batch.items().map(|it| sig::verify(rules, it.public_key, it.message, it.signature)).collect();
            assert_eq!(got, want, "{files:?} under {rules}");
            sigs_checked += got.len();
        }
    }
    eprintln!("GPU validator: {blocks_checked} blocks and {sigs_checked} signatures, all equal to the CPU's");
    assert!(blocks_checked > 200 && sigs_checked > 1000);
}
