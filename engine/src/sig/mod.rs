//! ed25519 signature checking: the one place that decides whether a
//! signature verifies, under an explicit rule set.
//!
//! - `zip215` (the chain's rule, FORMAT.md "Signatures"): canonical S,
//!   A and R may be any encoding that decodes to a curve point (non-canonical
//!   and small-order ones included), cofactored equation. ed25519-zebra is
//!   the reference implementation of exactly these rules.
//! - `strict`: ed25519-dalek's `verify_strict` (canonical S, A and R not of
//!   small order, cofactorless equation compared byte-for-byte with R).

pub(crate) mod backend;
mod batch;
pub mod lanes;
mod line;
mod sizer;

pub use backend::{GpuFailure, GpuMode, SharedSigner, Signer, SignerConfig, SignerStats};
pub use batch::verify_zip215_batch;
pub use line::{SigLine, parse_sig_line};
pub use sizer::{BatchSizer, Method};

use rayon::prelude::*;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;

/// Which ed25519 verification rules decide a signature's validity. Named
/// `zip215` and `strict` on the command line, in JSON and in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSet {
    /// ZIP 215 (as `ed25519-zebra`): the rules of chain format v1, with a
    /// verdict every implementation agrees on.
    #[default]
    Zip215,
    /// RFC 8032 strict verification (as `ed25519-dalek`'s `verify_strict`):
    /// canonical encodings, no small-order keys or R; an audit, stricter than
    /// the chain's rule.
    Strict,
}

impl RuleSet {
    /// Every rule set, in the order listed in outputs.
    pub const ALL: [RuleSet; 2] = [RuleSet::Zip215, RuleSet::Strict];

    /// Its name: `zip215` or `strict` (what `FromStr` and serde take).
    pub fn name(self) -> &'static str {
        match self {
            RuleSet::Zip215 => "zip215",
            RuleSet::Strict => "strict",
        }
    }
}

impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`RuleSet`]'s (it holds the name given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule set {0:?} (expected zip215 or strict)")]
pub struct ParseRuleSetError(pub String);

impl FromStr for RuleSet {
    type Err = ParseRuleSetError;

    /// `zip215` or `strict`, exactly.
    fn from_str(s: &str) -> Result<Self, ParseRuleSetError> {
        match s {
            "zip215" => Ok(RuleSet::Zip215),
            "strict" => Ok(RuleSet::Strict),
            other => Err(ParseRuleSetError(other.to_owned())),
        }
    }
}

/// Whether `signature` by `public_key` over `message` verifies under `rules`.
pub fn verify(rules: RuleSet, public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    match rules {
        RuleSet::Zip215 => {
            let Ok(key) = ed25519_zebra::VerificationKey::try_from(*public_key) else {
                return false;
            };
            key.verify(&ed25519_zebra::Signature::from_bytes(signature), message).is_ok()
        }
        RuleSet::Strict => {
            let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
                return false;
            };
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
        }
    }
}

/// One signature to check: any ed25519 chain's (public key, message,
/// signature), borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SigItem<'a> {
    /// The signer's public key A (compressed point).
    pub public_key: &'a [u8; 32],
    /// The signed message, any length.
    pub message: &'a [u8],
    /// The signature: R then S (little-endian scalar).
    pub signature: &'a [u8; 64],
}

impl SigItem<'_> {
    /// The signature's R encoding (its first half).
    pub fn r_bytes(&self) -> [u8; 32] {
        self.signature[..32].try_into().expect("32 bytes")
    }

    /// S when canonical (S < L); without it no rule set accepts the
    /// signature.
    pub fn canonical_s(&self) -> Option<curve25519_dalek::scalar::Scalar> {
        let s_bytes: [u8; 32] = self.signature[32..].try_into().expect("32 bytes");
        curve25519_dalek::scalar::Scalar::from_canonical_bytes(s_bytes).into()
    }

    /// The challenge k = SHA-512(R ‖ A ‖ M) mod L.
    pub fn challenge(&self) -> curve25519_dalek::scalar::Scalar {
        use sha2::{Digest, Sha512};
        let mut h = Sha512::new();
        h.update(&self.signature[..32]);
        h.update(self.public_key);
        h.update(self.message);
        curve25519_dalek::scalar::Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }
}

