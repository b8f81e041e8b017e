//! The known-answer self-test a [`GpuSigner`] runs on its device when it is
//! opened: drivers miscompute (Debian 12's Mesa 22.3 lavapipe got a
//! published WGSL verifier's curve addition wrong), and a verifier that
//! trusts such a device says VALID without having checked.
//!
//! It checks, in one signature call and one hash call (71–94 ms measured on
//! lavapipe on a 2-core machine; one call of each kind on a real GPU):
//!
//! - the verdicts of the signatures in `selftest.txt` under both rule sets,
//!   through the very call [`GpuSigner::verify`] makes. The set has every
//!   mutation family of the differential tests (bit flips, S = L and S + L,
//!   high bits of S, small-order and mixed-order A and R, non-canonical and
//!   non-decodable A and R), the speccheck edge cases, RFC 8032's vectors
//!   (messages up to 1 KiB) and repeated keys; its verdicts are those of the
//!   reference verifiers (ed25519-zebra, ed25519-dalek), checked by the
//!   engine's tests (`gpu_selftest`), which also regenerate it;
//! - BLAKE3 keyed digests of messages across the chunk and block
//!   boundaries, against the blake3 crate.
//!
//! It runs once per adapter, driver and kernel build in a process (a
//! second signer on the same device reuses the result), except when
//! failures are injected ([`super::GpuFaults`]).

use super::blake3::GpuBlake3;
use super::{GpuError, GpuSigner};
use crate::sig::{RuleSet, SigItem};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The known answers: one signature a line, `public_key signature message
/// zip215 strict` (hex, the message `-` when empty; verdicts 0 or 1).
const KNOWN: &str = include_str!("selftest.txt");

/// Message lengths of the BLAKE3 check: empty, within a block, block and
/// chunk boundaries, several chunks.
const HASH_LENGTHS: [usize; 12] = [0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 4096, 5000];

/// One signature with its verdicts under both rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAnswer {
    /// A, as given to the verifier.
    pub public_key: [u8; 32],
    /// R ‖ S.
    pub signature: [u8; 64],
    /// The message.
    pub message: Vec<u8>,
    /// Valid under zip215.
    pub zip215: bool,
    /// Valid under strict.
    pub strict: bool,
}

impl KnownAnswer {
    /// It, borrowed as the verifiers take it.
    pub fn item(&self) -> SigItem<'_> {
        SigItem { public_key: &self.public_key, message: &self.message, signature: &self.signature }
    }

    /// Its line in `selftest.txt`.
    pub fn line(&self) -> String {
        let message = if self.message.is_empty() { "-".to_owned() } else { hex::encode(&self.message) };
        format!(
            "{} {} {message} {} {}",
            hex::encode(self.public_key),
            hex::encode(self.signature),
            u8::from(self.zip215),
            u8::from(self.strict)
        )
    }
}

/// The known answers the self-test checks.
pub fn known_answers() -> Vec<KnownAnswer> {
    parse(KNOWN).expect("selftest.txt is well-formed (tests/gpu_selftest.rs)")
}

/// Parses `selftest.txt`'s format (`#` comments and blank lines skipped).
pub fn parse(text: &str) -> Result<Vec<KnownAnswer>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", n + 1);
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let [pk, sig, msg, zip, strict] = fields[..] else { return Err(bad("not 5 fields")) };
        let bit = |f: &str| match f {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad("a verdict is not 0 or 1")),
        };
        let mut public_key = [0u8; 32];
        let mut signature = [0u8; 64];
        hex::decode_to_slice(pk, &mut public_key).map_err(|_| bad("public key"))?;
        hex::decode_to_slice(sig, &mut signature).map_err(|_| bad("signature"))?;
        let message = if msg == "-" { Vec::new() } else { hex::decode(msg).map_err(|_| bad("message"))? };
        out.push(KnownAnswer { public_key, signature, message, zip215: bit(zip)?, strict: bit(strict)? });
    }
    Ok(out)
}

