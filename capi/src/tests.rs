//! The extern "C" functions called as C would call them.

use super::*;
use crate::config::default_config;
use crate::result::{hex, rule_name};
use std::ffi::{CStr, c_char, c_int};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};
use vigil_engine::format::blocks;
use vigil_engine::sig;
use vigil_engine::{Rule, RuleSet, ValidatorConfig};

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    assert_eq!(s.len(), 2 * N);
    std::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
}

/// RFC 8032 section 7.1, tests 1 to 3: (public key, message, signature).
fn rfc8032() -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
    vec![
        (
            unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
            vec![],
            unhex(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
        ),
        (
            unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
            vec![0x72],
            unhex(
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ),
        (
            unhex("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"),
            vec![0xaf, 0x82],
            unhex(
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ),
    ]
}

/// The RFC vectors, each with one bit flipped in the signature, the
/// message and the key, and a small-order key with an identity R and
/// S = 0, which ZIP215 accepts and strict rules refuse.
fn cases() -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
    let mut out = Vec::new();
    for (pk, msg, sig) in rfc8032() {
        out.push((pk, msg.clone(), sig));
        let mut s = sig;
        s[5] ^= 0x10;
        out.push((pk, msg.clone(), s));
        let mut m = msg.clone();
        m.push(1);
        out.push((pk, m, sig));
        let mut k = pk;
        k[0] ^= 1;
        out.push((k, msg, sig));
    }
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut small = [0u8; 64];
    small[0] = 1;
    out.push((identity, b"any message".to_vec(), small));
    out
}

fn c_sigs(cases: &[([u8; 32], Vec<u8>, [u8; 64])]) -> Vec<vigil_sig> {
    cases
        .iter()
        .map(|(pk, msg, sig)| vigil_sig {
            public_key: pk.as_ptr(),
            signature: sig.as_ptr(),
            message: if msg.is_empty() { null() } else { msg.as_ptr() },
            message_len: msg.len(),
        })
        .collect()
}

/// The first block of the bundled sample chain.
fn sample_block() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/sample");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vblk"))
        .collect();
    files.sort();
    let data = std::fs::read(&files[0]).unwrap();
    let (offset, block) = blocks(&data).next().unwrap();
    let block = block.unwrap();
    data[offset as usize..offset as usize + block.len()].to_vec()
}

fn new(cfg: Option<&vigil_config>) -> *mut vigil_validator {
    let v = unsafe { vigil_validator_new(cfg.map_or(null(), |c| c as *const _)) };
    assert!(!v.is_null());
    v
}

fn submit_sigs(v: *mut vigil_validator, rules: c_int, sigs: &[vigil_sig]) -> u64 {
    let mut t = 0;
    assert_eq!(unsafe { vigil_submit_signatures(v, rules, sigs.as_ptr(), sigs.len(), &mut t) }, VIGIL_OK);
    assert_ne!(t, 0);
    t
}

fn submit_block(v: *mut vigil_validator, block: &[u8]) -> u64 {
    let mut t = 0;
    assert_eq!(unsafe { vigil_submit_block(v, block.as_ptr(), block.len(), &mut t) }, VIGIL_OK);
    t
}

fn wait(v: *mut vigil_validator, t: u64) -> *mut vigil_result {
    let mut r = null_mut();
    assert_eq!(unsafe { vigil_wait(v, t, &mut r) }, VIGIL_OK);
    assert!(!r.is_null());
    r
}

fn verdicts(r: *const vigil_result) -> Vec<bool> {
    unsafe {
        assert_eq!(vigil_result_kind(r), VIGIL_RESULT_SIGNATURES);
        let n = vigil_result_count(r);
        if n == 0 {
            assert!(vigil_result_verdicts(r).is_null());
            return vec![];
        }
        std::slice::from_raw_parts(vigil_result_verdicts(r), n).iter().map(|b| *b == 1).collect()
    }
}

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

