//! The lane arithmetic against references it does not share code with:
//! fiat-crypto's verified field arithmetic, curve25519-dalek's
//! decompression, and the single verifiers.

use super::field::{Fe, limbs_from_bytes};
use super::lane_field::LaneField;
use super::vec64::{Emu, Vec64};
use super::*;
use fiat_crypto::curve25519_64 as fiat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

type E = Emu<4>;

fn fiat_fe(b: &[u8; 32]) -> fiat::fiat_25519_tight_field_element {
    let mut b = *b;
    b[31] &= 0x7f;
    let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
    fiat::fiat_25519_from_bytes(&mut out, &b);
    out
}

fn fiat_bytes(f: &fiat::fiat_25519_tight_field_element) -> [u8; 32] {
    let mut out = [0u8; 32];
    fiat::fiat_25519_to_bytes(&mut out, f);
    out
}

fn loose(f: &fiat::fiat_25519_tight_field_element) -> fiat::fiat_25519_loose_field_element {
    let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
    fiat::fiat_25519_relax(&mut out, f);
    out
}

pub(super) fn fiat_op(op: &str, a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (fa, fb) = (fiat_fe(a), fiat_fe(b));
    let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
    let mut l = fiat::fiat_25519_loose_field_element([0; 5]);
    match op {
        "mul" => fiat::fiat_25519_carry_mul(&mut out, &loose(&fa), &loose(&fb)),
        "square" => fiat::fiat_25519_carry_square(&mut out, &loose(&fa)),
        "add" => {
            fiat::fiat_25519_add(&mut l, &fa, &fb);
            fiat::fiat_25519_carry(&mut out, &l)
        }
        "sub" => {
            fiat::fiat_25519_sub(&mut l, &fa, &fb);
            fiat::fiat_25519_carry(&mut out, &l)
        }
        _ => unreachable!(),
    }
    fiat_bytes(&out)
}

fn canonical_bytes(f: &Fe<E>) -> Vec<[u8; 32]> {
    f.to_bytes()
}

/// Random field encodings, with the extremes mixed in: 0, 1, p − 1, p,
/// 2^255 − 1 (non-canonical), and all-ones limbs.
pub(super) fn encodings(rng: &mut ChaCha20Rng, n: usize) -> Vec<[u8; 32]> {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut pm1 = p;
    pm1[0] = 0xec;
    let mut one = [0u8; 32];
    one[0] = 1;
    let special = [[0u8; 32], one, pm1, p, [0xff; 32]];
    (0..n)
        .map(|i| if i < special.len() * 3 && i % 3 == 0 { special[i / 3] } else { rng.random::<[u8; 32]>() })
        .collect()
}

/// Field elements at the largest limbs each kind of value may have:
/// reduced (limbs up to 2^26 + 2^17) and sums (twice that).
fn extreme(sum: bool) -> Fe<E> {
    let top = (1u64 << 26) + (1 << 17);
    let l = if sum { 2 * top } else { top };
    Fe::splat(&[l; 10])
}

#[test]
fn field_operations_equal_fiat_crypto() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let xs = encodings(&mut rng, 4000);
    let ys = encodings(&mut rng, 4000);
    for (xa, ya) in xs.chunks(4).zip(ys.chunks(4)) {
        let x = Fe::<E>::from_lanes(&xa.iter().map(limbs_from_bytes).collect::<Vec<_>>());
        let y = Fe::<E>::from_lanes(&ya.iter().map(limbs_from_bytes).collect::<Vec<_>>());
        // Reduced inputs, and sums (x + x) as inputs.
        let ops: [(&str, Fe<E>); 4] =
            [("mul", x.mul(&y)), ("square", x.square()), ("add", x.add(&y)), ("sub", x.sub(&y))];
        for (op, got) in ops {
            let got = canonical_bytes(&got);
            for j in 0..4 {
                assert_eq!(got[j], fiat_op(op, &xa[j], &ya[j]), "{op} lane {j}: {:?} {:?}", xa[j], ya[j]);
            }
        }
        let x2 = x.add(&x);
        let got = canonical_bytes(&x2.mul(&y.add(&y)));
        let got_sq = canonical_bytes(&x2.square());
        let got_sub = canonical_bytes(&x.sub(&y.add(&y)));
        for j in 0..4 {
            let x2f = fiat_op("add", &xa[j], &xa[j]);
            let y2f = fiat_op("add", &ya[j], &ya[j]);
            assert_eq!(got[j], fiat_op("mul", &x2f, &y2f), "mul of sums");
            assert_eq!(got_sq[j], fiat_op("square", &x2f, &x2f), "square of a sum");
            assert_eq!(got_sub[j], fiat_op("sub", &xa[j], &y2f), "sub of a sum");
        }
    }
}

#[test]
fn the_largest_limbs_stay_within_bounds_and_reduce_correctly() {
    // Emu panics on a mul32 operand of 2^32 or more and on 64-bit overflow.
    for (a, b) in [(false, false), (true, false), (false, true), (true, true)] {
        let (x, y) = (extreme(a), extreme(b));
        let want_bytes = |f: &Fe<E>| {
            // The same value through fiat: limbs to an integer mod p.
            let l = &f.lanes()[0];
            let mut acc = [0u8; 32];
            for (i, &limb) in l.iter().enumerate() {
                let mut unit = [0u8; 32];
                // limb · 2^POS[i] mod p, as fiat products of small pieces.
                let pos = [0, 26, 51, 77, 102, 128, 153, 179, 204, 230][i];
                unit[pos / 8] = 1 << (pos % 8);
                let mut lb = [0u8; 32];
                lb[..8].copy_from_slice(&limb.to_le_bytes());
                acc = fiat_op("add", &acc, &fiat_op("mul", &unit, &lb));
            }
            acc
        };
        let (wx, wy) = (want_bytes(&x), want_bytes(&y));
        assert_eq!(canonical_bytes(&x.mul(&y))[0], fiat_op("mul", &wx, &wy));
        assert_eq!(canonical_bytes(&x.square())[0], fiat_op("square", &wx, &wx));
        assert_eq!(canonical_bytes(&x.sub(&y))[0], fiat_op("sub", &wx, &wy));
        assert_eq!(canonical_bytes(&x)[0], wx);
    }
}

