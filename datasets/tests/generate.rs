//! The generator against the engine: generated chains verify, are
//! deterministic whatever the thread count, and every injected fault is
//! reported exactly (that rule, that block, that transaction, nothing else).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use vigil_datasets::{Fault, GENESIS_TIMESTAMP_MS, GenConfig, GenError, Manifest, generate};
use vigil_engine::format::blocks;
use vigil_engine::{CollectSink, Rule, Summary, Verifier, VerifyOptions};

fn small(seed: u64) -> GenConfig {
    GenConfig {
        seed,
        blocks: 30,
        txs_per_block: 0..=12,
        senders: 5,
        payload: 0..=300,
        segment_size: 8 << 10,
        faults: vec![],
    }
}

fn gen_in(dir: &Path, cfg: &GenConfig) -> Manifest {
    generate(dir, cfg, &|_| {}).unwrap()
}

fn read_all(m: &Manifest) -> Vec<Vec<u8>> {
    m.files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn verify(m: &Manifest, authorities: bool) -> (Summary, CollectSink) {
    let mut opts = VerifyOptions::default();
    opts.authorities = authorities.then(|| HashSet::from([m.proposer]));
    let mut sink = CollectSink::default();
    let summary = Verifier::new(opts).verify_files(&m.files, &mut sink).unwrap();
    (summary, sink)
}

#[test]
fn same_config_same_bytes_whatever_the_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GenConfig { faults: vec!["nonce@7".parse().unwrap(), "malformed@12".parse().unwrap()], ..small(11) };
    let a = gen_in(&tmp.path().join("a"), &cfg);
    let b = gen_in(&tmp.path().join("b"), &cfg);
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let c = pool(1).install(|| gen_in(&tmp.path().join("c"), &cfg));
    let d = pool(2).install(|| gen_in(&tmp.path().join("d"), &cfg));
    assert!(a.files.len() >= 3);
    let bytes = read_all(&a);
    for other in [&b, &c, &d] {
        assert_eq!(other.blocks, a.blocks);
        assert_eq!(other.faults, a.faults);
        assert_eq!((other.chain_id, other.proposer, other.bytes), (a.chain_id, a.proposer, a.bytes));
        assert_eq!(read_all(other), bytes);
    }
    let e = gen_in(&tmp.path().join("e"), &small(12));
    assert_ne!(e.chain_id, a.chain_id);
    assert_ne!(read_all(&e)[0], bytes[0]);
}

#[test]
fn a_generated_chain_is_valid_and_matches_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let m = gen_in(tmp.path(), &small(1));
    assert!(m.files.len() >= 3, "{} files", m.files.len());
    for authorities in [false, true] {
        let (summary, sink) = verify(&m, authorities);
        assert!(summary.valid(), "{:?}", sink.blocks.iter().find(|b| !b.valid()));
        assert_eq!(summary.blocks, 30);
        assert_eq!(summary.transactions, m.transactions);
        assert_eq!(summary.bytes, m.bytes);
        assert_eq!(sink.blocks.len(), m.blocks.len());
        for (r, b) in sink.blocks.iter().zip(&m.blocks) {
            assert_eq!((&*r.file, r.offset), (m.files[b.file].as_path(), b.offset));
            assert_eq!((r.height, r.tx_count, r.hash), (b.height, b.tx_count, b.hash));
        }
    }
    let total: u64 = m.files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert_eq!(total, m.bytes);
    assert_eq!(m.files[0], tmp.path().join("000000.vblk"));
    assert_eq!(m.files[1], tmp.path().join("000001.vblk"));
}