#[test]
fn signatures_match_the_reference_under_both_rule_sets() {
    let cases = cases();
    let sigs = c_sigs(&cases);
    let v = new(None);
    for (value, rules) in [(VIGIL_RULES_ZIP215, RuleSet::Zip215), (VIGIL_RULES_STRICT, RuleSet::Strict)] {
        let r = wait(v, submit_sigs(v, value, &sigs));
        let want: Vec<bool> = cases.iter().map(|(pk, m, s)| sig::verify(rules, pk, m, s)).collect();
        assert_eq!(verdicts(r), want, "{rules}");
        // The RFC vectors verify, their corruptions do not.
        assert_eq!(&want[..12], &[true, false, false, false].repeat(3)[..], "{rules}");
        assert_eq!(
            text(unsafe { vigil_result_message(r) }),
            format!("13 signatures, {} valid", want.iter().filter(|b| **b).count())
        );
        // Not a block: the block accessors say so.
        unsafe {
            assert_eq!(vigil_result_block_outcome(r), VIGIL_ERR_INVALID_ARGUMENT);
            assert!(vigil_result_hash(r).is_null());
            assert_eq!(vigil_result_failure_count(r), 0);
            vigil_result_free(r);
        }
    }
    // The small-order case tells the rule sets apart.
    assert!(sig::verify(RuleSet::Zip215, &cases[12].0, &cases[12].1, &cases[12].2));
    assert!(!sig::verify(RuleSet::Strict, &cases[12].0, &cases[12].1, &cases[12].2));
    // An empty batch: NULL allowed, no verdicts.
    let mut t = 0;
    assert_eq!(unsafe { vigil_submit_signatures(v, VIGIL_RULES_ZIP215, null(), 0, &mut t) }, VIGIL_OK);
    let r = wait(v, t);
    assert_eq!(verdicts(r), Vec::<bool>::new());
    unsafe { vigil_result_free(r) };
    unsafe { vigil_validator_free(v) };
}

#[test]
fn null_pointers_are_errors_not_crashes() {
    let cases = cases();
    let sigs = c_sigs(&cases);
    let block = sample_block();
    let v = new(None);
    let mut t = 77;
    let mut r: *mut vigil_result = null_mut();
    unsafe {
        // Submitting.
        assert_eq!(vigil_submit_block(null_mut(), block.as_ptr(), block.len(), &mut t), VIGIL_ERR_NULL);
        assert_eq!(t, 0, "the ticket is zeroed on error");
        assert_eq!(vigil_submit_block(v, block.as_ptr(), block.len(), null_mut()), VIGIL_ERR_NULL);
        assert_eq!(vigil_submit_block(v, null(), 10, &mut t), VIGIL_ERR_NULL);
        assert_eq!(vigil_try_submit_block(v, null(), 10, &mut t), VIGIL_ERR_NULL);
        assert_eq!(vigil_submit_signatures(null_mut(), 0, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_NULL);
        assert_eq!(vigil_submit_signatures(v, 0, null(), 1, &mut t), VIGIL_ERR_NULL);
        assert_eq!(vigil_try_submit_signatures(v, 0, sigs.as_ptr(), 1, null_mut()), VIGIL_ERR_NULL);
        for field in 0..3 {
            let mut bad = sigs[4]; // a non-empty message
            match field {
                0 => bad.public_key = null(),
                1 => bad.signature = null(),
                _ => bad.message = null(),
            }
            let batch = [sigs[0], bad];
            assert_eq!(vigil_submit_signatures(v, 0, batch.as_ptr(), 2, &mut t), VIGIL_ERR_NULL, "field {field}");
            assert_eq!(t, 0);
        }
        // Taking.
        let good = submit_block(v, &block);
        assert_eq!(vigil_poll(null_mut(), good, &mut r), VIGIL_ERR_NULL);
        assert_eq!(vigil_wait(null_mut(), good, &mut r), VIGIL_ERR_NULL);
        assert_eq!(vigil_wait_timeout(null_mut(), good, 0, &mut r), VIGIL_ERR_NULL);
        assert!(r.is_null());
        assert_eq!(vigil_poll(v, good, null_mut()), VIGIL_ERR_NULL);
        assert_eq!(vigil_wait(v, good, null_mut()), VIGIL_ERR_NULL);
        // Nothing above used the ticket up.
        assert_eq!(vigil_wait(v, good, &mut r), VIGIL_OK);
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_VALID);
        vigil_result_free(r);
        // Reading a NULL result.
        assert_eq!(vigil_result_kind(null()), VIGIL_ERR_NULL);
        assert_eq!(vigil_result_block_outcome(null()), VIGIL_ERR_NULL);
        assert!(vigil_result_message(null()).is_null());
        assert_eq!(vigil_result_count(null()), 0);
        assert!(vigil_result_verdicts(null()).is_null());
        assert_eq!(vigil_result_position(null()), 0);
        assert_eq!(vigil_result_height(null()), 0);
        assert!(vigil_result_hash(null()).is_null());
        assert_eq!(vigil_result_tx_count(null()), 0);
        assert_eq!(vigil_result_failure_count(null()), 0);
        assert!(vigil_result_failure_rule(null(), 0).is_null());
        assert_eq!(vigil_result_failure_tx(null(), 0), -1);
        assert!(vigil_result_failure_detail(null(), 0).is_null());
        // The rest.
        assert!(vigil_status_json(null_mut()).is_null());
        assert_eq!(vigil_close(null_mut()), VIGIL_ERR_NULL);
        vigil_config_default(null_mut());
        vigil_result_free(null_mut());
        vigil_string_free(null_mut());
        vigil_validator_free(null_mut());
        vigil_validator_free(v);
    }
}

