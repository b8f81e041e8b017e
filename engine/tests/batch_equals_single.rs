//! Differential test: the zip215 batch verifier gives exactly the single
//! verifier's verdict for every signature, in every batch composition.
//!
//! Signatures (100,000 by default; `VIGIL_DIFF_SIGS` scales it,
//! `VIGIL_DIFF_SEED` picks another seed) come from a seeded ChaCha RNG in
//! families: fresh valid signatures, one-bit flips, S ≥ L, small-order,
//! mixed-order, non-canonical and non-decodable A and R. Each is built to a
//! known verdict under both rule sets (checked against single
//! verification), then they are shuffled into batches of 1..=600 with varied
//! shares of invalid signatures, and `verify_zip215_batch` and `verify_many`
//! must agree with `verify` everywhere. `verify_many(Strict, ..)` must agree
//! with strict single verification.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::time::Instant;
use vigil_engine::sig::{RuleSet, SigItem, verify, verify_many, verify_zip215_batch};

const DEFAULT_SIGS: usize = 100_000;
const DEFAULT_SEED: u64 = 0x7669_6769_6c5f_6466; // "vigil_df"

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The field prime p = 2^255 − 19, little-endian.
const P: [u8; 32] = [
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Family {
    /// Signed by one of a few senders (keys reused across signatures).
    FreshFewSenders,
    /// Signed by a fresh key each time.
    FreshDistinct,
    FlipR,
    FlipS,
    FlipA,
    FlipMessage,
    /// S + L (same scalar mod L, non-canonical).
    SPlusL,
    SEqualsL,
    /// Some of S's bits 253..=255 set.
    SHighBits,
    SmallOrderA,
    SmallOrderR,
    MixedOrderA,
    MixedOrderR,
    NonCanonicalA,
    NonCanonicalR,
    NonDecodableA,
    NonDecodableR,
}

impl Family {
    /// (family, weight per 1,130 signatures)
    const ALL: [(Family, u32); 17] = [
        (Family::FreshFewSenders, 120),
        (Family::FreshDistinct, 120),
        (Family::FlipR, 50),
        (Family::FlipS, 50),
        (Family::FlipA, 50),
        (Family::FlipMessage, 50),
        (Family::SPlusL, 30),
        (Family::SEqualsL, 20),
        (Family::SHighBits, 30),
        (Family::SmallOrderA, 70),
        (Family::SmallOrderR, 70),
        (Family::MixedOrderA, 70),
        (Family::MixedOrderR, 70),
        (Family::NonCanonicalA, 70),
        (Family::NonCanonicalR, 70),
        (Family::NonDecodableA, 25),
        (Family::NonDecodableR, 25),
    ];

    /// Which zip215 verdicts this family can produce: (valid, invalid).
    fn possible_zip215(self) -> (bool, bool) {
        match self {
            Family::FreshFewSenders | Family::FreshDistinct => (true, false),
            Family::FlipR
            | Family::FlipS
            | Family::FlipA
            | Family::FlipMessage
            | Family::SPlusL
            | Family::SEqualsL
            | Family::SHighBits
            | Family::NonDecodableA
            | Family::NonDecodableR => (false, true),
            Family::SmallOrderA
            | Family::SmallOrderR
            | Family::MixedOrderA
            | Family::MixedOrderR
            | Family::NonCanonicalA
            | Family::NonCanonicalR => (true, true),
        }
    }
}

/// One generated signature and the verdicts it was built to have.
#[derive(Debug, Clone)]
struct Sig {
    family: Family,
    public_key: [u8; 32],
    message: Vec<u8>,
    signature: [u8; 64],
    want_zip215: bool,
    want_strict: bool,
    /// How it was made, for failure messages.
    note: String,
}

impl Sig {
    fn item(&self) -> SigItem<'_> {
        SigItem { public_key: &self.public_key, message: &self.message, signature: &self.signature }
    }

    fn dump(&self) -> String {
        format!(
            "{:?} ({}): pk {} msg {} sig {}",
            self.family,
            self.note,
            hex::encode(self.public_key),
            hex::encode(&self.message),
            hex::encode(self.signature)
        )
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn random_scalar(rng: &mut impl Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn random_message(rng: &mut impl Rng) -> Vec<u8> {
    let len = if rng.random_bool(0.5) { 32 } else { rng.random_range(0..200) };
    let mut m = vec![0u8; len];
    rng.fill_bytes(&mut m);
    m
}

/// k = SHA-512(R ‖ A ‖ M) mod L, over the bytes as given.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update(r).chain_update(a).chain_update(m))
}

fn signature(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = a[i] as u16 + b[i] as u16 + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0, "overflow");
    out
}

fn flip_bit(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8] ^= 1 << (bit % 8);
}

