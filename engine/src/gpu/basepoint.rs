//! The table of multiples of the ed25519 base point B that the GPU reads for
//! `[S]B` (`shaders/ed25519.wgsl`, `btable`): for each window j < 32 and
//! each m in 0..=128, the point `[m · 256^j]B` in the form the shader's
//! mixed addition takes, `(y − x, y + x, 2d·x·y)` with Z = 1, each
//! coordinate a canonical 32-byte little-endian encoding. With S written in
//! signed radix-256 digits (each in −128..128), `[S]B` is 32 table additions
//! and no doublings.
//!
//! The points come from curve25519-dalek (its `compress` gives y and the sign
//! of x); x is recovered as the square root of (y² − 1)/(d y² + 1) with
//! fiat-crypto's verified field arithmetic. Built once per process (about
//! 4,000 points, tens of milliseconds).

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use fiat_crypto::curve25519_64 as fiat;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Windows of 8 bits: S < 2^253 needs 32.
pub const WINDOWS: usize = 32;
/// Multiples 0..=128 per window.
pub const PER_WINDOW: usize = 129;
/// Three coordinates of 32 bytes.
pub const ENTRY_BYTES: usize = 96;

/// The table, `WINDOWS * PER_WINDOW` entries of `ENTRY_BYTES`, window-major.
pub fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Vec<u8> {
    let d = Fe::d();
    let two_d = d.add(&d);
    // [256^j]B for each window.
    let mut bases = Vec::with_capacity(WINDOWS);
    let mut radix = Scalar::ONE;
    for _ in 0..WINDOWS {
        bases.push(ED25519_BASEPOINT_POINT * radix);
        radix *= Scalar::from(256u64);
    }
    let windows: Vec<Vec<u8>> = bases
        .par_iter()
        .map(|base| {
            let mut points = Vec::with_capacity(PER_WINDOW);
            let mut p = EdwardsPoint::identity();
            for _ in 0..PER_WINDOW {
                points.push(p);
                p += base;
            }
            let mut out = Vec::with_capacity(PER_WINDOW * ENTRY_BYTES);
            for c in EdwardsPoint::compress_batch_alloc(&points) {
                let (x, y) = affine(&c.to_bytes(), &d);
                out.extend_from_slice(&y.sub(&x).to_bytes());
                out.extend_from_slice(&y.add(&x).to_bytes());
                out.extend_from_slice(&two_d.mul(&x).mul(&y).to_bytes());
            }
            out
        })
        .collect();
    windows.concat()
}

/// The affine (x, y) of a canonical point encoding (bit 255: the sign of x).
fn affine(encoding: &[u8; 32], d: &Fe) -> (Fe, Fe) {
    let mut y_bytes = *encoding;
    y_bytes[31] &= 0x7f;
    let y = Fe::from_bytes(&y_bytes);
    let yy = y.square();
    let u = yy.sub(&Fe::ONE);
    let v = d.mul(&yy).add(&Fe::ONE);
    let mut x = sqrt_ratio(&u, &v).expect("a point's y has an x");
    if (x.to_bytes()[0] & 1) != (encoding[31] >> 7) {
        x = Fe::ZERO.sub(&x);
    }
    (x, y)
}

/// A root of u/v when there is one: β = u v³ (u v⁷)^((p−5)/8), times √−1
/// when v β² = −u.
fn sqrt_ratio(u: &Fe, v: &Fe) -> Option<Fe> {
    let v3 = v.square().mul(v);
    let v7 = v3.square().mul(v);
    let beta = u.mul(&v3).mul(&u.mul(&v7).pow(&P_MINUS_5_OVER_8));
    let check = v.mul(&beta.square());
    if check == *u {
        Some(beta)
    } else if check == Fe::ZERO.sub(u) {
        Some(beta.mul(&Fe::from_u64(2).pow(&P_MINUS_1_OVER_4)))
    } else {
        None
    }
}

/// Exponents, little-endian: 2^252 − 3, 2^253 − 5, 2^255 − 21 (= p − 2).
const P_MINUS_5_OVER_8: [u8; 32] = exponent(0xfd, 0x0f);
const P_MINUS_1_OVER_4: [u8; 32] = exponent(0xfb, 0x1f);
const P_MINUS_2: [u8; 32] = exponent(0xeb, 0x7f);

const fn exponent(low: u8, high: u8) -> [u8; 32] {
    let mut e = [0xffu8; 32];
    e[0] = low;
    e[31] = high;
    e
}