#[test]
fn a_ticket_is_taken_exactly_once() {
    let cases = cases();
    let sigs = c_sigs(&cases);
    let v = new(None);
    let mut r = null_mut();
    unsafe {
        let t = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..2]);
        let r1 = wait(v, t);
        assert_eq!(verdicts(r1), [true, false]);
        assert_eq!(vigil_wait(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
        assert_eq!(vigil_poll(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
        assert_eq!(vigil_wait_timeout(v, t, 1000, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
        assert!(r.is_null());
        vigil_result_free(r1);

        // Polled until ready, then gone.
        let t = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..2]);
        let mut polls = 0;
        loop {
            match vigil_poll(v, t, &mut r) {
                VIGIL_PENDING => {
                    assert!(r.is_null());
                    polls += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
                VIGIL_OK => break,
                other => panic!("{}", text(vigil_error_name(other))),
            }
        }
        assert!(polls < 100_000);
        assert_eq!(verdicts(r), [true, false]);
        vigil_result_free(r);
        assert_eq!(vigil_poll(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);

        // Timed waits: PENDING keeps the ticket.
        let t = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..1]);
        let mut code = vigil_wait_timeout(v, t, 0, &mut r);
        while code == VIGIL_PENDING {
            code = vigil_wait_timeout(v, t, 1_000, &mut r);
        }
        assert_eq!(code, VIGIL_OK);
        assert_eq!(verdicts(r), [true]);
        vigil_result_free(r);
        assert_eq!(vigil_wait_timeout(v, t, u64::MAX, &mut r), VIGIL_ERR_UNKNOWN_TICKET);

        // Tickets never handed out.
        for t in [0, 12345, u64::MAX] {
            assert_eq!(vigil_poll(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
            assert_eq!(vigil_wait(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
        }
        vigil_validator_free(v);
    }
}

/// vigil.h: while one thread waits on a ticket, a poll from another
/// answers PENDING, a timed waiter gets PENDING after its own timeout,
/// and a second waiter waits; when the answer comes one of the two
/// waiters takes it and the other gets UNKNOWN_TICKET. A waiter whose
/// timeout runs out hands the ticket to the next.
#[test]
fn a_ticket_being_waited_on_is_pending_to_others_and_a_second_waiter_waits() {
    struct Handle(*mut vigil_validator);
    // SAFETY: the validator is thread-safe.
    unsafe impl Sync for Handle {}
    let cases = cases();
    let sigs = c_sigs(&cases);
    // A long batching delay: the request sits queued until vigil_close.
    let cfg = vigil_config { max_delay_us: MAX_DELAY_US, ..default_config() };
    let wait_on = |v: &Handle, t: u64, timeout_us: Option<u64>| {
        let mut r = null_mut();
        let code = unsafe {
            match timeout_us {
                None => vigil_wait(v.0, t, &mut r),
                Some(us) => vigil_wait_timeout(v.0, t, us, &mut r),
            }
        };
        (code, r as usize)
    };
    let settle = || std::thread::sleep(Duration::from_millis(300));

    let v = &Handle(new(Some(&cfg)));
    let t = submit_sigs(v.0, VIGIL_RULES_ZIP215, &sigs[..1]);
    let (a, b) = std::thread::scope(|scope| {
        let first = scope.spawn(move || wait_on(v, t, None));
        settle();
        let mut r = null_mut();
        for _ in 0..5 {
            assert_eq!(unsafe { vigil_poll(v.0, t, &mut r) }, VIGIL_PENDING);
            assert!(r.is_null());
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        assert_eq!(wait_on(v, t, Some(100_000)), (VIGIL_PENDING, 0));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(20), "{waited:?}");
        let second = scope.spawn(move || wait_on(v, t, None));
        settle();
        assert!(!first.is_finished() && !second.is_finished(), "both wait for the answer");
        assert_eq!(unsafe { vigil_close(v.0) }, VIGIL_OK);
        (first.join().unwrap(), second.join().unwrap())
    });
    let (taken, other) = if a.0 == VIGIL_OK { (a, b) } else { (b, a) };
    assert_eq!((taken.0, other), (VIGIL_OK, (VIGIL_ERR_UNKNOWN_TICKET, 0)));
    assert_eq!(verdicts(taken.1 as *mut vigil_result), [true]);
    unsafe { vigil_result_free(taken.1 as *mut vigil_result) };
    unsafe { vigil_validator_free(v.0) };

    // A timed waiter gives up; the plain waiter behind it gets the answer.
    let v = &Handle(new(Some(&cfg)));
    let t = submit_sigs(v.0, VIGIL_RULES_ZIP215, &sigs[..1]);
    std::thread::scope(|scope| {
        let timed = scope.spawn(move || wait_on(v, t, Some(400_000)));
        std::thread::sleep(Duration::from_millis(50));
        let plain = scope.spawn(move || wait_on(v, t, None));
        assert_eq!(timed.join().unwrap(), (VIGIL_PENDING, 0));
        settle();
        assert!(!plain.is_finished(), "the plain waiter still waits");
        assert_eq!(unsafe { vigil_close(v.0) }, VIGIL_OK);
        let (code, r) = plain.join().unwrap();
        assert_eq!(code, VIGIL_OK);
        assert_eq!(verdicts(r as *mut vigil_result), [true]);
        unsafe { vigil_result_free(r as *mut vigil_result) };
    });
    unsafe { vigil_validator_free(v.0) };
}

#[test]
fn bad_rules_and_bad_configs_are_rejected() {
    let cases = cases();
    let sigs = c_sigs(&cases);
    let v = new(None);
    let mut t = 5;
    for rules in [-1, 2, 7, c_int::MAX] {
        unsafe {
            assert_eq!(vigil_submit_signatures(v, rules, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_INVALID_ARGUMENT);
            assert_eq!(t, 0);
            assert_eq!(vigil_try_submit_signatures(v, rules, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_INVALID_ARGUMENT);
        }
    }
    // A count no address space holds.
    let huge = usize::MAX / 2;
    assert_eq!(unsafe { vigil_submit_signatures(v, 0, sigs.as_ptr(), huge, &mut t) }, VIGIL_ERR_INVALID_ARGUMENT);
    assert_eq!(unsafe { vigil_submit_block(v, sigs.as_ptr().cast(), usize::MAX, &mut t) }, VIGIL_ERR_INVALID_ARGUMENT);
    unsafe { vigil_validator_free(v) };

    let mut cfg = default_config();
    unsafe { vigil_config_default(&mut cfg) };
    let d = ValidatorConfig::default();
    assert!(cfg.chain_id.is_null());
    assert_eq!((cfg.rules, cfg.max_batch, cfg.max_delay_us), (VIGIL_RULES_ZIP215, d.max_batch, 2000));
    assert_eq!((cfg.max_queue_bytes, cfg.max_chains), (d.max_queue_bytes, d.max_chains));
    for bad in [
        vigil_config { rules: 2, ..cfg },
        vigil_config { rules: -1, ..cfg },
        vigil_config { max_delay_us: MAX_DELAY_US + 1, ..cfg },
        vigil_config { max_delay_us: u64::MAX, ..cfg },
    ] {
        assert!(unsafe { vigil_validator_new(&bad) }.is_null(), "{bad:?}");
    }
    // Zeros mean the defaults.
    let zeros =
        vigil_config { chain_id: null(), rules: 1, max_batch: 0, max_delay_us: 0, max_queue_bytes: 0, max_chains: 0 };
    let v = new(Some(&zeros));
    let v_ref = unsafe { &*v };
    let c = v_ref.validator.config();
    assert_eq!(
        (c.rules, c.max_batch, c.max_delay, c.max_queue_bytes, c.max_chains),
        (RuleSet::Strict, d.max_batch, d.max_delay, d.max_queue_bytes, d.max_chains)
    );
    unsafe { vigil_validator_free(v) };
}

#[test]
fn block_outcomes() {
    let block = sample_block();
    let chain_id: [u8; 32] = block[8..40].try_into().unwrap();
    let v = new(None);
    unsafe {
        // Valid, then the same block again: a second block at height 0.
        let (t1, t2) = (submit_block(v, &block), submit_block(v, &block));
        let r = wait(v, t1);
        assert_eq!(vigil_result_kind(r), VIGIL_RESULT_BLOCK);
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_VALID, "{}", text(vigil_result_message(r)));
        assert_eq!((vigil_result_position(r), vigil_result_height(r)), (0, 0));
        let header = vigil_engine::BlockView::parse(&block, 0).unwrap().0.header;
        let hash = std::slice::from_raw_parts(vigil_result_hash(r), 32).to_vec();
        assert_eq!(hash, vigil_engine::hash::block_hash(header));
        assert_eq!(vigil_result_tx_count(r), header.tx_count());
        assert!(header.tx_count() > 0);
        assert_eq!(vigil_result_failure_count(r), 0);
        assert!(vigil_result_failure_rule(r, 0).is_null());
        assert_eq!(vigil_result_count(r), 0);
        assert!(vigil_result_verdicts(r).is_null());
        assert!(text(vigil_result_message(r)).starts_with("valid block at height 0"));
        vigil_result_free(r);
        let r = wait(v, t2);
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_INVALID);
        assert_eq!(vigil_result_position(r), 1);
        let n = vigil_result_failure_count(r);
        assert!(n > 0);
        let rules: Vec<String> = (0..n).map(|i| text(vigil_result_failure_rule(r, i))).collect();
        assert!(rules.iter().any(|r| r == "height"), "{rules:?}");
        // The replayed transactions break nonce rules: per transaction.
        assert!(rules.iter().any(|r| r == "nonce"), "{rules:?}");
        for (i, name) in rules.iter().enumerate() {
            let rule: Rule = name.parse().unwrap();
            assert!(!text(vigil_result_failure_detail(r, i)).is_empty());
            let tx = vigil_result_failure_tx(r, i);
            assert_eq!(tx >= 0, rule.is_per_transaction(), "{name}: tx {tx}");
            assert!(tx < i64::from(vigil_result_tx_count(r)));
        }
        assert!(vigil_result_failure_rule(r, n).is_null());
        assert!(vigil_result_failure_detail(r, n).is_null());
        assert_eq!(vigil_result_failure_tx(r, n), -1);
        assert!(text(vigil_result_message(r)).contains("height"));
        vigil_result_free(r);

        // Malformed and extra bytes: not applied.
        let r = wait(v, submit_block(v, &block[..100]));
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_MALFORMED);
        assert!(vigil_result_hash(r).is_null());
        assert!(text(vigil_result_message(r)).contains("header does not fit"), "{}", text(vigil_result_message(r)));
        vigil_result_free(r);
        let mut longer = block.clone();
        longer.extend_from_slice(&[0; 3]);
        let r = wait(v, submit_block(v, &longer));
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_EXTRA_BYTES);
        assert!(text(vigil_result_message(r)).contains("3 more bytes"));
        vigil_result_free(r);
        let r = wait(v, submit_block(v, &[]));
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_MALFORMED);
        vigil_result_free(r);
        vigil_validator_free(v);
    }

    // One chain at most: another chain's block is refused.
    let mut other = block.clone();
    other[8] ^= 0xff;
    let cfg = vigil_config { max_chains: 1, ..default_config() };
    let v = new(Some(&cfg));
    unsafe {
        let r = wait(v, submit_block(v, &block));
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_VALID);
        vigil_result_free(r);
        let r = wait(v, submit_block(v, &other));
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_TOO_MANY_CHAINS);
        assert!(text(vigil_result_message(r)).contains(&hex(&other[8..40])));
        vigil_result_free(r);
        vigil_validator_free(v);
    }

    // Pinned to another chain id: the chain_id rule.
    let mut pinned = chain_id;
    pinned[0] ^= 1;
    let cfg = vigil_config { chain_id: pinned.as_ptr(), ..default_config() };
    let v = new(Some(&cfg));
    pinned.fill(0xaa); // copied by vigil_validator_new: this changes nothing
    unsafe {
        let r = wait(v, submit_block(v, &block));
        assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_INVALID);
        let rules: Vec<String> =
            (0..vigil_result_failure_count(r)).map(|i| text(vigil_result_failure_rule(r, i))).collect();
        assert_eq!(rules, ["chain_id"]);
        vigil_result_free(r);
        vigil_validator_free(v);
    }
}

