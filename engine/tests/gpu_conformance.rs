//! The verifier with signatures on the GPU gives exactly the CPU's report on
//! every conformance file (valid chain and every fault file). Needs a GPU
//! adapter: without one the test says so and passes, unless
//! `VIGIL_REQUIRE_GPU=1` (CI, on lavapipe).

use std::path::PathBuf;
use std::sync::Arc;
use vigil_engine::gpu::GpuSigner;
use vigil_engine::{CollectSink, RuleSet, Verifier, VerifyOptions, expand_paths};

mod common;

fn conformance_dir() -> PathBuf {
    common::shared::shared("datasets/conformance")
}

type Report = (Vec<(u64, u64, Vec<(String, Option<u32>)>)>, Vec<(u64, String)>);

fn report(files: &[PathBuf], rules: RuleSet, gpu: Option<Arc<GpuSigner>>) -> Report {
    let mut sink = CollectSink::default();
    let opts = VerifyOptions { rules, gpu, ..Default::default() };
    Verifier::new(opts).verify_files(files, &mut sink).unwrap();
    let blocks = sink
        .blocks
        .iter()
        .map(|b| (b.offset, b.height, b.failures.iter().map(|f| (f.rule.name().to_owned(), f.tx)).collect()))
        .collect();
    let malformed = sink.malformed.iter().map(|m| (m.offset, m.reason.to_string())).collect();
    (blocks, malformed)
}

#[test]
fn gpu_backend_reports_exactly_what_the_cpu_reports_on_every_conformance_file() {
    let Some(gpu) = common::gpu::or_skip(GpuSigner::open()).map(Arc::new) else { return };
    eprintln!("GPU adapter: {}", gpu.adapter().name);
    let dir = conformance_dir();
    let mut chains = vec![expand_paths(&[dir.join("valid")]).unwrap()];
    let mut faults: Vec<PathBuf> = std::fs::read_dir(dir.join("faults"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "vblk"))
        .collect();
    faults.sort();
    assert_eq!(faults.len(), 46);
    chains.extend(faults.into_iter().map(|f| vec![f]));
    for files in &chains {
        for rules in RuleSet::ALL {
            let cpu = report(files, rules, None);
            let on_gpu = report(files, rules, Some(gpu.clone()));
            assert_eq!(on_gpu, cpu, "{files:?} under {rules}");
        }
    }
}