/// Fixed material every signature may draw on.
struct Material {
    senders: Vec<SigningKey>,
    /// The 8 torsion points and their canonical encodings.
    torsion: Vec<(EdwardsPoint, [u8; 32])>,
    /// Non-canonical encodings that decode: y + p for the y in 0..19 that
    /// decode (both signs), and x = 0 with the sign bit set (y = 1, y = p − 1).
    non_canonical: Vec<[u8; 32]>,
    /// Which of `non_canonical` are of small order.
    non_canonical_small: Vec<[u8; 32]>,
}

impl Material {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5e4d_e45e);
        let senders = (0..8)
            .map(|_| {
                let mut sk = [0u8; 32];
                rng.fill_bytes(&mut sk);
                SigningKey::from_bytes(&sk)
            })
            .collect();
        let torsion: Vec<(EdwardsPoint, [u8; 32])> =
            EIGHT_TORSION.iter().map(|t| (*t, t.compress().to_bytes())).collect();
        for (t, enc) in &torsion {
            assert!(t.is_small_order());
            assert_eq!(CompressedEdwardsY(*enc).decompress(), Some(*t));
        }

        let mut non_canonical = Vec::new();
        let mut decodable_y = Vec::new();
        for y in 0u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            if CompressedEdwardsY(canonical).decompress().is_some() {
                decodable_y.push(y);
                // y + p: p's low byte is 0xed and 0xed + 18 = 0xff, no carry.
                let mut enc = P;
                enc[0] += y;
                non_canonical.push(enc);
                enc[31] |= 0x80;
                non_canonical.push(enc);
            }
        }
        let mut one_neg = [0u8; 32];
        one_neg[0] = 1;
        one_neg[31] = 0x80;
        let mut p_minus_one_neg = P;
        p_minus_one_neg[0] -= 1;
        p_minus_one_neg[31] |= 0x80;
        non_canonical.push(one_neg);
        non_canonical.push(p_minus_one_neg);

        let mut non_canonical_small = Vec::new();
        for enc in &non_canonical {
            let p = CompressedEdwardsY(*enc).decompress().expect("decodes");
            assert_ne!(p.compress().to_bytes(), *enc, "{} is canonical", hex::encode(enc));
            if p.is_small_order() {
                non_canonical_small.push(*enc);
            }
        }
        println!(
            "non-canonical encodings: y + p for decodable y in {decodable_y:?} (both signs) and x = 0 with the sign \
             bit: {} encodings, {} of small order",
            non_canonical.len(),
            non_canonical_small.len()
        );
        // y = 0 (order 4, both signs), y = 1 (identity, both signs), y = 1
        // and y = p − 1 with x = 0 and the sign bit.
        assert!(decodable_y.starts_with(&[0, 1]), "{decodable_y:?}");
        assert!(non_canonical_small.len() >= 6, "{}", non_canonical_small.len());
        assert!(non_canonical.len() > non_canonical_small.len());

        Material { senders, torsion, non_canonical, non_canonical_small }
    }
}

/// A real keypair as a scalar: either a sender's (expanded) key or a fresh
/// random scalar.
fn keypair(rng: &mut impl Rng, m: &Material) -> (Scalar, [u8; 32]) {
    if rng.random_bool(0.5) {
        let sk = &m.senders[rng.random_range(0..m.senders.len())];
        (sk.to_scalar(), sk.verifying_key().to_bytes())
    } else {
        let a = random_scalar(rng);
        (a, EdwardsPoint::mul_base(&a).compress().to_bytes())
    }
}