#[test]
fn rule_names_are_the_engines() {
    for rule in Rule::ALL {
        assert_eq!(rule_name(rule).to_str().unwrap(), rule.name());
    }
    for code in [VIGIL_OK, VIGIL_PENDING, -1, -2, -3, -4, -5, -6] {
        assert!(text(vigil_error_name(code)).starts_with("VIGIL_"));
    }
    assert_eq!(text(vigil_error_name(VIGIL_ERR_OVERLOADED)), "VIGIL_ERR_OVERLOADED");
    assert_eq!(text(vigil_error_name(-99)), "unknown");
}

/// Results live on their own, and tickets only through their validator:
/// no call can wait on a ticket of a freed validator, because every
/// taking call goes through the validator handle, and freeing a
/// validator with untaken tickets answers and drops them.
#[test]
fn results_outlive_their_validator_and_free_answers_everything() {
    let cases = cases();
    let sigs = c_sigs(&cases);
    let v = new(None);
    let taken = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..1]);
    let r = wait(v, taken);
    // Left untaken, some maybe still queued: freed with the validator.
    for _ in 0..10 {
        submit_sigs(v, VIGIL_RULES_ZIP215, &sigs);
    }
    unsafe { vigil_validator_free(v) };
    assert_eq!(verdicts(r), [true]);
    assert_eq!(text(unsafe { vigil_result_message(r) }), "1 signatures, 1 valid");
    unsafe { vigil_result_free(r) };
}

