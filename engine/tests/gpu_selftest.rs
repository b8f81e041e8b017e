//! The GPU's known-answer self-test and its failure policy: a GPU failure
//! or a lost device never changes a verdict.
//!
//! - The self-test's known answers (`engine/src/gpu/selftest.txt`) are the
//!   reference verifiers' verdicts (ed25519-zebra for zip215, dalek
//!   `verify_strict` for strict), and cover every edge the kernel has (checked
//!   here from the bytes, without a GPU). `VIGIL_WRITE_SELFTEST=1` writes the
//!   file afresh from the mutation families and the public vectors first.
//! - On this machine's adapter the self-test passes, once per process; an
//!   adapter that miscomputes (injected) is refused, naming adapter and
//!   driver.
//! - Injected call failures and a device lost mid-run: every verdict is
//!   the CPU's, alone and in the hybrid, through the `Verifier`, and every
//!   fallback is counted; a lost device gets no further call.
//!
//! Needs a GPU adapter for all but the first test: without one they say so
//! and pass, unless `VIGIL_REQUIRE_GPU=1` (CI, on lavapipe).

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vigil_engine::gpu::selftest::{KnownAnswer, known_answers};
use vigil_engine::gpu::{GpuError, GpuFaults, GpuSigner};
use vigil_engine::sig::{self, RuleSet, SigItem, Signer, SignerConfig};
use vigil_engine::{GpuMode, VerifyOptions};

use crate::common;
use crate::vectors::{rfc_cases, speccheck_cases};
use common::sig_cases::{Family, generate_all};

const SEED: u64 = 0x7365_6c66_7465_7374; // "selftest"
/// Signatures of each mutation family in the file.
const PER_FAMILY: usize = 12;
/// RFC 8032 messages taken: lengths across SHA-512's 128-byte blocks.
const RFC_LINES: [usize; 12] = [0, 1, 2, 63, 64, 111, 112, 127, 128, 255, 511, 1023];

/// A signature with the reference verifiers' verdicts.
fn answer(public_key: [u8; 32], signature: [u8; 64], message: Vec<u8>) -> KnownAnswer {
    let zip215 = sig::verify(RuleSet::Zip215, &public_key, &message, &signature);
    let strict = sig::verify(RuleSet::Strict, &public_key, &message, &signature);
    KnownAnswer { public_key, signature, message, zip215, strict }
}

/// The file's signatures, built afresh: `PER_FAMILY` of every family, the
/// speccheck cases, RFC 8032 lines; verdicts from the reference verifiers.
fn build() -> Vec<KnownAnswer> {
    let mut per_family: BTreeMap<Family, usize> = BTreeMap::new();
    let mut cases = Vec::new();
    for s in generate_all(4000, SEED) {
        let n = per_family.entry(s.family).or_default();
        if *n < PER_FAMILY {
            *n += 1;
            let k = answer(s.public_key, s.signature, s.message.clone());
            assert_eq!((k.zip215, k.strict), (s.want_zip215, s.want_strict), "{}", s.dump());
            cases.push(k);
        }
    }
    assert!(per_family.values().all(|&n| n == PER_FAMILY), "{per_family:?}");
    cases.extend(speccheck_cases().into_iter().map(|c| answer(c.public_key, c.signature, c.message)));
    let rfc = rfc_cases();
    cases.extend(
        RFC_LINES.iter().map(|&line| answer(rfc[line].public_key, rfc[line].signature, rfc[line].message.clone())),
    );
    cases
}

/// What a signature's bytes are, for the coverage counts.
#[derive(Debug, Default)]
struct Coverage {
    both_valid: usize,
    zip215_only: usize,
    invalid: usize,
    small_order_a: usize,
    small_order_r: usize,
    non_canonical_a: usize,
    non_canonical_r: usize,
    non_decodable_a: usize,
    non_decodable_r: usize,
    s_not_canonical: usize,
    long_messages: usize,
    repeated_keys: usize,
}