/// An ordinary valid signature (from a sender or a fresh key).
fn fresh(rng: &mut impl Rng, m: &Material, few_senders: bool) -> ([u8; 32], Vec<u8>, [u8; 64]) {
    let fresh_key;
    let key = if few_senders {
        &m.senders[rng.random_range(0..m.senders.len())]
    } else {
        let mut sk = [0u8; 32];
        rng.fill_bytes(&mut sk);
        fresh_key = SigningKey::from_bytes(&sk);
        &fresh_key
    };
    let message = random_message(rng);
    let sig = key.sign(&message).to_bytes();
    (key.verifying_key().to_bytes(), message, sig)
}

/// A random 32-byte string that does not decode to a point.
fn non_decodable(rng: &mut impl Rng) -> [u8; 32] {
    loop {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        if CompressedEdwardsY(b).decompress().is_none() {
            return b;
        }
    }
}

/// S = r + k·a with k over the given A and R bytes: signs for any encodings
/// whose points differ from aB and rB by torsion only.
fn sign_with(a: &Scalar, a_bytes: &[u8; 32], r: &Scalar, r_bytes: &[u8; 32], msg: &[u8]) -> [u8; 64] {
    let k = challenge(r_bytes, a_bytes, msg);
    signature(r_bytes, &(r + k * a))
}