/// An element of GF(2^255 − 19) over fiat-crypto's tight representation.
#[derive(Clone, Copy)]
struct Fe(fiat::fiat_25519_tight_field_element);

impl PartialEq for Fe {
    fn eq(&self, other: &Fe) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Fe {
    const ZERO: Fe = Fe(fiat::fiat_25519_tight_field_element([0; 5]));
    const ONE: Fe = Fe(fiat::fiat_25519_tight_field_element([1, 0, 0, 0, 0]));

    fn from_u64(n: u64) -> Fe {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_le_bytes());
        Fe::from_bytes(&b)
    }

    /// d = −121665 / 121666.
    fn d() -> Fe {
        Fe::ZERO.sub(&Fe::from_u64(121_665)).mul(&Fe::from_u64(121_666).pow(&P_MINUS_2))
    }

    fn from_bytes(b: &[u8; 32]) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_from_bytes(&mut out, b);
        Fe(out)
    }

    /// The canonical encoding.
    fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        fiat::fiat_25519_to_bytes(&mut out, &self.0);
        out
    }

    fn loose(&self) -> fiat::fiat_25519_loose_field_element {
        let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_relax(&mut out, &self.0);
        out
    }

    fn carry(loose: &fiat::fiat_25519_loose_field_element) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_carry(&mut out, loose);
        Fe(out)
    }

    fn add(&self, other: &Fe) -> Fe {
        let mut sum = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_add(&mut sum, &self.0, &other.0);
        Fe::carry(&sum)
    }

    fn sub(&self, other: &Fe) -> Fe {
        let mut diff = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_sub(&mut diff, &self.0, &other.0);
        Fe::carry(&diff)
    }

    fn mul(&self, other: &Fe) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_carry_mul(&mut out, &self.loose(), &other.loose());
        Fe(out)
    }

    fn square(&self) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_carry_square(&mut out, &self.loose());
        Fe(out)
    }

    /// self^e, e little-endian, by square-and-multiply from the top bit.
    fn pow(&self, e: &[u8; 32]) -> Fe {
        let mut r = Fe::ONE;
        for bit in (0..256).rev() {
            r = r.square();
            if (e[bit / 8] >> (bit % 8)) & 1 == 1 {
                r = r.mul(self);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    fn entry(j: usize, m: usize) -> [Fe; 3] {
        let at = (j * PER_WINDOW + m) * ENTRY_BYTES;
        let t = table();
        let fe = |k: usize| Fe::from_bytes(t[at + 32 * k..at + 32 * k + 32].try_into().unwrap());
        [fe(0), fe(1), fe(2)]
    }

    #[test]
    fn d_is_rfc_8032s() {
        assert_eq!(hex::encode(Fe::d().to_bytes()), "a3785913ca4deb75abd841414d0a700098e879777940c78c73fe6f2bee6c0352");
    }

    /// Every entry, turned back into (x, y), is on the curve, carries the
    /// right 2dxy, and compresses to curve25519-dalek's `[m 256^j]B`.
    #[test]
    fn every_entry_is_the_multiple_dalek_computes() {
        assert_eq!(table().len(), WINDOWS * PER_WINDOW * ENTRY_BYTES);
        let d = Fe::d();
        let half = Fe::from_u64(2).pow(&P_MINUS_2);
        let mut radix = Scalar::ONE;
        for j in 0..WINDOWS {
            for m in 0..PER_WINDOW {
                let [ymx, ypx, t2d] = entry(j, m);
                let y = ypx.add(&ymx).mul(&half);
                let x = ypx.sub(&ymx).mul(&half);
                let (xx, yy) = (x.square(), y.square());
                // −x² + y² = 1 + d x² y²
                assert!(yy.sub(&xx) == Fe::ONE.add(&d.mul(&xx).mul(&yy)), "window {j}, m {m}: not on the curve");
                assert!(t2d == d.add(&d).mul(&x).mul(&y), "window {j}, m {m}: 2dxy");
                let mut enc = y.to_bytes();
                enc[31] |= (x.to_bytes()[0] & 1) << 7;
                let want = EdwardsPoint::mul_base(&(radix * Scalar::from(m as u64))).compress();
                assert_eq!(CompressedEdwardsY(enc), want, "window {j}, m {m}");
            }
            radix *= Scalar::from(256u64);
        }
    }
}