#[test]
fn payloads_segments_nonces_and_timestamps_are_as_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GenConfig { payload: 40..=90, senders: 7, ..small(5) };
    let m = gen_in(tmp.path(), &cfg);
    let mut next_nonce: HashMap<[u8; 32], u64> = HashMap::new();
    let mut senders_seen = HashSet::new();
    let mut kinds = HashSet::new();
    let mut parent_ts = None;
    let mut height = 0;
    for data in read_all(&m) {
        let mut in_file = 0;
        for (_, block) in blocks(&data) {
            let block = block.expect("well-formed");
            in_file += 1;
            let h = block.header;
            assert_eq!(h.height(), height);
            height += 1;
            let ts = h.timestamp_ms();
            match parent_ts {
                None => assert_eq!(ts, GENESIS_TIMESTAMP_MS),
                Some(p) => assert!((p..=p + 2000).contains(&ts), "{p} -> {ts}"),
            }
            parent_ts = Some(ts);
            assert!(cfg.txs_per_block.contains(&h.tx_count()));
            for tx in block.txs() {
                let t = tx.header();
                assert!(cfg.payload.contains(&t.payload_len()));
                assert!(t.timestamp_ms() <= ts && t.timestamp_ms() + 5000 >= ts);
                assert!((1..=5).contains(&t.kind()));
                kinds.insert(t.kind());
                let next = next_nonce.entry(t.sender).or_insert(0);
                assert_eq!(t.nonce(), *next);
                *next += 1;
                senders_seen.insert(t.sender);
            }
        }
        assert!(in_file >= 1);
        // Within the size unless the file holds a single bigger block.
        assert!(data.len() as u64 <= cfg.segment_size || in_file == 1);
    }
    assert_eq!(height, 30);
    assert!(senders_seen.len() <= 7 && senders_seen.len() >= 5, "{}", senders_seen.len());
    assert!(kinds.len() >= 2, "{kinds:?}");
    assert!(m.files.len() > 3);
    // A file is started only when the next block would not fit.
    for w in m.blocks.windows(2) {
        if w[1].file != w[0].file {
            assert_eq!(w[1].offset, 0);
            let used = std::fs::metadata(&m.files[w[0].file]).unwrap().len();
            let data = std::fs::read(&m.files[w[1].file]).unwrap();
            let next_len = blocks(&data).next().unwrap().1.unwrap().len() as u64;
            assert!(used + next_len > cfg.segment_size);
        }
    }
}

#[test]
fn the_sender_mix_is_skewed_and_has_bursts() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        blocks: 40,
        txs_per_block: 20..=30,
        senders: 32,
        payload: 0..=0,
        segment_size: 1 << 20,
        ..small(3)
    };
    let m = gen_in(tmp.path(), &cfg);
    let mut count: HashMap<[u8; 32], u64> = HashMap::new();
    let mut bursts = 0;
    for data in read_all(&m) {
        for (_, block) in blocks(&data) {
            let mut last = None;
            for tx in block.unwrap().txs() {
                let s = tx.header().sender;
                *count.entry(s).or_default() += 1;
                bursts += u32::from(last == Some(s));
                last = Some(s);
            }
        }
    }
    let mut counts: Vec<u64> = count.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().sum();
    // The 4 chattiest of 32 devices send well over 4/32 of the records.
    assert!(counts[..4].iter().sum::<u64>() * 3 > total, "{counts:?}");
    assert!(bursts > 20, "{bursts}");
}

/// Checks that verifying `m` reports exactly its injected faults and
/// nothing else.
fn assert_reports_exactly_the_faults(m: &Manifest, what: &str) {
    for authorities in [false, true] {
        let (summary, sink) = verify(m, authorities);
        let malformed: Vec<_> = m.faults.iter().filter(|f| f.rule == Rule::Malformed).collect();
        let others: Vec<_> = m.faults.iter().filter(|f| f.rule != Rule::Malformed).collect();
        assert_eq!(summary.malformed as usize, malformed.len(), "{what}: {:?}", sink.malformed);
        assert_eq!(sink.malformed.len(), malformed.len(), "{what}");
        for (r, f) in sink.malformed.iter().zip(&malformed) {
            assert_eq!((&*r.file, r.offset), (m.files[f.file].as_path(), f.offset), "{what}: {}", r.reason);
        }
        let invalid: Vec<_> = sink.blocks.iter().filter(|b| !b.valid()).collect();
        assert_eq!(invalid.len(), others.len(), "{what}: {invalid:#?}");
        assert_eq!(summary.invalid_blocks as usize, others.len(), "{what}");
        for (r, f) in invalid.iter().zip(&others) {
            assert_eq!((&*r.file, r.offset), (m.files[f.file].as_path(), f.offset), "{what}");
            assert_eq!(r.failures.len(), 1, "{what}: {:?}", r.failures);
            assert_eq!((r.failures[0].rule, r.failures[0].tx), (f.rule, f.tx), "{what}: {:?}", r.failures);
            assert_eq!(r.position, f.height, "{what}");
        }
        assert_eq!(summary.blocks as usize, m.blocks.len(), "{what}");
        assert_eq!(summary.transactions, m.transactions, "{what}");
        assert_eq!(summary.bytes, m.bytes, "{what}");
    }
}

