//! End-to-end verification of a generated chain, transactions/s: vigil's
//! verifier on all cores beside a naive one-thread baseline that calls
//! `blake3::keyed_hash` once per message and verifies each signature alone.
//!
//! `cargo bench -p vigil-benches --bench verify`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::PathBuf;
use vigil_datasets::{GenConfig, generate};
use vigil_engine::{CollectSink, Verifier, VerifyOptions};

fn bench(c: &mut Criterion) {
    eprintln!(
        "CPU: {}, {} threads, curve25519-dalek backend: {}",
        vigil_benches::cpu_model(),
        rayon::current_num_threads(),
        vigil_engine::sig::curve_backend()
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        seed: 1,
        blocks: 100,
        txs_per_block: 20..=60,
        senders: 64,
        payload: 100..=300,
        segment_size: 8 << 20,
        faults: vec![],
    };
    let manifest = generate(dir.path(), &cfg, &|_| {}).unwrap();
    let files: Vec<PathBuf> = manifest.files.clone();
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let bytes: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    assert_eq!(vigil_benches::naive_verify(&bytes), (manifest.transactions, 0));

    let mut g = c.benchmark_group("verify_chain");
    g.throughput(Throughput::Elements(manifest.transactions));
    g.sample_size(10);
    g.bench_function(format!("vigil_{}_threads", rayon::current_num_threads()), |b| {
        b.iter(|| {
            let summary = Verifier::new(VerifyOptions::default()).verify_files(&files, &mut CollectSink::default());
            assert!(summary.unwrap().valid());
        })
    });
    g.bench_function("naive_1_thread", |b| b.iter(|| vigil_benches::naive_verify(&bytes)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
