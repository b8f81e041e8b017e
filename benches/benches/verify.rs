//! End-to-end verification of a generated chain, transactions/s: vigil's
//! verifier on all cores beside a naive one-thread baseline that calls
//! `blake3::keyed_hash` once per message and verifies each signature alone.
//!
//! `cargo bench -p vigil-benches --bench verify`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;
use std::path::PathBuf;
use vigil_datasets::{GenConfig, generate};
use vigil_engine::format::blocks;
use vigil_engine::hash::{K_BLOCK, K_LEAF, K_NODE, K_TX};
use vigil_engine::{CollectSink, Verifier, VerifyOptions};

/// The naive baseline: every rule, one thread, one call per message.
fn naive_verify(files: &[Vec<u8>]) -> (u64, u64) {
    let (mut txs, mut invalid) = (0u64, 0u64);
    let mut nonces: HashMap<[u8; 32], u64> = HashMap::new();
    let mut parent: Option<([u8; 32], u64, u64)> = None;
    for data in files {
        for (_, block) in blocks(data) {
            let block = block.expect("well-formed");
            let h = block.header;
            let mut ok = true;
            let mut level = Vec::new();
            for tx in block.txs() {
                let mut msg = h.chain_id.to_vec();
                msg.extend_from_slice(tx.signed_part());
                let id = *blake3::keyed_hash(&K_TX, &msg).as_bytes();
                let key = ed25519_zebra::VerificationKey::try_from(tx.header().sender);
                ok &= key.is_ok_and(|k| {
                    k.verify(&ed25519_zebra::Signature::from_bytes(tx.signature()), &id)
                        .is_ok()
                });
                let mut leaf_msg = id.to_vec();
                leaf_msg.extend_from_slice(tx.signature());
                level.push(*blake3::keyed_hash(&K_LEAF, &leaf_msg).as_bytes());
                ok &= tx.header().timestamp_ms() <= h.timestamp_ms();
                let next = nonces.entry(tx.header().sender).or_insert(0);
                ok &= *next == tx.header().nonce();
                *next = tx.header().nonce() + 1;
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
            let root = level
                .first()
                .copied()
                .unwrap_or(*blake3::keyed_hash(&K_NODE, b"").as_bytes());
            ok &= root == h.tx_root;
            let hash = *blake3::keyed_hash(&K_BLOCK, h.hashed_bytes()).as_bytes();
            let key = ed25519_zebra::VerificationKey::try_from(h.proposer);
            ok &= key.is_ok_and(|k| {
                k.verify(&ed25519_zebra::Signature::from_bytes(&h.proposer_sig), &hash)
                    .is_ok()
            });
            if let Some((ph, pheight, pts)) = parent {
                ok &= h.prev_hash == ph && h.height() == pheight + 1 && h.timestamp_ms() >= pts;
            }
            parent = Some((hash, h.height(), h.timestamp_ms()));
            invalid += u64::from(!ok);
        }
    }
    (txs, invalid)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn bench(c: &mut Criterion) {
    eprintln!(
        "CPU: {}, {} threads, curve25519-dalek backend: {}",
        cpu_model(),
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
    assert_eq!(naive_verify(&bytes), (manifest.transactions, 0));

    let mut g = c.benchmark_group("verify_chain");
    g.throughput(Throughput::Elements(manifest.transactions));
    g.sample_size(10);
    g.bench_function(format!("vigil_{}_threads", rayon::current_num_threads()), |b| {
        b.iter(|| {
            let summary = Verifier::new(VerifyOptions::default()).verify_files(&files, &mut CollectSink::default());
            assert!(summary.unwrap().valid());
        })
    });
    g.bench_function("naive_1_thread", |b| b.iter(|| naive_verify(&bytes)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