fn generate(index: usize, seed: u64, m: &Material, family: Family) -> Sig {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    let rng = &mut rng;
    // Constructive families are corrupted (S + 1, a guaranteed failure of the
    // cofactored equation: the residual becomes [1]B) 30% of the time.
    let corrupt = rng.random_bool(0.3);
    let mut note = String::new();
    let (public_key, message, mut sig, mut want_zip215, mut want_strict) = match family {
        Family::FreshFewSenders | Family::FreshDistinct => {
            let (pk, msg, sig) = fresh(rng, m, family == Family::FreshFewSenders);
            return Sig {
                family,
                public_key: pk,
                message: msg,
                signature: sig,
                want_zip215: true,
                want_strict: true,
                note,
            };
        }
        Family::FlipR | Family::FlipS | Family::FlipA | Family::FlipMessage => {
            let (mut pk, mut msg, mut sig) = {
                let few = rng.random_bool(0.5);
                fresh(rng, m, few)
            };
            match family {
                Family::FlipR => flip_bit(&mut sig[..32], rng.random_range(0..256)),
                Family::FlipS => flip_bit(&mut sig[32..], rng.random_range(0..256)),
                Family::FlipA => flip_bit(&mut pk, rng.random_range(0..256)),
                _ => {
                    if msg.is_empty() {
                        msg.push(rng.random());
                        sig = m.senders[0].sign(&msg).to_bytes();
                        pk = m.senders[0].verifying_key().to_bytes();
                    }
                    let bits = msg.len() * 8;
                    flip_bit(&mut msg, rng.random_range(0..bits));
                }
            }
            return Sig {
                family,
                public_key: pk,
                message: msg,
                signature: sig,
                want_zip215: false,
                want_strict: false,
                note,
            };
        }
        Family::SPlusL | Family::SEqualsL | Family::SHighBits => {
            let (pk, msg, mut sig) = {
                let few = rng.random_bool(0.5);
                fresh(rng, m, few)
            };
            let s: [u8; 32] = sig[32..].try_into().unwrap();
            let s = match family {
                Family::SPlusL => add_le(&s, &L),
                Family::SEqualsL => L,
                _ => {
                    let mut s = s;
                    s[31] |= rng.random_range(1u8..8) << 5;
                    s
                }
            };
            sig[32..].copy_from_slice(&s);
            return Sig {
                family,
                public_key: pk,
                message: msg,
                signature: sig,
                want_zip215: false,
                want_strict: false,
                note,
            };
        }
        Family::SmallOrderA => {
            // A small order: [8]([s]B − [s]B − [k]A) = 0 for any s and any
            // message. Sometimes R also carries a torsion component.
            let (_, a_bytes) = m.torsion[rng.random_range(0..8)];
            let s = random_scalar(rng);
            let mut r = EdwardsPoint::mul_base(&s);
            if rng.random_bool(0.3) {
                let (t_r, _) = m.torsion[rng.random_range(0..8)];
                r += t_r;
                note += "R mixed; ";
            }
            let r_bytes = r.compress().to_bytes();
            let mut msg = random_message(rng);
            if rng.random_bool(0.2) {
                // Signed for one message, checked with another: still valid.
                msg.push(0xa5);
                note += "other message; ";
            }
            note += &format!("A = torsion {}", hex::encode(a_bytes));
            (a_bytes, msg, signature(&r_bytes, &s), true, false)
        }
        Family::SmallOrderR => {
            // R = T small order, S = k·a: [S]B − T − [k]A = −T, killed by [8].
            let (a, a_bytes) = keypair(rng, m);
            let (_, r_bytes) = m.torsion[rng.random_range(0..8)];
            let msg = random_message(rng);
            let k = challenge(&r_bytes, &a_bytes, &msg);
            note += &format!("R = torsion {}", hex::encode(r_bytes));
            // Strict rejects small-order R, the identity included.
            (a_bytes, msg, signature(&r_bytes, &(k * a)), true, false)
        }
        Family::MixedOrderA => {
            // A' = aB + T, R = rB, S = r + k·a: residual −[k]T, killed by [8].
            // Strict (cofactorless): valid iff [k]T = 0.
            let (a, _) = keypair(rng, m);
            let (t, _) = m.torsion[rng.random_range(0..8)];
            let a_bytes = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
            let r = random_scalar(rng);
            let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
            let msg = random_message(rng);
            let sig = sign_with(&a, &a_bytes, &r, &r_bytes, &msg);
            let k = challenge(&r_bytes, &a_bytes, &msg);
            let strict = (t * k).is_identity();
            note += &format!("T = {}", hex::encode(t.compress().as_bytes()));
            (a_bytes, msg, sig, true, strict)
        }
        Family::MixedOrderR => {
            // R' = rB + T, S = r + k·a (k over R' bytes): residual −T.
            // Strict: [S]B − [k]A = rB ≠ R' unless T is the identity.
            let (a, a_bytes) = keypair(rng, m);
            let (t, _) = m.torsion[rng.random_range(0..8)];
            let r = random_scalar(rng);
            let r_bytes = (EdwardsPoint::mul_base(&r) + t).compress().to_bytes();
            let msg = random_message(rng);
            note += &format!("T = {}", hex::encode(t.compress().as_bytes()));
            (a_bytes, msg.clone(), sign_with(&a, &a_bytes, &r, &r_bytes, &msg), true, t.is_identity())
        }
        Family::NonCanonicalA => {
            // A non-canonical: R = [s]B, S = s. Valid iff A is of small order.
            let a_bytes = m.non_canonical[rng.random_range(0..m.non_canonical.len())];
            let small = m.non_canonical_small.contains(&a_bytes);
            let s = random_scalar(rng);
            let r_bytes = EdwardsPoint::mul_base(&s).compress().to_bytes();
            let msg = random_message(rng);
            note += &format!("A = {} (small order: {small})", hex::encode(a_bytes));
            (a_bytes, msg, signature(&r_bytes, &s), small, false)
        }
        Family::NonCanonicalR => {
            let msg = random_message(rng);
            if rng.random_bool(0.2) {
                // Both non-canonical and of small order, S = 0: residual −R − [k]A, killed by [8].
                let pick =
                    |rng: &mut ChaCha20Rng| m.non_canonical_small[rng.random_range(0..m.non_canonical_small.len())];
                let a_bytes = pick(rng);
                let r_bytes = pick(rng);
                note += &format!("A = {}, R = {}, S = 0", hex::encode(a_bytes), hex::encode(r_bytes));
                (a_bytes, msg, signature(&r_bytes, &Scalar::ZERO), true, false)
            } else {
                // R non-canonical, S = k·a: residual −R. Valid iff R is of small order.
                let (a, a_bytes) = keypair(rng, m);
                let r_bytes = m.non_canonical[rng.random_range(0..m.non_canonical.len())];
                let small = m.non_canonical_small.contains(&r_bytes);
                note += &format!("R = {} (small order: {small})", hex::encode(r_bytes));
                if small && rng.random_bool(0.25) {
                    // k over R's canonical re-encoding instead of the bytes
                    // as given: residual [k' − k]aB − R, invalid.
                    let canonical = CompressedEdwardsY(r_bytes).decompress().unwrap().compress().to_bytes();
                    let k = challenge(&canonical, &a_bytes, &msg);
                    note += ", k over the canonical encoding";
                    (a_bytes, msg, signature(&r_bytes, &(k * a)), false, false)
                } else {
                    let k = challenge(&r_bytes, &a_bytes, &msg);
                    (a_bytes, msg, signature(&r_bytes, &(k * a)), small, false)
                }
            }
        }
        Family::NonDecodableA => {
            let (_, msg, sig) = {
                let few = rng.random_bool(0.5);
                fresh(rng, m, few)
            };
            (non_decodable(rng), msg, sig, false, false)
        }
        Family::NonDecodableR => {
            let (pk, msg, mut sig) = {
                let few = rng.random_bool(0.5);
                fresh(rng, m, few)
            };
            sig[..32].copy_from_slice(&non_decodable(rng));
            (pk, msg, sig, false, false)
        }
    };
    if corrupt && family.possible_zip215().0 {
        let s = Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()).expect("canonical S");
        sig[32..].copy_from_slice((s + Scalar::ONE).as_bytes());
        note += "; S + 1";
        want_zip215 = false;
        want_strict = false;
    }
    Sig { family, public_key, message, signature: sig, want_zip215, want_strict, note }
}

