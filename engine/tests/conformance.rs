//! The engine against the conformance files in `datasets/conformance/`, made
//! by an independent implementation of the chain format (docs/FORMAT.md).
//! Read in place from the repository; a missing directory fails the test.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use vigil_engine::format::blocks;
use vigil_engine::hash::{self, Digest};
use vigil_engine::sig::SignerConfig;
use vigil_engine::{CollectSink, IoMode, RuleSet, Verifier, VerifyOptions, expand_paths};

use crate::common;

fn conformance_dir() -> PathBuf {
    common::data::conformance()
}

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn hex32(v: &Value) -> Digest {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn run(files: &[PathBuf], io: IoMode, authorities: Option<HashSet<[u8; 32]>>) -> (vigil_engine::Summary, CollectSink) {
    let mut sink = CollectSink::default();
    let mut opts = VerifyOptions::default();
    (opts.io, opts.authorities) = (io, authorities);
    let summary = Verifier::new(opts).verify_files(files, &mut sink).unwrap();
    (summary, sink)
}

#[test]
fn valid_chain_matches_expected_block_by_block() {
    let dir = conformance_dir().join("valid");
    let expected = load(&dir.join("expected.json"));
    let want = expected["blocks"].as_array().unwrap();

    let files = expand_paths(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(files.len() as u64, expected["totals"]["files"].as_u64().unwrap());

    // Framing and hashing, block by block, straight from the format layer.
    let mut got = Vec::new();
    let mut all_ids = blake3::Hasher::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        for (offset, block) in blocks(&data) {
            let block = block.unwrap_or_else(|e| panic!("{}@{offset}: {e}", file.display()));
            let h = block.header;
            let mut ids = Vec::new();
            let mut leaves = Vec::new();
            for tx in block.txs() {
                let id = hash::tx_id(&h.chain_id, tx.signed_part());
                leaves.push(hash::leaf(&id, tx.signature()));
                ids.push(id);
                all_ids.update(&id);
            }
            assert_eq!(ids.len() as u32, h.tx_count());
            assert_eq!(hash::merkle_root_in_place(&mut leaves), h.tx_root);
            got.push((file.file_name().unwrap().to_str().unwrap().to_owned(), offset, *h, ids));
        }
    }
    assert_eq!(got.len(), want.len());
    for ((file, offset, h, ids), w) in got.iter().zip(want) {
        let at = format!("{file}@{offset}");
        assert_eq!(file, w["file"].as_str().unwrap(), "{at}");
        assert_eq!(*offset, w["offset"].as_u64().unwrap(), "{at}");
        assert_eq!(h.height(), w["height"].as_u64().unwrap(), "{at}");
        assert_eq!(hash::block_hash(h), hex32(&w["block_hash"]), "{at}");
        assert_eq!(h.tx_root, hex32(&w["tx_root"]), "{at}");
        assert_eq!(h.tx_count() as u64, w["tx_count"].as_u64().unwrap(), "{at}");
        assert_eq!(h.body_len() as u64, w["body_len"].as_u64().unwrap(), "{at}");
        assert_eq!(h.timestamp_ms(), w["timestamp_ms"].as_u64().unwrap(), "{at}");
        let want_ids: Vec<Digest> = w["tx_ids"].as_array().unwrap().iter().map(hex32).collect();
        assert_eq!(&ids[..want_ids.len()], &want_ids[..], "{at}");
    }
    let totals = &expected["totals"];
    assert_eq!(*all_ids.finalize().as_bytes(), hex32(&totals["tx_ids_blake3"]));

    // The verifier, both I/O modes, with and without the authority set.
    let proposer = hex32(&expected["proposer"]);
    for io in [IoMode::Mmap, IoMode::Read] {
        for authorities in [None, Some(HashSet::from([proposer]))] {
            let (summary, sink) = run(&files, io, authorities);
            assert!(sink.malformed.is_empty());
            let bad: Vec<_> = sink.blocks.iter().filter(|b| !b.valid()).collect();
            assert!(bad.is_empty(), "{io:?}: {bad:?}");
            assert!(summary.valid());
            assert_eq!(summary.blocks, totals["blocks"].as_u64().unwrap());
            assert_eq!(summary.transactions, totals["transactions"].as_u64().unwrap());
            assert_eq!(summary.bytes, totals["bytes"].as_u64().unwrap());
            assert_eq!(summary.signatures, summary.transactions + summary.blocks);
            for (report, (file, offset, header, _)) in sink.blocks.iter().zip(&got) {
                assert_eq!(report.file.file_name().unwrap().to_str().unwrap(), file);
                assert_eq!(report.offset, *offset);
                assert_eq!(report.hash, hash::block_hash(header));
            }
        }
    }

    // Each sender's next nonce, as the chain state ends.
    let mut verifier = Verifier::new(VerifyOptions::default());
    verifier.verify_files(&files, &mut CollectSink::default()).unwrap();
    let want_nonces: BTreeMap<String, u64> =
        totals["next_nonce"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    let got_nonces: BTreeMap<String, u64> =
        verifier.chain().nonces().map(|(k, v)| (hex::encode(k), v.unwrap())).collect();
    assert_eq!(got_nonces, want_nonces);
    let tip = verifier.chain().parent.unwrap();
    assert_eq!(tip.height, totals["tip_height"].as_u64().unwrap());
    assert_eq!(tip.hash, hex32(&totals["tip_hash"]));

    // With another authority, every block fails block_signature only.
    let (_, sink) = run(&files, IoMode::Mmap, Some(HashSet::from([[7u8; 32]])));
    for b in &sink.blocks {
        let rules: Vec<_> = b.failures.iter().map(|f| f.rule.name()).collect();
        assert_eq!(rules, ["block_signature"]);
    }

    // A chain id other than the chain's fails every block on chain_id.
    let mut opts = VerifyOptions::default();
    opts.chain_id = Some([1; 32]);
    let mut sink = CollectSink::default();
    Verifier::new(opts).verify_files(&files, &mut sink).unwrap();
    assert!(sink.blocks.iter().all(|b| b.failures.iter().any(|f| f.rule.name() == "chain_id")));
}

/// A failure as `faults/expected.json` writes it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expected {
    Block { height: u64, rule: String, tx: Option<u64> },
    Malformed { offset: u64 },
}

#[test]
fn every_fault_file_reports_exactly_its_failures() {
    let dir = conformance_dir().join("faults");
    let expected = load(&dir.join("expected.json"));
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 46, "the README lists 46 fault files");
    let mut rules_seen = BTreeSet::new();
    for (name, case) in cases {
        let want: BTreeSet<Expected> = case["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                rules_seen.insert(f["rule"].as_str().unwrap().to_owned());
                if f["rule"] == "malformed" {
                    Expected::Malformed { offset: f["offset"].as_u64().unwrap() }
                } else {
                    Expected::Block {
                        height: f["height"].as_u64().unwrap(),
                        rule: f["rule"].as_str().unwrap().to_owned(),
                        tx: f.get("tx").and_then(Value::as_u64),
                    }
                }
            })
            .collect();
        // Both I/O modes, batch sizes from single to large, and the strict
        // rule set (these faults break both rule sets alike).
        for (io, rules, batch_size) in [
            (IoMode::Mmap, RuleSet::Zip215, None),
            (IoMode::Read, RuleSet::Zip215, Some(1)),
            (IoMode::Mmap, RuleSet::Zip215, Some(5)),
            (IoMode::Mmap, RuleSet::Zip215, Some(4096)),
            (IoMode::Mmap, RuleSet::Strict, None),
        ] {
            let mut opts = VerifyOptions::default();
            (opts.io, opts.rules, opts.signer) = (io, rules, SignerConfig::cpu().with_batch_size(batch_size));
            let mut sink = CollectSink::default();
            let summary = Verifier::new(opts).verify_files(&[dir.join(name)], &mut sink).unwrap();
            let mut got = BTreeSet::new();
            for b in &sink.blocks {
                for f in &b.failures {
                    let fresh = got.insert(Expected::Block {
                        height: b.height,
                        rule: f.rule.name().to_owned(),
                        tx: f.tx.map(u64::from),
                    });
                    assert!(fresh, "{name}: duplicate failure {f:?}");
                    assert_eq!(f.tx.is_some(), f.rule.is_per_transaction(), "{name}: {f:?}");
                }
            }
            for m in &sink.malformed {
                got.insert(Expected::Malformed { offset: m.offset });
            }
            assert_eq!(got, want, "{name} ({io:?}, {rules}, batch {batch_size:?})");
            assert_eq!(summary.blocks, case["blocks"].as_u64().unwrap(), "{name}");
            assert!(!summary.valid(), "{name}");
        }
    }
    let all: BTreeSet<String> = vigil_engine::Rule::ALL.iter().map(|r| r.name().to_owned()).collect();
    assert_eq!(rules_seen, all, "the fault files cover every rule");
}