fn coverage(cases: &[KnownAnswer]) -> Coverage {
    let mut c = Coverage::default();
    let mut keys: HashMap<[u8; 32], usize> = HashMap::new();
    for k in cases {
        match (k.zip215, k.strict) {
            (true, true) => c.both_valid += 1,
            (true, false) => c.zip215_only += 1,
            (false, false) => c.invalid += 1,
            (false, true) => panic!("valid under strict but not zip215: {}", k.line()),
        }
        let r: [u8; 32] = k.signature[..32].try_into().unwrap();
        for (bytes, small, non_canonical, non_decodable) in [
            (k.public_key, &mut c.small_order_a, &mut c.non_canonical_a, &mut c.non_decodable_a),
            (r, &mut c.small_order_r, &mut c.non_canonical_r, &mut c.non_decodable_r),
        ] {
            match CompressedEdwardsY(bytes).decompress() {
                None => *non_decodable += 1,
                Some(p) => {
                    *small += usize::from(p.is_small_order());
                    *non_canonical += usize::from(p.compress().to_bytes() != bytes);
                }
            }
        }
        let s: [u8; 32] = k.signature[32..].try_into().unwrap();
        c.s_not_canonical += usize::from(Option::<Scalar>::from(Scalar::from_canonical_bytes(s)).is_none());
        c.long_messages += usize::from(k.message.len() > 128);
        *keys.entry(k.public_key).or_default() += 1;
    }
    c.repeated_keys = keys.values().filter(|&&n| n >= 3).count();
    c
}

#[test]
fn known_answers_are_the_reference_verdicts_and_cover_every_edge() {
    // Written afresh: checked as written (the build embeds it next time).
    let mut known = known_answers();
    if std::env::var("VIGIL_WRITE_SELFTEST").is_ok_and(|v| v == "1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gpu/selftest.txt");
        let mut text = String::from(
            "# The GPU self-test's known answers (engine/src/gpu/selftest.rs): public key, signature,\n\
             # message (- when empty), zip215 and strict verdicts. Written by\n\
             # VIGIL_WRITE_SELFTEST=1 cargo test -p vigil-engine --test integration gpu_selftest::\n",
        );
        for k in build() {
            text += &k.line();
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        eprintln!("wrote {}; rebuild to embed it", path.display());
        known = vigil_engine::gpu::selftest::parse(&text).unwrap();
    }
    assert!((200..=400).contains(&known.len()), "{} known answers", known.len());
    for (i, k) in known.iter().enumerate() {
        for (rules, want) in [(RuleSet::Zip215, k.zip215), (RuleSet::Strict, k.strict)] {
            let reference = sig::verify(rules, &k.public_key, &k.message, &k.signature);
            assert_eq!(reference, want, "known answer {i} under {rules}: {}", k.line());
        }
    }
    let c = coverage(&known);
    eprintln!("{c:?}");
    assert!(c.both_valid >= 20 && c.zip215_only >= 10 && c.invalid >= 50, "{c:?}");
    assert!(c.small_order_a >= 5 && c.small_order_r >= 5, "{c:?}");
    assert!(c.non_canonical_a >= 5 && c.non_canonical_r >= 5, "{c:?}");
    assert!(c.non_decodable_a >= 3 && c.non_decodable_r >= 3, "{c:?}");
    assert!(c.s_not_canonical >= 10 && c.long_messages >= 3 && c.repeated_keys >= 2, "{c:?}");
    // The file is parsed strictly.
    assert!(vigil_engine::gpu::selftest::parse("00 11 - 1 0").is_err());
    let mut bad_verdict = known[0].line();
    bad_verdict.pop();
    assert!(vigil_engine::gpu::selftest::parse(&(bad_verdict + "2")).is_err());
    assert_eq!(vigil_engine::gpu::selftest::parse(&known[0].line()).unwrap(), [known[0].clone()]);
}

fn open(faults: &str) -> Option<Result<GpuSigner, GpuError>> {
    let faults: GpuFaults = faults.parse().unwrap();
    // Skips (or fails under VIGIL_REQUIRE_GPU=1) when there is no adapter.
    common::gpu::or_skip(vigil_engine::gpu::GpuContext::with_options(&common::gpu::options()))?;
    Some(GpuSigner::open_with(&common::gpu::options().with_faults(faults)))
}

#[test]
fn the_self_test_passes_on_this_adapter_and_a_miscomputing_one_is_refused() {
    let Some(gpu) = open("") else { return };
    let gpu = gpu.expect("this machine's adapter passes the self-test");
    let test = gpu.self_test().clone();
    eprintln!("{}: self-test {test}", gpu.adapter().name);
    assert!(test.passed() && test.signatures == known_answers().len() && test.hashes >= 10, "{test:?}");
    // Once per process: a second signer on the same device reuses it.
    let again = GpuSigner::open_with(&common::gpu::options()).unwrap();
    assert_eq!(*again.self_test(), test);

    let refused = open("wrong").unwrap();
    let Err(GpuError::SelfTest { adapter, driver, detail }) = &refused else {
        panic!("a miscomputing adapter was not refused: {refused:?}")
    };
    let message = refused.as_ref().unwrap_err().to_string();
    assert_eq!(*adapter, gpu.adapter().name);
    assert!(driver.contains(&gpu.adapter().driver), "{driver}");
    assert!(message.contains(adapter.as_str()) && message.contains(driver.as_str()), "{message}");
    assert!(detail.contains("known answers wrong") && detail.contains("signature 5 is"), "{detail}");
}