fn generate_all(n: usize, seed: u64) -> Vec<Sig> {
    let material = Material::new(seed);
    let total_weight: u32 = Family::ALL.iter().map(|(_, w)| w).sum();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let families: Vec<Family> = (0..n)
        .map(|_| {
            let mut x = rng.random_range(0..total_weight);
            for (f, w) in Family::ALL {
                if x < w {
                    return f;
                }
                x -= w;
            }
            unreachable!()
        })
        .collect();
    families.par_iter().enumerate().map(|(i, &f)| generate(i, seed ^ 0x9e37_79b9_7f4a_7c15, &material, f)).collect()
}

/// Batches (lists of indices into the signatures) of varied sizes and shares
/// of invalid signatures, covering every signature at least once.
fn mixed_batches(rng: &mut impl Rng, valid: &[bool]) -> Vec<Vec<usize>> {
    let mut good: Vec<usize> = (0..valid.len()).filter(|&i| valid[i]).collect();
    let mut bad: Vec<usize> = (0..valid.len()).filter(|&i| !valid[i]).collect();
    good.shuffle(rng);
    bad.shuffle(rng);
    let mut batches = Vec::new();
    while !good.is_empty() || !bad.is_empty() {
        let size = match rng.random_range(0..10) {
            0..=1 => rng.random_range(1..=8),
            2..=5 => rng.random_range(9..=128),
            _ => rng.random_range(129..=600),
        };
        // Share of invalid signatures: none, exactly one, a few, half, most, all.
        let n_bad = match rng.random_range(0..6) {
            0 => 0,
            1 => 1.min(size),
            2 => (size / 50).max(1),
            3 => size / 2,
            4 => size * 9 / 10,
            _ => size,
        };
        let n_bad = n_bad.min(bad.len());
        let n_good = (size - n_bad).min(good.len());
        let mut batch: Vec<usize> = bad.split_off(bad.len() - n_bad);
        batch.extend(good.split_off(good.len() - n_good));
        if batch.is_empty() {
            // One pool ran dry: take from the other.
            let pool = if good.is_empty() { &mut bad } else { &mut good };
            let take = size.min(pool.len());
            batch.extend(pool.split_off(pool.len() - take));
        }
        // Now and then the same signature twice in one batch.
        if batch.len() > 1 && rng.random_bool(0.05) {
            let dup = batch[rng.random_range(0..batch.len())];
            batch.push(dup);
        }
        batch.shuffle(rng);
        batches.push(batch);
    }
    batches
}

