//! The frame stage alone (walking block headers and transaction lengths of a
//! mapped 1M-transaction chain file, as `vigil verify` does: page faults
//! included, no hashing, no signatures), transactions/s: bodies walked on
//! all cores beside one thread, and beside a one-thread reference loop over
//! `BlockView::parse` on the file's bytes. With a GPU verifying signatures,
//! framing on one thread is what bounded `vigil verify` end to end.
//!
//! `cargo bench -p vigil-benches --bench frame`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use vigil_datasets::{GenConfig, generate};
use vigil_engine::frame::{Limits, Source, frame_all};
use vigil_engine::{BlockView, IoMode};

fn frame(file: &Path, pool: &rayon::ThreadPool) -> usize {
    let mut txs = 0;
    let limits = Limits { txs: 256 << 10, bytes: 128 << 20 };
    frame_all(&[Source::File(file)], IoMode::Mmap, limits, Some(pool), |batch| {
        let batch = batch.expect("readable");
        assert!(batch.malformed.is_none());
        txs += batch.first_tx.last().copied().unwrap_or(0);
        batch.release();
        true
    });
    txs
}

fn reference(file: &Path) -> usize {
    let file = std::fs::File::open(file).unwrap();
    // SAFETY: a file of this benchmark's own temporary directory.
    let data = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let (mut txs, mut pos) = (0, 0);
    while pos < data.len() {
        let (view, n) = BlockView::parse(&data[pos..], pos as u64).expect("well formed");
        txs += view.header.tx_count() as usize;
        pos += n;
    }
    txs
}

fn bench(c: &mut Criterion) {
    let threads = rayon::current_num_threads();
    eprintln!("CPU: {}, {threads} threads", vigil_benches::cpu_model());
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        seed: 3,
        blocks: 5000,
        txs_per_block: 200..=200,
        senders: 1000,
        payload: 100..=300,
        segment_size: 1 << 30,
        faults: vec![],
    };
    let manifest = generate(dir.path(), &cfg, &|_| {}).unwrap();
    let file = &manifest.files[0];
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let all = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    assert_eq!(frame(file, &all) as u64, manifest.transactions);
    assert_eq!(reference(file) as u64, manifest.transactions);

    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(manifest.transactions));
    g.sample_size(10);
    g.bench_function("reference_1_thread", |b| b.iter(|| reference(file)));
    g.bench_function("frame_1_thread", |b| b.iter(|| frame(file, &one)));
    g.bench_function(format!("frame_{threads}_threads"), |b| b.iter(|| frame(file, &all)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
