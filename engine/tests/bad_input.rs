//! Hostile input: thousands of random bit flips and truncations of a
//! generated chain, random garbage, empty files. The verifier must never
//! panic, and must never call a changed chain valid when the changed byte is
//! covered by a rule (in format v1 every byte is: header bytes by the block
//! hash and signature or by `malformed`, transaction bytes by tx_id, the
//! signature by the leaf and `tx_root`).
//!
//! `VIGIL_FUZZ_ROUNDS` scales the number of mutations (default 1).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use vigil_datasets::{GenConfig, Manifest, generate};
use vigil_engine::{CollectSink, IoMode, Summary, Verifier, VerifyOptions};

fn rounds() -> usize {
    std::env::var("VIGIL_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

fn sample_chain(dir: &Path) -> (Manifest, Vec<Vec<u8>>) {
    let cfg = GenConfig {
        seed: 7,
        blocks: 12,
        txs_per_block: 0..=4,
        senders: 3,
        payload: 0..=48,
        segment_size: 1500,
        faults: vec![],
    };
    let manifest = generate(dir, &cfg, &|_| {}).unwrap();
    let files = manifest.files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    (manifest, files)
}

/// Verifies in-memory segment files as one chain.
fn verify(files: &[Vec<u8>]) -> (Summary, CollectSink) {
    let mut verifier = Verifier::new(VerifyOptions::default());
    let mut sink = CollectSink::default();
    for (i, data) in files.iter().enumerate() {
        verifier.verify_bytes(&PathBuf::from(format!("{i:06}.vblk")), data, &mut sink);
    }
    (verifier.summary(), sink)
}

#[test]
fn the_unchanged_chain_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, files) = sample_chain(dir.path());
    assert!(manifest.files.len() >= 3, "the test wants several segment files");
    let (summary, sink) = verify(&files);
    assert!(summary.valid(), "{:?}", sink.blocks.iter().find(|b| !b.valid()));
    assert_eq!(summary.blocks, 12);
}

#[test]
fn every_bit_flip_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = sample_chain(dir.path());
    let total: usize = files.iter().map(Vec::len).sum();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for round in 0..3000 * rounds() {
        let mut mutated = files.clone();
        // Pick a byte uniformly over the whole chain.
        let mut at = rng.random_range(0..total);
        let mut file = 0;
        while at >= mutated[file].len() {
            at -= mutated[file].len();
            file += 1;
        }
        let bit = rng.random_range(0..8);
        mutated[file][at] ^= 1 << bit;
        let (summary, _) = verify(&mutated);
        assert!(!summary.valid(), "round {round}: flipping bit {bit} of byte {at} in file {file} went unnoticed");
    }
}

#[test]
fn truncations_never_panic_and_are_detected_off_block_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, files) = sample_chain(dir.path());
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for round in 0..1500 * rounds() {
        let file = rng.random_range(0..files.len());
        let cut = rng.random_range(0..files[file].len());
        let mut mutated = files.clone();
        mutated[file].truncate(cut);
        let (summary, sink) = verify(&mutated);
        let on_boundary = cut == 0 || manifest.blocks.iter().any(|b| b.file == file && b.offset == cut as u64);
        if !on_boundary {
            assert!(!summary.valid(), "round {round}: cutting file {file} at {cut} went unnoticed");
            let m = sink.malformed.last().expect("a cut block is malformed");
            assert!(m.offset <= cut as u64);
        } else if file + 1 < files.len() {
            // Whole blocks missing from the middle of the chain break links.
            assert!(!summary.valid(), "round {round}: dropping blocks at {file}@{cut} went unnoticed");
        }
    }
}

#[test]
fn garbage_and_empty_input_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..500 * rounds() {
        let len = rng.random_range(0..2048);
        let mut data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Half the time, make it look like a block so framing goes deeper.
        if rng.random_bool(0.5) && data.len() >= 8 {
            data[..8].copy_from_slice(b"VBLK\x01\0\0\0");
        }
        let (summary, sink) = verify(&[data.clone()]);
        assert_eq!(summary.valid(), data.is_empty());
        assert!(sink.malformed.len() <= 1);
    }
    let (summary, _) = verify(&[vec![], vec![]]);
    assert!(summary.valid());
    assert_eq!(summary.blocks, 0);
}

#[test]
fn read_mode_agrees_with_mmap_on_mutated_files() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, files) = sample_chain(dir.path());
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let work = tempfile::tempdir().unwrap();
    for _ in 0..40 {
        let paths: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let mut data = data.clone();
                if rng.random_bool(0.5) {
                    let at = rng.random_range(0..data.len());
                    data[at] ^= 1 << rng.random_range(0..8);
                } else if rng.random_bool(0.3) {
                    data.truncate(rng.random_range(0..data.len()));
                }
                let p = work.path().join(format!("{i:06}.vblk"));
                std::fs::write(&p, &data).unwrap();
                p
            })
            .collect();
        let run = |io| {
            let mut sink = CollectSink::default();
            let mut opts = VerifyOptions::default();
            opts.io = io;
            let summary = Verifier::new(opts).verify_files(&paths, &mut sink);
            let summary = summary.unwrap();
            let blocks: Vec<_> = sink.blocks.iter().map(|b| (b.offset, b.hash, b.failures.clone())).collect();
            let malformed: Vec<_> = sink.malformed.iter().map(|m| (m.offset, m.reason.clone())).collect();
            (summary.blocks, summary.invalid_blocks, summary.bytes, blocks, malformed)
        };
        assert_eq!(run(IoMode::Mmap), run(IoMode::Read));
    }
    assert_eq!(manifest.blocks.len(), 12);
}
