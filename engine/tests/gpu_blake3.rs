//! GPU BLAKE3 (WGSL) against the blake3 crate, and the GPU's block digests
//! (tx_ids, leaves, Merkle roots) against the CPU's on the shared
//! conformance chain. Needs a GPU adapter: on a
//! machine without one the test says so and passes; with
//! `VIGIL_REQUIRE_GPU=1` (CI, on lavapipe) a missing adapter fails it.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_engine::gpu::GpuContext;
use vigil_engine::gpu::blake3::GpuBlake3;
use vigil_engine::hash;

use crate::common;

fn context() -> Option<GpuContext> {
    let ctx = common::gpu::or_skip(GpuContext::with_options(&common::gpu::options()))?;
    eprintln!("GPU adapter: {} ({}, {})", ctx.adapter.name, ctx.adapter.backend, ctx.adapter.device_type);
    Some(ctx)
}

#[test]
fn gpu_blake3_equals_the_crate_on_every_length_and_random_batches() {
    let Some(ctx) = context() else { return };
    let gpu = GpuBlake3::new(&ctx);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let key: [u8; 32] = rng.random();
    let data: Vec<u8> = (0..9000).map(|_| rng.random()).collect();

    // Every length 0..=2100 (chunk edges at 1024 and 2048), one batch.
    let messages: Vec<&[u8]> = (0..=2100).map(|n| &data[..n]).collect();
    let got = gpu.keyed_hash_many(&ctx, &key, &messages).unwrap();
    for (n, (m, h)) in messages.iter().zip(&got).enumerate() {
        assert_eq!(h, blake3::keyed_hash(&key, m).as_bytes(), "length {n}");
    }

    // Random batches of mixed lengths (multi-chunk trees up to 8.8 KiB) and keys.
    for round in 0..20 {
        let key: [u8; 32] = rng.random();
        let count = rng.random_range(0..300);
        let messages: Vec<&[u8]> = (0..count)
            .map(|_| {
                let len = if rng.random_bool(0.1) { rng.random_range(1025..9000) } else { rng.random_range(0..400) };
                let start = rng.random_range(0..data.len() - len + 1);
                &data[start..start + len]
            })
            .collect();
        let got = gpu.keyed_hash_many(&ctx, &key, &messages).unwrap();
        assert_eq!(got.len(), messages.len());
        for (m, h) in messages.iter().zip(&got) {
            assert_eq!(h, blake3::keyed_hash(&key, m).as_bytes(), "round {round}, length {}", m.len());
        }
    }

    // One call large enough to run in several chunks (packed while the
    // previous one is on the device): 18,001 short messages, 4 chunks.
    let messages: Vec<&[u8]> = (0..18_001)
        .map(|i| {
            let len = i % 200;
            let start = (i * 7) % (data.len() - len);
            &data[start..start + len]
        })
        .collect();
    let got = gpu.keyed_hash_many(&ctx, &key, &messages).unwrap();
    assert_eq!(got.len(), messages.len());
    for (i, (m, h)) in messages.iter().zip(&got).enumerate() {
        assert_eq!(h, blake3::keyed_hash(&key, m).as_bytes(), "message {i} of a chunked call");
    }
}

/// Every block of the independent implementation's valid chain: the GPU's
/// tx_ids, leaves and root equal the CPU's, and the root is the header's.
#[test]
fn gpu_block_digests_equal_the_cpus_on_the_conformance_chain() {
    let Some(ctx) = context() else { return };
    let gpu = GpuBlake3::new(&ctx);
    let dir = common::data::conformance().join("valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "vblk"));
    files.sort();
    assert!(!files.is_empty(), "no .vblk in {}", dir.display());
    let (mut blocks, mut txs_seen) = (0, 0);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (offset, block) in vigil_engine::format::blocks(&bytes) {
            let view = block.unwrap_or_else(|e| panic!("{} at {offset}: {e:?}", file.display()));
            let txs: Vec<_> = view.txs().collect();
            let (ids, leaves, root) = gpu.block_digests(&ctx, &view.header.chain_id, &txs).unwrap();
            let (mut want_ids, mut want_leaves) = (vec![[0u8; 32]; txs.len()], vec![[0u8; 32]; txs.len()]);
            hash::tx_ids_and_leaves(&view.header.chain_id, &txs, &mut want_ids, &mut want_leaves);
            assert_eq!(ids, want_ids, "tx_ids, block {blocks}");
            assert_eq!(leaves, want_leaves, "leaves, block {blocks}");
            assert_eq!(root, hash::merkle_root(&want_leaves, &mut Vec::new()), "root, block {blocks}");
            assert_eq!(root, view.header.tx_root, "header tx_root, block {blocks}");
            blocks += 1;
            txs_seen += txs.len();
        }
    }
    eprintln!("{blocks} blocks, {txs_seen} transactions: GPU digests == CPU digests == headers");
    assert!(blocks > 1 && txs_seen > 0);
}