/// Uniformly shuffled signatures cut into batches of random sizes 1..=600.
fn shuffled_batches(rng: &mut impl Rng, n: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut batches = Vec::new();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let size = rng.random_range(1..=600usize).min(rest.len());
        batches.push(rest[..size].to_vec());
        rest = &rest[size..];
    }
    batches
}

/// Runs each batch through `verify_zip215_batch` (batches in parallel) and
/// returns the mismatches with the single verdicts as (batch, index, got).
fn run_batches(sigs: &[Sig], single: &[bool], batches: &[Vec<usize>]) -> Vec<(usize, usize, bool)> {
    batches
        .par_iter()
        .enumerate()
        .flat_map_iter(|(b, batch)| {
            let items: Vec<SigItem<'_>> = batch.iter().map(|&i| sigs[i].item()).collect();
            // Start from the wrong answers, so an unwritten verdict shows.
            let mut out: Vec<bool> = batch.iter().map(|&i| !single[i]).collect();
            verify_zip215_batch(&items, &mut out);
            batch
                .iter()
                .zip(out)
                .filter(|&(&i, got)| got != single[i])
                .map(move |(&i, got)| (b, i, got))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn report_mismatches(what: &str, sigs: &[Sig], single: &[bool], batches: &[Vec<usize>], bad: &[(usize, usize, bool)]) {
    if bad.is_empty() {
        return;
    }
    let mut msg = format!("{what}: {} batch verdicts differ from single verification:\n", bad.len());
    for &(b, i, got) in bad.iter().take(20) {
        msg += &format!(
            "  batch #{b} (size {}), sig #{i}: batch {got}, single {}\n    {}\n",
            batches[b].len(),
            single[i],
            sigs[i].dump()
        );
    }
    if let Some(&(b, _, _)) = bad.first() {
        msg += &format!("  first failing batch's members: {:?}\n", batches[b]);
    }
    panic!("{msg}");
}

#[test]
fn zip215_batch_verdicts_equal_single_verdicts() {
    let n: usize = env_or("VIGIL_DIFF_SIGS", DEFAULT_SIGS);
    let seed: u64 = env_or("VIGIL_DIFF_SEED", DEFAULT_SEED);
    println!("batch_equals_single: {n} signatures, seed {seed:#x} (VIGIL_DIFF_SIGS, VIGIL_DIFF_SEED)");
    let started = Instant::now();
    let lap = |what: &str| println!("  {:>7.2} s  {what}", started.elapsed().as_secs_f64());

    let sigs = generate_all(n, seed);
    lap("generated");

    let verdicts: Vec<(bool, bool)> = sigs
        .par_iter()
        .with_min_len(64)
        .map(|s| {
            (
                verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature),
                verify(RuleSet::Strict, &s.public_key, &s.message, &s.signature),
            )
        })
        .collect();
    let zip215: Vec<bool> = verdicts.iter().map(|v| v.0).collect();
    let strict: Vec<bool> = verdicts.iter().map(|v| v.1).collect();
    lap("single verification, both rule sets");

    // Per-family table.
    let mut table: BTreeMap<Family, [usize; 4]> = Family::ALL.iter().map(|&(f, _)| (f, [0; 4])).collect();
    for (s, (&z, &st)) in sigs.iter().zip(zip215.iter().zip(&strict)) {
        let row = table.get_mut(&s.family).unwrap();
        row[usize::from(!z)] += 1;
        row[2 + usize::from(!st)] += 1;
    }
    println!("  {:<16} {:>7} {:>7} {:>7} {:>7}", "family", "zip ok", "zip bad", "str ok", "str bad");
    for (f, [zv, zi, sv, si]) in &table {
        println!("  {:<16} {zv:>7} {zi:>7} {sv:>7} {si:>7}", format!("{f:?}"));
    }
    let total_valid = zip215.iter().filter(|&&v| v).count();
    println!("  total: {total_valid} zip215-valid, {} invalid", n - total_valid);

    // The signatures are what they were built to be (this also checks the
    // single verifiers against the construction).
    let wrong: Vec<String> = sigs
        .iter()
        .zip(zip215.iter().zip(&strict))
        .filter(|(s, (z, st))| **z != s.want_zip215 || **st != s.want_strict)
        .take(20)
        .map(|(s, (z, st))| {
            format!("  zip215 {z} (built {}), strict {st} (built {}): {}", s.want_zip215, s.want_strict, s.dump())
        })
        .collect();
    assert!(wrong.is_empty(), "single verdicts differ from the construction:\n{}", wrong.join("\n"));

    // Not vacuous: every family appears many times (at least half its
    // expected share), with each zip215 verdict it can have (at least a
    // twentieth of its expected share each; the rarest, NonCanonicalA's
    // valid ones, are about a sixth). Skipped for tiny runs.
    let total_weight: u32 = Family::ALL.iter().map(|(_, w)| w).sum();
    for (f, w) in Family::ALL {
        let [zv, zi, sv, si] = table[&f];
        let expected = n * w as usize / total_weight as usize;
        if expected < 200 {
            continue;
        }
        assert!(zv + zi >= expected / 2, "{f:?}: only {} signatures", zv + zi);
        let (can_valid, can_invalid) = f.possible_zip215();
        if can_valid {
            assert!(zv >= expected / 20, "{f:?}: only {zv} zip215-valid signatures");
        }
        if can_invalid {
            assert!(zi >= expected / 20, "{f:?}: only {zi} zip215-invalid signatures");
        }
        if f == Family::MixedOrderA {
            // Strict-valid exactly when [k]T = 0: both occur.
            assert!(sv >= expected / 20 && si >= expected / 20, "MixedOrderA strict: {sv} valid, {si} invalid");
        }
    }

    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x0ba7_c4e5);
    // Batches with controlled shares of invalid signatures.
    let batches = mixed_batches(&mut rng, &zip215);
    let bad = run_batches(&sigs, &zip215, &batches);
    report_mismatches("mixed batches", &sigs, &zip215, &batches, &bad);
    lap(&format!("verify_zip215_batch, {} mixed batches", batches.len()));

    // Uniformly shuffled, random sizes.
    let batches = shuffled_batches(&mut rng, n);
    let bad = run_batches(&sigs, &zip215, &batches);
    report_mismatches("shuffled batches", &sigs, &zip215, &batches, &bad);
    lap(&format!("verify_zip215_batch, {} shuffled batches", batches.len()));

    // verify_many over all signatures in a shuffled order, with a few batch
    // sizes (1 and 3: every sub-batch goes to the single fallback).
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let items: Vec<SigItem<'_>> = order.iter().map(|&i| sigs[i].item()).collect();
    let want_zip: Vec<bool> = order.iter().map(|&i| zip215[i]).collect();
    let want_strict: Vec<bool> = order.iter().map(|&i| strict[i]).collect();
    for batch in [1usize, 3, 5, 64, 600] {
        let mut out: Vec<bool> = want_zip.iter().map(|v| !v).collect();
        verify_many(RuleSet::Zip215, &items, &mut out, batch);
        let diff: Vec<usize> = (0..n).filter(|&j| out[j] != want_zip[j]).collect();
        assert!(
            diff.is_empty(),
            "verify_many(zip215, batch {batch}): {} verdicts differ from single, e.g.\n  {}",
            diff.len(),
            diff.iter().take(10).map(|&j| sigs[order[j]].dump()).collect::<Vec<_>>().join("\n  ")
        );
        lap(&format!("verify_many(zip215, batch {batch})"));
    }
    for batch in [1usize, 100] {
        let mut out: Vec<bool> = want_strict.iter().map(|v| !v).collect();
        verify_many(RuleSet::Strict, &items, &mut out, batch);
        let diff: Vec<usize> = (0..n).filter(|&j| out[j] != want_strict[j]).collect();
        assert!(
            diff.is_empty(),
            "verify_many(strict, batch {batch}): {} verdicts differ from single, e.g.\n  {}",
            diff.len(),
            diff.iter().take(10).map(|&j| sigs[order[j]].dump()).collect::<Vec<_>>().join("\n  ")
        );
        lap(&format!("verify_many(strict, batch {batch})"));
    }
}

/// 200 valid signatures of all the constructive families, and one invalid
/// signature moved through every 7th position: exactly that one is named.
#[test]
fn one_invalid_signature_in_every_position_is_named() {
    let seed = DEFAULT_SEED ^ 1;
    let sigs = generate_all(3000, seed);
    let valid: Vec<&Sig> = sigs.iter().filter(|s| s.want_zip215).take(200).collect();
    let invalid: Vec<&Sig> = sigs
        .iter()
        .filter(|s| !s.want_zip215 && matches!(s.family, Family::FlipS | Family::MixedOrderA | Family::SmallOrderR))
        .take(8)
        .collect();
    assert_eq!(valid.len(), 200);
    assert!(!invalid.is_empty());
    for bad in invalid {
        assert!(!verify(RuleSet::Zip215, &bad.public_key, &bad.message, &bad.signature));
        for pos in (0..=valid.len()).step_by(7) {
            let mut batch: Vec<&Sig> = valid.clone();
            batch.insert(pos, bad);
            let items: Vec<SigItem<'_>> = batch.iter().map(|s| s.item()).collect();
            let mut out = vec![false; items.len()];
            verify_zip215_batch(&items, &mut out);
            for (j, &ok) in out.iter().enumerate() {
                assert_eq!(ok, j != pos, "position {pos}, member {j}: {}", batch[j].dump());
            }
        }
    }
}

/// Invalid signatures whose errors cancel in an unweighted (or
/// small-weighted) sum: S_1 = s_1 + δ and S_2 = s_2 − c·δ (c in 1..=16), and
/// triples δ_1, δ_2, −(δ_1 + δ_2), hidden among valid ones. A batch
/// equation without unpredictable, independent coefficients would accept
/// them; each must still be named invalid.
#[test]
fn invalid_signatures_whose_errors_cancel_are_still_caught() {
    let sigs = generate_all(2000, DEFAULT_SEED ^ 2);
    let valid: Vec<&Sig> = sigs.iter().filter(|s| s.want_zip215).collect();
    assert!(valid.len() > 500);
    let mut rng = ChaCha20Rng::seed_from_u64(DEFAULT_SEED ^ 3);
    let shift = |sig: &Sig, by: Scalar| {
        let mut s = sig.clone();
        let old = Scalar::from_canonical_bytes(s.signature[32..].try_into().unwrap()).expect("canonical S");
        s.signature[32..].copy_from_slice((old + by).as_bytes());
        s
    };
    for round in 0..300 {
        let delta = random_scalar(&mut rng);
        let bases: Vec<&Sig> = (0..3).map(|_| valid[rng.random_range(0..valid.len())]).collect();
        let invalid: Vec<Sig> = if round % 3 == 2 {
            let delta2 = random_scalar(&mut rng);
            vec![shift(bases[0], delta), shift(bases[1], delta2), shift(bases[2], -(delta + delta2))]
        } else {
            let c = Scalar::from(rng.random_range(1u64..=16));
            vec![shift(bases[0], delta), shift(bases[1], -(c * delta))]
        };
        let mut batch: Vec<(Sig, bool)> = invalid.into_iter().map(|s| (s, false)).collect();
        for _ in 0..rng.random_range(2..=12) {
            batch.push(((*valid[rng.random_range(0..valid.len())]).clone(), true));
        }
        batch.shuffle(&mut rng);
        let items: Vec<SigItem<'_>> = batch.iter().map(|(s, _)| s.item()).collect();
        let mut out: Vec<bool> = batch.iter().map(|(_, want)| !want).collect();
        verify_zip215_batch(&items, &mut out);
        for ((s, want), got) in batch.iter().zip(&out) {
            assert_eq!(verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature), *want, "{}", s.dump());
            assert_eq!(got, want, "round {round}: {}", s.dump());
        }
    }
}
