//! Random and mutated ed25519 signatures in families (fresh, bit flips,
//! S + L, small- and mixed-order points, non-canonical and non-decodable
//! encodings), each built to a known verdict under zip215 and strict. Shared
//! by the batch-versus-single and GPU-versus-CPU differential tests.

use crate::sig::SigItem;
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

/// The seed the differential tests use unless told another.
pub const DEFAULT_SEED: u64 = 0x7669_6769_6c5f_6466; // "vigil_df"

/// The group order L, little-endian.
pub const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The field prime p = 2^255 − 19, little-endian.
pub const P: [u8; 32] = [
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

/// How a signature was made: fresh, or mutated in one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Signed by one of a few senders (keys reused across signatures).
    FreshFewSenders,
    /// Signed by a fresh key each time.
    FreshDistinct,
    /// One bit of R flipped.
    FlipR,
    /// One bit of S flipped.
    FlipS,
    /// One bit of the public key flipped.
    FlipA,
    /// One bit of the message flipped (or a byte added to an empty one).
    FlipMessage,
    /// S + L (same scalar mod L, non-canonical).
    SPlusL,
    /// S = L exactly.
    SEqualsL,
    /// Some of S's bits 253..=255 set.
    SHighBits,
    /// A is a torsion point (small order), S signs for it.
    SmallOrderA,
    /// R is a torsion point, S signs for it.
    SmallOrderR,
    /// A is a real key plus a torsion point.
    MixedOrderA,
    /// R is a real nonce point plus a torsion point.
    MixedOrderR,
    /// A in a non-canonical encoding that decodes.
    NonCanonicalA,
    /// R in a non-canonical encoding that decodes.
    NonCanonicalR,
    /// A is 32 bytes that decode to no point.
    NonDecodableA,
    /// R is 32 bytes that decode to no point.
    NonDecodableR,
}

impl Family {
    /// (family, weight per 1,130 signatures)
    pub const ALL: [(Family, u32); 17] = [
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
    pub fn possible_zip215(self) -> (bool, bool) {
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
pub struct Sig {
    /// How it was made.
    pub family: Family,
    /// The public key A, as given to the verifier.
    pub public_key: [u8; 32],
    /// The message.
    pub message: Vec<u8>,
    /// R ‖ S.
    pub signature: [u8; 64],
    /// The verdict it was built to have under zip215.
    pub want_zip215: bool,
    /// The verdict it was built to have under strict.
    pub want_strict: bool,
    /// How it was made, for failure messages.
    pub note: String,
}

impl Sig {
    /// It, borrowed as the verifiers take it.
    pub fn item(&self) -> SigItem<'_> {
        SigItem { public_key: &self.public_key, message: &self.message, signature: &self.signature }
    }

    /// Its family, how it was made and its bytes in hex, for failure
    /// messages.
    pub fn dump(&self) -> String {
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

/// A uniformly random scalar.
pub fn random_scalar(rng: &mut impl Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A random message: 32 bytes half the time, else 0 to 199.
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

/// R ‖ S as signature bytes.
pub fn signature(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// a + b, little-endian 256-bit (panics on overflow).
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

/// `n` signatures from `seed` (the same every time), families drawn by
/// their weights in [`Family::ALL`], each with the verdicts it was built to
/// have. Made across rayon workers.
pub fn generate_all(n: usize, seed: u64) -> Vec<Sig> {
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