#[test]
fn every_rule_injected_at_several_heights_is_reported_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let base =
        GenConfig { blocks: 24, txs_per_block: 0..=4, senders: 3, payload: 0..=200, segment_size: 2500, ..small(21) };
    for rule in Rule::ALL {
        let first = if (Fault { rule, height: 0 }).impossible().is_some() { 1 } else { 0 };
        for height in [first, 11, 23] {
            let what = format!("{rule}@{height}");
            let cfg = GenConfig { faults: vec![Fault { rule, height }], ..base.clone() };
            let m = gen_in(&tmp.path().join(&what), &cfg);
            assert!(m.files.len() >= 4, "{what}");
            assert_eq!(m.faults.len(), 1);
            let f = m.faults[0];
            assert_eq!((f.rule, f.height), (rule, height));
            assert_eq!(f.tx.is_some(), rule.is_per_transaction(), "{what}");
            assert_eq!(m.blocks.len(), 24);
            if rule == Rule::Malformed {
                // The cut copy ends its file; the real block starts the next.
                let real = m.blocks[height as usize];
                assert_eq!((real.file, real.offset), (f.file + 1, 0), "{what}");
                let len = std::fs::metadata(&m.files[f.file]).unwrap().len();
                assert!(f.offset < len, "{what}");
            } else {
                let b = m.blocks[height as usize];
                assert_eq!((b.file, b.offset), (f.file, f.offset), "{what}");
            }
            assert_reports_exactly_the_faults(&m, &what);
        }
    }
}

#[test]
fn many_faults_in_one_chain_and_empty_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    // Empty blocks: per-transaction faults force one transaction, and the
    // malformed copy of an empty block is a cut header.
    let cfg = GenConfig {
        blocks: 16,
        txs_per_block: 0..=0,
        faults: ["malformed@0", "nonce@2", "tx_signature@3", "tx_timestamp@4", "malformed@6", "height@8"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
        ..small(4)
    };
    let m = gen_in(&tmp.path().join("empty"), &cfg);
    assert_eq!(m.transactions, 3);
    assert_eq!(m.faults.len(), 6);
    assert_reports_exactly_the_faults(&m, "empty blocks");

    let all: Vec<Fault> =
        Rule::ALL.iter().enumerate().map(|(i, &rule)| Fault { rule, height: 1 + 2 * i as u64 }).collect();
    let cfg = GenConfig { blocks: 25, faults: all, ..small(8) };
    let m = gen_in(&tmp.path().join("all"), &cfg);
    assert_eq!(m.faults.len(), 10);
    assert_reports_exactly_the_faults(&m, "all rules");
    // Stored heights after a height fault count on from it.
    let heights: Vec<u64> = m.blocks.iter().map(|b| b.height).collect();
    assert_eq!(heights[4], 4);
    assert_eq!(heights[5], 6);
    assert_eq!(heights[24], 25);
}

#[test]
fn chains_longer_than_a_chunk_link_across_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        blocks: 1100,
        txs_per_block: 0..=1,
        payload: 0..=8,
        segment_size: 64 << 10,
        faults: vec!["prev_hash@1024".parse().unwrap()],
        ..small(9)
    };
    let calls = std::sync::Mutex::new(Vec::new());
    let m = generate(tmp.path(), &cfg, &|done| calls.lock().unwrap().push(done)).unwrap();
    let calls = calls.into_inner().unwrap();
    assert!(calls.len() >= 2 && calls.windows(2).all(|w| w[0] < w[1]), "{calls:?}");
    assert_eq!(calls.last(), Some(&1100));
    assert_reports_exactly_the_faults(&m, "long chain");
}

#[test]
fn refuses_to_overwrite_and_reports_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GenConfig { blocks: 3, ..small(0) };
    gen_in(tmp.path(), &cfg);
    let before = std::fs::read(tmp.path().join("000000.vblk")).unwrap();
    let err = generate(tmp.path(), &GenConfig { seed: 1, ..cfg.clone() }, &|_| {}).unwrap_err();
    assert!(matches!(err, GenError::ChainExists(_)), "{err}");
    assert_eq!(std::fs::read(tmp.path().join("000000.vblk")).unwrap(), before);

    let err = generate(&tmp.path().join("x"), &GenConfig { senders: 0, ..cfg.clone() }, &|_| {}).unwrap_err();
    assert!(matches!(err, GenError::Config(_)), "{err}");
    let err = generate(
        &tmp.path().join("y"),
        &GenConfig { faults: vec!["timestamp@0".parse().unwrap()], ..cfg.clone() },
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("timestamp@0"), "{err}");

    // An I/O error names the path.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = generate(&file.join("sub"), &cfg, &|_| {}).unwrap_err();
    assert!(matches!(err, GenError::Io { .. }) && err.to_string().contains("a-file"), "{err}");
}

#[test]
fn the_default_config_is_the_documented_one() {
    let d = GenConfig::default();
    assert_eq!((d.seed, d.blocks, d.senders, d.segment_size), (0, 100, 16, 64 << 20));
    assert_eq!((d.txs_per_block, d.payload), (0..=64, 16..=512));
    assert!(d.faults.is_empty());
}