/// What the self-test found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct SelfTest {
    /// Signatures checked, each under both rule sets.
    pub signatures: usize,
    /// BLAKE3 digests checked.
    pub hashes: usize,
    /// Wrong answers (verdicts and digests).
    pub wrong: usize,
    /// The first wrong answer.
    pub first_wrong: Option<String>,
    /// Seconds it took, on the device and off.
    pub seconds: f64,
}

impl SelfTest {
    /// Whether every answer was right.
    pub fn passed(&self) -> bool {
        self.wrong == 0 && self.signatures > 0
    }
}

impl fmt::Display for SelfTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answers = 2 * self.signatures + self.hashes;
        if self.passed() {
            write!(
                f,
                "passed: {} signatures under both rule sets and {} BLAKE3 digests, in {:.0} ms",
                self.signatures,
                self.hashes,
                self.seconds * 1e3
            )
        } else {
            write!(f, "{} of {answers} known answers wrong", self.wrong)?;
            match &self.first_wrong {
                Some(first) => write!(f, " (first: {first})"),
                None => Ok(()),
            }
        }
    }
}

/// The self-test of `gpu`'s adapter, driver and kernel: run now, or what
/// this process found before (`fresh`: run it whatever was found).
pub(super) fn once(gpu: &GpuSigner, fresh: bool) -> Result<SelfTest, GpuError> {
    static DONE: Mutex<Vec<(String, SelfTest)>> = Mutex::new(Vec::new());
    let a = gpu.adapter();
    let key = format!("{}\n{}\n{}\n{}", a.name, a.driver, a.driver_info, gpu.kernel());
    if !fresh
        && let Some((_, found)) = DONE.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|(k, _)| *k == key)
    {
        return Ok(found.clone());
    }
    let result = run(gpu)?;
    if !fresh {
        DONE.lock().unwrap_or_else(PoisonError::into_inner).push((key, result.clone()));
    }
    Ok(result)
}

/// Runs the self-test on `gpu`'s device.
fn run(gpu: &GpuSigner) -> Result<SelfTest, GpuError> {
    let started = Instant::now();
    let known = known_answers();
    let items: Vec<SigItem<'_>> = known.iter().map(KnownAnswer::item).collect();
    let got = gpu.device_verify_both(&items)?;
    let mut wrong = Vec::new();
    if got.len() != known.len() {
        wrong.push(format!("{} verdicts for {} signatures", got.len(), known.len()));
    }
    for (i, (k, v)) in known.iter().zip(&got).enumerate() {
        for (rules, want) in [(RuleSet::Zip215, k.zip215), (RuleSet::Strict, k.strict)] {
            if v.get(rules) != want {
                let say = |ok: bool| if ok { "valid" } else { "invalid" };
                wrong.push(format!("signature {i} is {} under {rules}, not {}", say(v.get(rules)), say(want)));
            }
        }
    }
    let key = *blake3::hash(b"vigil GPU self-test").as_bytes();
    let messages: Vec<Vec<u8>> =
        HASH_LENGTHS.iter().map(|&n| (0..n).map(|i| (i * 251 % 256) as u8 ^ (n as u8)).collect()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let digests = GpuBlake3::new(gpu.context()).keyed_hash_many(gpu.context(), &key, &refs)?;
    for (m, d) in messages.iter().zip(&digests) {
        if *d != *blake3::keyed_hash(&key, m).as_bytes() {
            wrong.push(format!("the BLAKE3 digest of {} bytes", m.len()));
        }
    }
    if digests.len() != messages.len() {
        wrong.push(format!("{} digests for {} messages", digests.len(), messages.len()));
    }
    Ok(SelfTest {
        signatures: known.len(),
        hashes: messages.len(),
        wrong: wrong.len(),
        first_wrong: wrong.into_iter().next(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