#[test]
fn decompression_equals_curve25519_dalek() {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut encs = encodings(&mut rng, 2000);
    // Valid points with either sign, and their non-canonical twins.
    for i in 0..200u64 {
        let p = curve25519_dalek::constants::ED25519_BASEPOINT_POINT * curve25519_dalek::scalar::Scalar::from(i);
        let e = p.compress().to_bytes();
        encs.push(e);
        let mut flipped = e;
        flipped[31] ^= 0x80;
        encs.push(flipped);
    }
    // y = p + 1 and p − 1 + p... (non-canonical ±1) with both signs.
    let mut p1 = [0xffu8; 32];
    p1[0] = 0xee;
    p1[31] = 0x7f;
    encs.extend([p1, {
        p1[31] |= 0x80;
        p1
    }]);
    while !encs.len().is_multiple_of(4) {
        encs.push([0; 32]);
    }
    let mut decoded = 0;
    for chunk in encs.chunks(4) {
        let sign = E::from_slice(&chunk.iter().map(|e| if e[31] >> 7 == 1 { u64::MAX } else { 0 }).collect::<Vec<_>>());
        let (p, ok) = curve::decompress::<Fe<E>>(chunk, sign);
        let z_inv = p.z.invert();
        let xs = canonical_bytes(&p.x.mul(&z_inv));
        let ys = canonical_bytes(&p.y.mul(&z_inv));
        let ts = canonical_bytes(&p.t.mul(&z_inv));
        let xys = canonical_bytes(&p.x.mul(&p.y).mul(&z_inv).mul(&z_inv));
        for j in 0..4 {
            let want = CompressedEdwardsY(chunk[j]).decompress();
            assert_eq!(ok.0[j] == u64::MAX, want.is_some(), "decodes: {:?}", chunk[j]);
            if let Some(w) = want {
                decoded += 1;
                let mut enc = ys[j];
                enc[31] |= (xs[j][0] & 1) << 7;
                assert_eq!(enc, w.compress().to_bytes(), "point of {:?}", chunk[j]);
                assert_eq!(ts[j], xys[j], "T = XY/Z");
            }
        }
    }
    assert!(decoded > 900, "{decoded}");
}

#[test]
fn radix16_digits_recompose_the_scalar() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for _ in 0..1000 {
        let mut s: [u8; 32] = rng.random();
        s[31] &= 0x1f;
        let d = radix16(&s);
        assert!(d[..63].iter().all(|&x| (-8..8).contains(&x)) && (-8..=8).contains(&d[63]), "{d:?}");
        let want = curve25519_dalek::scalar::Scalar::from_bytes_mod_order(s);
        let mut got = curve25519_dalek::scalar::Scalar::ZERO;
        for &digit in d.iter().rev() {
            got *= curve25519_dalek::scalar::Scalar::from(16u8);
            let m = curve25519_dalek::scalar::Scalar::from(digit.unsigned_abs());
            got = if digit < 0 { got - m } else { got + m };
        }
        assert_eq!(got, want);
    }
}

#[test]
fn canonical_encoding_is_what_compression_produces() {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut encs = encodings(&mut rng, 3000);
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    for e in [one, minus_one] {
        encs.push(e);
        let mut s = e;
        s[31] |= 0x80;
        encs.push(s);
    }
    for e in encs {
        if let Some(p) = CompressedEdwardsY(e).decompress() {
            assert_eq!(canonical_encoding(&e), p.compress().to_bytes() == e, "{e:?}");
        }
    }
}

#[test]
fn every_lane_implementation_matches_the_single_verifier_on_fresh_and_tampered_signatures() {
    use ed25519_dalek::{Signer, SigningKey};
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let keys: Vec<SigningKey> = (0..7).map(|_| SigningKey::from_bytes(&rng.random())).collect();
    let mut data = Vec::new();
    for i in 0..61 {
        let sk = &keys[i % keys.len()];
        let msg: Vec<u8> = (0..(i % 40)).map(|_| rng.random()).collect();
        let mut sig = sk.sign(&msg).to_bytes();
        let mut pk = sk.verifying_key().to_bytes();
        match i % 5 {
            1 => sig[rng.random_range(0..64)] ^= 1 << rng.random_range(0..8),
            2 => pk[rng.random_range(0..32)] ^= 1 << rng.random_range(0..8),
            _ => {}
        }
        data.push((pk, msg, sig));
    }
    let items: Vec<SigItem<'_>> =
        data.iter().map(|(pk, m, s)| SigItem { public_key: pk, message: m, signature: s }).collect();
    for rules in RuleSet::ALL {
        let want: Vec<bool> =
            items.iter().map(|it| super::super::verify(rules, it.public_key, it.message, it.signature)).collect();
        assert!(want.iter().filter(|&&v| v).count() > 30 && want.iter().any(|&v| !v));
        for lanes in Lanes::ALL {
            if !lanes.supported() {
                eprintln!("SKIPPING {lanes} lanes: this CPU cannot run them");
                continue;
            }
            let mut got = vec![false; items.len()];
            verify_lanes(lanes, rules, &items, &mut got).unwrap();
            assert_eq!(got, want, "{lanes} {rules}");
        }
    }
}
