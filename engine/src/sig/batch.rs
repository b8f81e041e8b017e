//! ZIP-215 batch verification by random linear combination, exact per
//! signature.
//!
//! A signature verifies under ZIP-215 iff `[8]([S]B − R − [k]A) = 0`. For a
//! batch, draw fresh random 128-bit `z_i` and check one equation:
//!
//! ```text
//! [8]( [Σ z_i·S_i]B − Σ [z_i]R_i − Σ_keys [Σ_{i: A_i = key} z_i·k_i]A ) = 0
//! ```
//!
//! After multiplying by the cofactor every term lies in the prime-order
//! subgroup, so if any one signature fails its own equation the sum is zero
//! only when the unpredictable `z` happen to cancel it: probability below
//! 2^-125. If every signature holds, the sum is zero. So "the batch holds"
//! and "every signature holds" agree, and single and batch verification give
//! the same verdict (FORMAT.md: "These rules make single and batch
//! verification agree exactly"). Terms of one public key are summed before
//! the multiscalar multiplication (IoT chains have few devices and many
//! records each), and each key is decompressed once per batch.
//!
//! When the equation fails, every signature of the batch gets its own
//! verdict from the lane verifier ([`super::lanes`], or the reference single
//! verifier where the CPU has no lanes): no bisection, so a failed batch
//! costs one batch equation more than verifying it signature by signature.
//!
//! Strict (`verify_strict`) is not batched: its check is cofactorless and
//! compares the encoding of `[S]B − [k]A` with R's bytes. A random linear
//! combination can only test a group equation; without the cofactor,
//! small-order components of R and A make an invalid signature's term a
//! torsion point that `z` may cancel (probability 1/8 rather than 2^-125),
//! and byte equality of R's encoding (canonical R, not of small order) is not
//! a group property at all. So batching cannot reproduce strict's verdicts
//! exactly; strict signatures are verified one at a time.

use super::lanes::{Lanes, verify_lanes};
use super::{RuleSet, SigItem, verify};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::RngExt;
use std::collections::HashMap;

/// Batches this small are checked one signature at a time.
const SINGLE_BELOW: usize = 4;

/// One decodable signature of a batch.
struct Term {
    /// Index into the caller's items.
    item: usize,
    /// Index into the batch's distinct decompressed keys.
    key: usize,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Verifies `items` under ZIP-215 as one batch; `out[i]` is item i's
/// verdict, exactly as [`verify`] with [`RuleSet::Zip215`] would give it.
pub fn verify_zip215_batch(items: &[SigItem<'_>], out: &mut [bool]) {
    assert_eq!(items.len(), out.len());
    if items.len() < SINGLE_BELOW {
        return verify_each(items, out);
    }
    out.fill(false);
    let mut key_slot: HashMap<[u8; 32], Option<usize>> = HashMap::new();
    let mut keys: Vec<EdwardsPoint> = Vec::new();
    let mut terms = Vec::with_capacity(items.len());
    for (item, it) in items.iter().enumerate() {
        // S must be canonical (< L); A and R must decode (any encoding).
        let Some(s) = it.canonical_s() else {
            continue;
        };
        let key = *key_slot.entry(*it.public_key).or_insert_with(|| {
            let point = CompressedEdwardsY(*it.public_key).decompress()?;
            keys.push(point);
            Some(keys.len() - 1)
        });
        let Some(key) = key else { continue };
        let Some(r) = CompressedEdwardsY(it.r_bytes()).decompress() else {
            continue;
        };
        terms.push(Term { item, key, r, s, k: it.challenge() });
    }
    let mut scratch = Scratch { key_coeff: vec![None; keys.len()], ..Default::default() };
    if equation_holds(&terms, &keys, &mut scratch) {
        for t in &terms {
            out[t.item] = true;
        }
        return;
    }
    // Some signature is invalid: a verdict for each (of those that decoded).
    let decoded: Vec<SigItem<'_>> = terms.iter().map(|t| items[t.item]).collect();
    let mut verdicts = vec![false; decoded.len()];
    verify_each(&decoded, &mut verdicts);
    for (t, ok) in terms.iter().zip(verdicts) {
        out[t.item] = ok;
    }
}

/// Each signature's own verdict, in lanes where the CPU has them.
fn verify_each(items: &[SigItem<'_>], out: &mut [bool]) {
    if let Some(lanes) = Lanes::best() {
        verify_lanes(lanes, RuleSet::Zip215, items, out).expect("Lanes::best is supported");
        return;
    }
    for (it, ok) in items.iter().zip(out.iter_mut()) {
        *ok = verify(RuleSet::Zip215, it.public_key, it.message, it.signature);
    }
}

#[derive(Default)]
struct Scratch {
    scalars: Vec<Scalar>,
    points: Vec<EdwardsPoint>,
    key_coeff: Vec<Option<Scalar>>,
    touched: Vec<usize>,
}

/// The batch equation over `terms`, with fresh random coefficients.
fn equation_holds(terms: &[Term], keys: &[EdwardsPoint], scratch: &mut Scratch) -> bool {
    let mut rng = rand::rng();
    let Scratch { scalars, points, key_coeff, touched } = scratch;
    scalars.clear();
    points.clear();
    touched.clear();
    let mut b_coeff = Scalar::ZERO;
    for t in terms {
        // Odd, so never zero; 127 bits of unpredictability.
        let z = Scalar::from(rng.random::<u128>() | 1);
        b_coeff += z * t.s;
        scalars.push(-z);
        points.push(t.r);
        let slot = &mut key_coeff[t.key];
        match slot {
            Some(c) => *c += z * t.k,
            None => {
                *slot = Some(z * t.k);
                touched.push(t.key);
            }
        }
    }
    for &key in touched.iter() {
        scalars.push(-key_coeff[key].take().expect("touched"));
        points.push(keys[key]);
    }
    scalars.push(b_coeff);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars.iter(), points.iter()).mul_by_cofactor().is_identity()
}
