//! The coprocessor API (`Validator`) against the streaming verifier and the
//! single-signature reference: blocks submitted one at a time get exactly
//! the reports `Verifier` gives for the whole file (every conformance file,
//! pinned and per-chain modes); signature requests from many threads at
//! once, both rule sets, get exactly `sig::verify`'s verdicts; batching,
//! back-pressure and shutdown answer every request exactly once.

use std::mem::discriminant;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use vigil_engine::format::blocks;
use vigil_engine::sig::{self, RuleSet};
use vigil_engine::{
    BlockVerdict, CollectSink, Request, SigBatch, SubmitError, Validator, ValidatorConfig, Verdict, Verifier,
    VerifyOptions, expand_paths,
};

use crate::common;
use common::sig_cases::{Sig, generate_all};

fn conformance(sub: &str) -> PathBuf {
    common::data::conformance().join(sub)
}

/// Every chain of the conformance set: the valid one (several files) and
/// each fault file alone.
fn chains() -> Vec<(String, Vec<PathBuf>)> {
    let mut out = vec![("valid".to_owned(), expand_paths(&[conformance("valid")]).unwrap())];
    let mut faults: Vec<PathBuf> = std::fs::read_dir(conformance("faults"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vblk"))
        .collect();
    faults.sort();
    for f in faults {
        out.push((f.file_name().unwrap().to_string_lossy().into_owned(), vec![f]));
    }
    assert!(out.len() > 40, "conformance faults missing");
    out
}

/// Submits `files`' blocks one request each (a malformed block: the rest of
/// its file as one request), all queued before any answer is read, and
/// checks each verdict against the verifier's report of the whole chain.
fn check_chain(name: &str, files: &[PathBuf], config: ValidatorConfig) -> (usize, usize) {
    let mut want = CollectSink::default();
    let mut opts = VerifyOptions::default();
    opts.chain_id = config.chain_id;
    Verifier::new(opts).verify_files(files, &mut want).unwrap();

    let validator = Validator::new(config);
    let mut pending = Vec::new();
    for file in files {
        let data = std::fs::read(file).unwrap();
        for (offset, block) in blocks(&data) {
            let end = match &block {
                Ok(view) => offset as usize + view.len(),
                Err(_) => data.len(),
            };
            let request = Request::Block(data[offset as usize..end].to_vec());
            pending.push((block.is_ok(), validator.submit(request).unwrap()));
        }
    }
    let (mut checked, mut malformed) = (0, 0);
    for (well_formed, p) in pending {
        let Verdict::Block(verdict) = p.wait() else { panic!("{name}: a block request got another answer") };
        match verdict {
            BlockVerdict::Checked(got) => {
                assert!(well_formed, "{name}: a malformed block was checked");
                let w = &want.blocks[checked];
                assert_eq!(
                    (got.position, got.height, got.hash, got.tx_count, &got.failures),
                    (w.position, w.height, w.hash, w.tx_count, &w.failures),
                    "{name}: block {checked}"
                );
                checked += 1;
            }
            BlockVerdict::Malformed { offset, reason } => {
                assert!(!well_formed, "{name}: a well-formed block was called malformed: {reason}");
                assert_eq!(offset, 0);
                let w = &want.malformed[malformed];
                assert_eq!(discriminant(&reason), discriminant(&w.reason), "{name}: {reason} vs {}", w.reason);
                malformed += 1;
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    assert_eq!((checked, malformed), (want.blocks.len(), want.malformed.len()), "{name}: every report answered");
    (checked, malformed)
}

fn first_chain_id(files: &[PathBuf]) -> [u8; 32] {
    let data = std::fs::read(&files[0]).unwrap();
    blocks(&data).next().unwrap().1.unwrap().header.chain_id
}

#[test]
fn blocks_one_at_a_time_equal_the_verifier_on_every_conformance_chain() {
    let (mut blocks_seen, mut invalid_chains) = (0, 0);
    for (name, files) in chains() {
        // Pinned to the chain's id: every rule, chain_id included.
        let mut config = ValidatorConfig::default();
        config.chain_id = Some(first_chain_id(&files));
        let (checked, _) = check_chain(&name, &files, config);
        blocks_seen += checked;
        // One chain per chain id: the same, except where a block carries
        // another chain's id (it starts a chain of its own there).
        if !name.starts_with("chain_id") {
            check_chain(&name, &files, ValidatorConfig::default());
        }
        invalid_chains += usize::from(name != "valid");
    }
    eprintln!("{blocks_seen} blocks over {} chains ({invalid_chains} with faults)", invalid_chains + 1);
}

/// Several chains through one validator, interleaved: each keeps its own
/// state.
#[test]
fn interleaved_chains_keep_their_own_state() {
    let valid = expand_paths(&[conformance("valid")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = vigil_datasets::generate(
        dir.path(),
        &vigil_datasets::GenConfig { seed: 77, blocks: 12, txs_per_block: 0..=6, ..Default::default() },
        &|_| {},
    )
    .unwrap();
    let mut queue: Vec<(usize, Vec<u8>)> = Vec::new();
    for (chain, files) in [valid.clone(), other.files.clone()].iter().enumerate() {
        for f in files {
            let data = std::fs::read(f).unwrap();
            for (offset, b) in blocks(&data) {
                let b = b.unwrap();
                queue.push((chain, data[offset as usize..offset as usize + b.len()].to_vec()));
            }
        }
    }
    // Alternate the two chains' blocks, each in its own order.
    let (a, b): (Vec<_>, Vec<_>) = queue.into_iter().partition(|(c, _)| *c == 0);
    let mut interleaved = Vec::new();
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => interleaved.extend(x.into_iter().chain(y)),
        }
    }
    let validator = Validator::new(ValidatorConfig::default());
    let pending: Vec<_> =
        interleaved.into_iter().map(|(c, bytes)| (c, validator.submit(Request::Block(bytes)).unwrap())).collect();
    let mut positions = [0u64; 2];
    for (chain, p) in pending {
        let Verdict::Block(BlockVerdict::Checked(report)) = p.wait() else { panic!("not checked") };
        assert!(report.valid(), "chain {chain}: {:?}", report.failures);
        assert_eq!(report.position, positions[chain]);
        positions[chain] += 1;
    }
    assert_eq!(validator.status().chains, 2);
    assert!(positions[0] > 10 && positions[1] == 12);
}

fn batch_of(sigs: &[Sig]) -> SigBatch {
    let mut b = SigBatch::new();
    for s in sigs {
        let it = s.item();
        b.push(it.public_key, it.message, it.signature);
    }
    b
}

/// 16 threads at once, random request sizes, both rule sets: every verdict
/// is the single-signature reference's.
#[test]
fn concurrent_signature_requests_get_the_reference_verdicts() {
    let sigs = Arc::new(generate_all(6000, 0x5eed));
    let want: Vec<[bool; 2]> = sigs
        .iter()
        .map(|s| {
            let it = s.item();
            RuleSet::ALL.map(|r| sig::verify(r, it.public_key, it.message, it.signature))
        })
        .collect();
    let want = Arc::new(want);
    let mut config = ValidatorConfig::default();
    (config.max_batch, config.max_delay) = (700, Duration::from_millis(1));
    let validator = Arc::new(Validator::new(config));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (sigs, want, validator) = (Arc::clone(&sigs), Arc::clone(&want), Arc::clone(&validator));
            std::thread::spawn(move || {
                let mut at = t * 97 % sigs.len();
                let mut answered = 0;
                for round in 0..30 {
                    let n = 1 + (at * 31 + round * 7) % 150;
                    let end = (at + n).min(sigs.len());
                    let rules = RuleSet::ALL[(t + round) % 2];
                    let got = validator.check_signatures(rules, batch_of(&sigs[at..end])).unwrap();
                    assert_eq!(got.len(), end - at);
                    for (i, g) in got.iter().enumerate() {
                        assert_eq!(*g, want[at + i][rules as usize], "{rules} {}", sigs[at + i].dump());
                    }
                    answered += got.len();
                    at = end % sigs.len();
                }
                answered
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let status = validator.status();
    eprintln!("{answered} signatures answered in {} batches: {status:?}", status.batches);
    assert_eq!(status.signatures, answered as u64);
    assert!(status.batches < 16 * 30, "requests were batched together");
    let invalid = want.iter().filter(|w| !w[0]).count();
    assert!(invalid > 0 && invalid < want.len());
}

/// A request of `max_batch` signatures runs at once; a smaller one waits
/// for company until `max_delay`.
#[test]
fn max_batch_runs_at_once_and_small_requests_wait_for_company() {
    let sigs = generate_all(64, 9);
    let mut config = ValidatorConfig::default();
    (config.max_batch, config.max_delay) = (32, Duration::from_secs(30));
    let validator = Validator::new(config);
    let full = validator.submit(Request::Signatures { rules: RuleSet::Zip215, batch: batch_of(&sigs[..32]) }).unwrap();
    assert!(full.wait_timeout(Duration::from_secs(20)).is_some(), "a full batch did not run at once");
    let small = validator.submit(Request::Signatures { rules: RuleSet::Zip215, batch: batch_of(&sigs[..5]) }).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(small.poll().is_none(), "a small request ran before max_delay or a full batch");
    // Company: 27 more signatures fill the batch, and both are answered.
    let more = validator.submit(Request::Signatures { rules: RuleSet::Zip215, batch: batch_of(&sigs[5..32]) }).unwrap();
    assert!(small.wait_timeout(Duration::from_secs(20)).is_some());
    assert!(more.wait_timeout(Duration::from_secs(20)).is_some());
}

/// A full queue refuses `try_submit` (counted) and makes `submit` wait;
/// shutting down answers everything queued.
#[test]
fn full_queue_pushes_back_and_shutdown_answers_everything() {
    let sigs = generate_all(400, 3);
    let one = batch_of(&sigs[..100]);
    let mut config = ValidatorConfig::default();
    config.max_batch = 1 << 20;
    config.max_delay = Duration::from_secs(30);
    config.max_queue_bytes = one.bytes() * 3;
    let validator = Validator::new(config);
    let mut pending = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        match validator.try_submit(Request::Signatures { rules: RuleSet::Zip215, batch: one.clone() }) {
            Ok(p) => pending.push(p),
            Err(SubmitError::Overloaded) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((pending.len(), refused), (3, 7));
    let status = validator.status();
    assert_eq!((status.overloaded, status.queue_requests), (7, 3));
    // `submit` waits for room; closing wakes it with `Closed` and the worker
    // still answers everything queued.
    let waited = std::thread::scope(|scope| {
        let waiter =
            scope.spawn(|| validator.submit(Request::Signatures { rules: RuleSet::Zip215, batch: one.clone() }));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(validator.status().waited_for_room, 1);
        validator.close();
        waiter.join().unwrap()
    });
    assert_eq!(waited.unwrap_err(), SubmitError::Closed);
    assert_eq!(validator.try_submit(Request::Block(Vec::new())).unwrap_err(), SubmitError::Closed);
    let want: Vec<bool> =
        one.items().map(|it| sig::verify(RuleSet::Zip215, it.public_key, it.message, it.signature)).collect();
    for p in pending {
        let Verdict::Signatures(got) = p.wait() else { panic!("not signatures") };
        assert_eq!(got, want);
    }
    validator.shutdown();
}

/// Bytes that are not exactly one block get a clear rejection.
#[test]
fn bad_submissions_are_rejected_not_applied() {
    let files = expand_paths(&[conformance("valid")]).unwrap();
    let data = std::fs::read(&files[0]).unwrap();
    let (_, first) = blocks(&data).next().unwrap();
    let first_len = first.unwrap().len();
    let validator = Validator::new(ValidatorConfig::default());
    let check = |bytes: Vec<u8>| validator.check_block(bytes).unwrap();
    assert!(matches!(check(Vec::new()), BlockVerdict::Malformed { .. }));
    assert!(matches!(check(b"garbage".repeat(50)), BlockVerdict::Malformed { .. }));
    assert!(matches!(check(data[..first_len - 1].to_vec()), BlockVerdict::Malformed { .. }));
    let two = data[..first_len + 10].to_vec();
    assert!(
        matches!(check(two), BlockVerdict::ExtraBytes { block_len, total } if block_len as usize == first_len && total as usize == first_len + 10)
    );
    // None of that touched the chain: the genesis block is still position 0.
    let BlockVerdict::Checked(r) = check(data[..first_len].to_vec()) else { panic!() };
    assert!(r.valid() && r.position == 0, "{:?}", r.failures);
    let s = validator.status();
    assert_eq!((s.malformed_blocks, s.blocks), (4, 1));
}