/// Verifies `items` across rayon workers; `out[i]` is item i's verdict,
/// exactly [`verify`]'s. zip215 runs batch equations over `batch`
/// signatures (see [`verify_zip215_batch`]); strict runs in lanes ([`lanes`]) where the CPU
/// has them, else one signature at a time.
pub fn verify_many(rules: RuleSet, items: &[SigItem<'_>], out: &mut [bool], batch: usize) {
    assert_eq!(items.len(), out.len());
    let batch = batch.max(1);
    match rules {
        RuleSet::Zip215 => items
            .par_chunks(batch)
            .zip(out.par_chunks_mut(batch))
            .for_each(|(items, out)| verify_zip215_batch(items, out)),
        RuleSet::Strict => verify_many_in_lanes(rules, items, out),
    }
}

/// Verifies `items` across rayon workers, each signature on its own in the
/// fastest lanes this CPU has (one at a time with the reference verifier
/// where it has none); `out[i]` is exactly [`verify`]'s verdict.
pub fn verify_many_in_lanes(rules: RuleSet, items: &[SigItem<'_>], out: &mut [bool]) {
    assert_eq!(items.len(), out.len());
    let Some(best) = lanes::Lanes::best() else {
        return items
            .par_iter()
            .zip(out.par_iter_mut())
            .with_min_len(16)
            .for_each(|(it, ok)| *ok = verify(rules, it.public_key, it.message, it.signature));
    };
    // Chunks of whole lane groups, a few per worker.
    let per_worker = items.len().div_ceil(4 * rayon::current_num_threads());
    let chunk = per_worker.clamp(64, 1024).next_multiple_of(best.width());
    items.par_chunks(chunk).zip(out.par_chunks_mut(chunk)).for_each(|(items, out)| {
        lanes::verify_lanes(best, rules, items, out).expect("Lanes::best is supported");
    });
}

/// [`verify_many`] or [`verify_many_in_lanes`], and the batch size, chosen
/// and then learned from the measured time by `sizer`.
pub fn verify_many_tuned(rules: RuleSet, items: &[SigItem<'_>], out: &mut [bool], sizer: &mut BatchSizer) {
    if rules == RuleSet::Strict || items.is_empty() {
        return verify_many(rules, items, out, 1);
    }
    let choice = sizer.choose(items.len(), rayon::current_num_threads());
    if choice.is_first_lanes() && items.len() >= 1024 {
        // Measure both on this call: lanes on a quarter, then (lanes now
        // measured) the rest as the sizer picks, so that even a run of one
        // call compares them.
        let cut = items.len() / 4;
        let started = Instant::now();
        verify_many_in_lanes(rules, &items[..cut], &mut out[..cut]);
        let invalid = out[..cut].iter().filter(|&&ok| !ok).count();
        sizer.record(choice, cut, invalid, started.elapsed());
        return verify_many_tuned(rules, &items[cut..], &mut out[cut..], sizer);
    }
    let started = Instant::now();
    match choice.method {
        Method::Lanes => verify_many_in_lanes(rules, items, out),
        Method::Batch(size) => verify_many(rules, items, out, size),
    }
    let elapsed = started.elapsed();
    sizer.record(choice, items.len(), out.iter().filter(|&&ok| !ok).count(), elapsed);
}

/// Which curve25519-dalek backend this process uses for point arithmetic.
pub fn curve_backend() -> &'static str {
    #[cfg(all(target_arch = "x86_64", curve25519_dalek_backend = "avx512"))]
    if std::is_x86_feature_detected!("avx512ifma") && std::is_x86_feature_detected!("avx512vl") {
        return "avx512ifma";
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    "serial"
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn rule_sets_parse_by_name_and_say_what_they_expect() {
        for rules in RuleSet::ALL {
            assert_eq!(rules.name().parse::<RuleSet>(), Ok(rules));
        }
        let err = "Zip215".parse::<RuleSet>().unwrap_err();
        assert_eq!(err.to_string(), "unknown rule set \"Zip215\" (expected zip215 or strict)");
    }

    #[test]
    fn both_rule_sets_accept_a_fresh_signature_and_reject_a_tampered_one() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let pk = sk.verifying_key().to_bytes();
        let msg = [1u8; 32];
        let sig = sk.sign(&msg).to_bytes();
        for rules in RuleSet::ALL {
            assert!(verify(rules, &pk, &msg, &sig), "{rules}");
            let mut bad = sig;
            bad[40] ^= 1;
            assert!(!verify(rules, &pk, &msg, &bad), "{rules}");
            assert!(!verify(rules, &pk, &[2u8; 32], &sig), "{rules}");
        }
    }

    #[test]
    fn s_plus_l_is_rejected_by_both() {
        // L, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let sk = SigningKey::from_bytes(&[3; 32]);
        let pk = sk.verifying_key().to_bytes();
        let msg = [7u8; 32];
        let mut sig = sk.sign(&msg).to_bytes();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = sig[32 + i] as u16 + L[i] as u16 + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        for rules in RuleSet::ALL {
            assert!(!verify(rules, &pk, &msg, &sig), "{rules}");
        }
    }
}