#[test]
fn close_overload_and_status() {
    let cases = cases();
    let sigs = c_sigs(&cases);
    // A tiny queue and a long batching delay: the first request sits in
    // the queue, the next one does not fit.
    let cfg = vigil_config { max_queue_bytes: 1, max_delay_us: 10_000_000, ..default_config() };
    let v = new(Some(&cfg));
    let mut t = 0;
    let mut r = null_mut();
    unsafe {
        assert_eq!(vigil_try_submit_signatures(v, 0, sigs.as_ptr(), 1, &mut t), VIGIL_OK);
        let first = t;
        assert_eq!(vigil_try_submit_signatures(v, 0, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_OVERLOADED);
        assert_eq!(t, 0);
        let block = sample_block();
        assert_eq!(vigil_try_submit_block(v, block.as_ptr(), block.len(), &mut t), VIGIL_ERR_OVERLOADED);
        assert_eq!(vigil_poll(v, first, &mut r), VIGIL_PENDING);

        let json = vigil_status_json(v);
        let status: serde_json::Value = serde_json::from_str(&text(json)).unwrap();
        vigil_string_free(json);
        assert_eq!(status["overloaded"], 2);
        assert_eq!(status["queue_requests"], 1);
        assert_eq!(status["max_queue_bytes"], 1);
        assert_eq!(status["max_delay_us"], 10_000_000);
        assert_eq!(status["backend"], "cpu");

        // Closing answers what is queued at once, and takes nothing more.
        assert_eq!(vigil_close(v), VIGIL_OK);
        assert_eq!(vigil_submit_signatures(v, 0, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_CLOSED);
        assert_eq!(vigil_try_submit_block(v, block.as_ptr(), block.len(), &mut t), VIGIL_ERR_CLOSED);
        let started = std::time::Instant::now();
        assert_eq!(vigil_wait(v, first, &mut r), VIGIL_OK);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(verdicts(r), [true]);
        vigil_result_free(r);

        let json = vigil_status_json(v);
        let status: serde_json::Value = serde_json::from_str(&text(json)).unwrap();
        vigil_string_free(json);
        assert_eq!((status["requests"].as_u64(), status["signatures"].as_u64()), (Some(1), Some(1)));
        vigil_validator_free(v);
    }
}

/// Many threads on one validator: each gets its own answers; threads
/// racing to take one ticket get it exactly once between them.
#[test]
fn one_validator_many_threads() {
    let cases = cases();
    let want_zip: Vec<bool> = cases.iter().map(|(pk, m, s)| sig::verify(RuleSet::Zip215, pk, m, s)).collect();
    let want_strict: Vec<bool> = cases.iter().map(|(pk, m, s)| sig::verify(RuleSet::Strict, pk, m, s)).collect();
    struct Handle(*mut vigil_validator);
    // SAFETY: the validator is thread-safe (the point of this test).
    unsafe impl Sync for Handle {}
    let v = Handle(new(None));
    let v = &v;
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (cases, want_zip, want_strict) = (&cases, &want_zip, &want_strict);
            scope.spawn(move || {
                let sigs = c_sigs(cases);
                for round in 0..20 {
                    let strict = (thread + round) % 2 == 1;
                    let rules = if strict { VIGIL_RULES_STRICT } else { VIGIL_RULES_ZIP215 };
                    let n = 1 + (thread * 7 + round) % sigs.len();
                    let t = submit_sigs(v.0, rules, &sigs[..n]);
                    let r = wait(v.0, t);
                    let want = if strict { want_strict } else { want_zip };
                    assert_eq!(verdicts(r), want[..n]);
                    unsafe { vigil_result_free(r) };
                }
            });
        }
    });
    // Racing takers: one result between them, every other call gets
    // PENDING (polls) or UNKNOWN_TICKET.
    let sigs = c_sigs(&cases);
    let n = sigs.len();
    for _ in 0..20 {
        let t = submit_sigs(v.0, VIGIL_RULES_ZIP215, &sigs);
        let got: Vec<usize> = std::thread::scope(|scope| {
            let takers: Vec<_> = (0..4)
                .map(|i| {
                    scope.spawn(move || {
                        let mut r = null_mut();
                        let mut results = 0;
                        loop {
                            let code = unsafe {
                                if i % 2 == 0 { vigil_wait(v.0, t, &mut r) } else { vigil_poll(v.0, t, &mut r) }
                            };
                            match code {
                                VIGIL_OK => {
                                    assert_eq!(verdicts(r).len(), n);
                                    unsafe { vigil_result_free(r) };
                                    results += 1;
                                }
                                VIGIL_PENDING => continue,
                                VIGIL_ERR_UNKNOWN_TICKET => return results,
                                other => panic!("{}", text(vigil_error_name(other))),
                            }
                        }
                    })
                })
                .collect();
            takers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(got.iter().sum::<usize>(), 1, "{got:?}");
    }
    unsafe { vigil_validator_free(v.0) };
}

/// The layouts C sees (vigil.h), on this platform.
#[test]
fn struct_layouts() {
    use std::mem::{align_of, offset_of};
    let p = size_of::<*const u8>();
    assert_eq!(offset_of!(vigil_sig, public_key), 0);
    assert_eq!(offset_of!(vigil_sig, signature), p);
    assert_eq!(offset_of!(vigil_sig, message), 2 * p);
    assert_eq!(offset_of!(vigil_sig, message_len), 3 * p);
    assert_eq!(size_of::<vigil_sig>(), 4 * p);
    assert_eq!(align_of::<vigil_config>(), align_of::<u64>().max(p));
}