/// The mutation families, `n` of them, with their reference verdicts.
fn signatures(n: usize, rules: RuleSet) -> (Vec<common::sig_cases::Sig>, Vec<bool>) {
    let sigs = generate_all(n, SEED ^ 1);
    let want = sigs.iter().map(|s| if rules == RuleSet::Zip215 { s.want_zip215 } else { s.want_strict }).collect();
    (sigs, want)
}

#[test]
fn gpu_failures_and_a_lost_device_never_change_a_verdict_and_are_counted() {
    // Calls 1 and 3 fail; the device is lost at call 5; 8 batches.
    let Some(gpu) = open("fail:1,3+lost:5") else { return };
    let gpu = Arc::new(gpu.unwrap());
    for rules in RuleSet::ALL {
        let (sigs, want) = signatures(8 * 40, rules);
        let mut signer = Signer::new(SignerConfig::gpu(Arc::clone(&gpu), GpuMode::Only));
        let mut got = Vec::new();
        for chunk in sigs.chunks(40) {
            let items: Vec<SigItem<'_>> = chunk.iter().map(|s| s.item()).collect();
            got.extend(signer.verify(rules, &items));
        }
        assert_eq!(got, want, "{rules}");
        let s = signer.stats();
        if rules == RuleSet::Zip215 {
            // Calls 0..=5 made (1, 3 and 5 failed), none after the loss.
            assert_eq!((s.gpu_calls, s.gpu_failures, s.gpu_signatures), (6, 3, 3 * 40), "{s:?}");
            assert_eq!((s.cpu_fallbacks, s.fallback_signatures, s.cpu_signatures), (5, 5 * 40, 5 * 40), "{s:?}");
        } else {
            // The device was already lost: no call at all.
            assert_eq!((s.gpu_calls, s.cpu_fallbacks, s.fallback_signatures), (0, 8, 8 * 40), "{s:?}");
        }
        assert!(s.gpu_lost, "{s:?}");
        assert!(gpu.lost().is_some_and(|why| why.contains("lost at call 5")));
    }
}

#[test]
fn the_hybrid_and_the_verifier_give_the_cpu_verdicts_when_the_gpu_fails() {
    // Calls 0 and 2 fail (the hybrid's warm-up is call 0), lost at call 4.
    let Some(gpu) = open("fail:0,2+lost:4") else { return };
    let gpu = Arc::new(gpu.unwrap());
    let (sigs, want) = signatures(6 * 64, RuleSet::Zip215);
    let mut signer = Signer::new(SignerConfig::gpu(Arc::clone(&gpu), GpuMode::Split(0.5)));
    let mut got = Vec::new();
    for chunk in sigs.chunks(64) {
        let items: Vec<SigItem<'_>> = chunk.iter().map(|s| s.item()).collect();
        got.extend(signer.verify(RuleSet::Zip215, &items));
    }
    assert_eq!(got, want);
    let s = signer.stats();
    assert!(s.gpu_lost && s.gpu_failures >= 2 && s.cpu_fallbacks > s.gpu_failures, "{s:?}");
    assert_eq!(s.gpu_signatures + s.cpu_signatures, s.signatures, "{s:?}");

    // A whole chain with a GPU that fails now and then, then is lost: the
    // CPU's report, failures counted.
    let Some(gpu) = open("fail:1+lost:3") else { return };
    let gpu = Arc::new(gpu.unwrap());
    for files in common::data::conformance_chains().into_iter().take(6) {
        let cpu = common::gpu::report(&files, VerifyOptions::default());
        // Small batches: several GPU calls a chain.
        let mut opts = VerifyOptions::default();
        (opts.max_batch_txs, opts.signer) = (Some(300), SignerConfig::gpu(Arc::clone(&gpu), GpuMode::Only));
        let with_gpu = common::gpu::report(&files, opts);
        assert_eq!(with_gpu, cpu, "{files:?}");
    }
    assert!(gpu.lost().is_some());
}
