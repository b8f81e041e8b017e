//! ed25519 verification in SIMD lanes: one signature per 64-bit lane, every
//! step of the check (decompressing A and R, both scalar multiplications,
//! the final comparison) done for all lanes at once, and a verdict per lane:
//! no batch equation, so an invalid signature costs what a valid one does.
//! See `LANES.md` beside this file for the design.

mod curve;
mod field;
mod vec64;

use super::{RuleSet, SigItem};
use curve::{Cached, Ext, Niels, decompress, double};
use field::{Fe, limbs_from_bytes};
use std::sync::OnceLock;
use vec64::{Emu, Vec64};

/// A lane implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lanes {
    /// Four lanes of AVX2 (radix 2^25.5, `vpmuludq`).
    Avx2,
    /// The same arithmetic on plain integers, checking every bound it
    /// relies on: for tests, and for CPUs without SIMD.
    Portable,
}

impl Lanes {
    /// Every implementation, fastest first.
    pub const ALL: [Lanes; 2] = [Lanes::Avx2, Lanes::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Lanes::Avx2 => "avx2",
            Lanes::Portable => "portable",
        }
    }

    /// Signatures per step.
    pub fn width(self) -> usize {
        match self {
            Lanes::Avx2 => 4,
            Lanes::Portable => 4,
        }
    }

    /// Whether this CPU runs it.
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Lanes::Avx2 => false,
            Lanes::Portable => true,
        }
    }

    /// The fastest SIMD implementation this CPU runs, if any.
    pub fn best() -> Option<Lanes> {
        static BEST: OnceLock<Option<Lanes>> = OnceLock::new();
        *BEST.get_or_init(|| Lanes::ALL.into_iter().find(|l| *l != Lanes::Portable && l.supported()))
    }
}

impl std::fmt::Display for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The CPU lacks the instructions of a lane implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this CPU cannot run the {0} signature lanes")]
pub struct Unsupported(pub Lanes);

/// `out[i]` is item i's verdict under `rules`, exactly [`super::verify`]'s,
/// computed in `lanes`.
pub fn verify_lanes(lanes: Lanes, rules: RuleSet, items: &[SigItem<'_>], out: &mut [bool]) -> Result<(), Unsupported> {
    assert_eq!(items.len(), out.len());
    if !lanes.supported() {
        return Err(Unsupported(lanes));
    }
    out.fill(false);
    let prepared: Vec<(usize, Prepared)> =
        items.iter().enumerate().filter_map(|(i, it)| Prepared::new(rules, it).map(|p| (i, p))).collect();
    for group in prepared.chunks(lanes.width()) {
        let mut lane_input = [group[0].1; MAX_LANES];
        for (slot, (_, p)) in lane_input.iter_mut().zip(group) {
            *slot = *p;
        }
        let ok = run(lanes, rules, &lane_input[..lanes.width()]);
        for (j, (i, _)) in group.iter().enumerate() {
            out[*i] = ok[j];
        }
    }
    Ok(())
}

const MAX_LANES: usize = 8;

fn run(lanes: Lanes, rules: RuleSet, input: &[Prepared]) -> [bool; MAX_LANES] {
    match lanes {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `verify_lanes` checked `supported()`.
        Lanes::Avx2 => unsafe { run_avx2(rules, input) },
        #[cfg(not(target_arch = "x86_64"))]
        Lanes::Avx2 => unreachable!("not supported"),
        Lanes::Portable => verify_group::<Emu<4>>(rules, input),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2(rules: RuleSet, input: &[Prepared]) -> [bool; MAX_LANES] {
    verify_group::<vec64::Avx2>(rules, input)
}

/// What the lanes need of one signature, computed in scalar code: the
/// encodings of A and R, and k = H(R ‖ A ‖ M) and S as signed radix-16
/// digits.
#[derive(Clone, Copy)]
struct Prepared {
    a: [u8; 32],
    r: [u8; 32],
    k: [i8; 64],
    s: [i8; 64],
}

impl Prepared {
    /// None when the verdict is already false: S not canonical (both rule
    /// sets), or under strict an R encoding that no compression produces.
    fn new(rules: RuleSet, it: &SigItem<'_>) -> Option<Prepared> {
        let s = it.canonical_s()?;
        let r = it.r_bytes();
        if rules == RuleSet::Strict && !canonical_encoding(&r) {
            return None;
        }
        Some(Prepared { a: *it.public_key, r, k: radix16(&it.challenge().to_bytes()), s: radix16(&s.to_bytes()) })
    }
}

/// Whether `bytes` is the compression of the point it decodes to: y below p,
/// and no sign bit on x = 0 (y = ±1).
fn canonical_encoding(bytes: &[u8; 32]) -> bool {
    const P: [u8; 32] = {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        p
    };
    let mut y = *bytes;
    y[31] &= 0x7f;
    // y < p, comparing from the most significant byte.
    let below_p = y.iter().rev().zip(P.iter().rev()).find(|(a, b)| a != b).is_some_and(|(a, b)| a < b);
    let mut minus_one = P;
    minus_one[0] -= 1;
    let mut one = [0u8; 32];
    one[0] = 1;
    let x_is_zero = y == one || y == minus_one;
    below_p && !(bytes[31] >> 7 == 1 && x_is_zero)
}

/// Signed radix-16 digits d_i in [−8, 8) (the last in [−8, 8]) with
/// Σ d_i·16^i = the little-endian scalar `s` < 2^255.
fn radix16(s: &[u8; 32]) -> [i8; 64] {
    let mut d = [0i8; 64];
    for (i, &b) in s.iter().enumerate() {
        d[2 * i] = (b & 15) as i8;
        d[2 * i + 1] = (b >> 4) as i8;
    }
    for i in 0..63 {
        let carry = (d[i] + 8) >> 4;
        d[i] -= carry << 4;
        d[i + 1] += carry;
    }
    d
}

/// Words per table coordinate (ten limbs).
const LIMBS: usize = 10;

/// [d]B for d in −8..=8 as affine Niels points, entry 8 + d, each 3 × 10
/// canonical limbs.
fn basepoint_table() -> &'static [u64] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    TABLE.get_or_init(|| {
        use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT as B, scalar::Scalar};
        let mut table = vec![0u64; 17 * 3 * LIMBS];
        for j in 0..=8u64 {
            let enc = (B * Scalar::from(j)).compress().to_bytes();
            let lanes = [limbs_from_bytes(&enc)];
            let sign = Emu::<1>([if enc[31] >> 7 == 1 { u64::MAX } else { 0 }]);
            let (p, ok) = decompress::<Emu<1>>(&lanes, sign);
            assert_eq!(ok.0[0], u64::MAX, "[{j}]B decodes");
            let d2 = Fe::splat(&limbs_from_bytes(&curve::D2));
            let ypx = p.y.add(&p.x).canonical();
            let ymx = p.y.sub(&p.x).canonical();
            let xy2d = p.t.mul(&d2);
            for (entry, coords) in
                [(8 + j, [ypx, ymx, xy2d.canonical()]), (8 - j, [ymx, ypx, xy2d.neg().canonical()])]
            {
                for (c, fe) in coords.iter().enumerate() {
                    for l in 0..LIMBS {
                        table[(entry as usize * 3 + c) * LIMBS + l] = fe.0[l].0[0];
                    }
                }
            }
        }
        table
    })
}

/// Looks up `C` coordinates of each lane's table entry: lane j reads words
/// `base[j] + (c·10 + l)·stride`.
#[inline(always)]
fn lookup<V: Vec64, const C: usize>(table: &[u64], base: V, stride: u64) -> [Fe<V>; C] {
    std::array::from_fn(|c| {
        Fe(std::array::from_fn(|l| {
            let idx = base.add(V::splat((c * LIMBS + l) as u64 * stride));
            // SAFETY: the callers' bases are entry offsets of their tables
            // (digits in −8..=8), so every word read is inside the table.
            unsafe { V::gather(table, idx) }
        }))
    })
}

/// The verdicts of `input.len() == V::N` prepared signatures.
#[inline(always)]
fn verify_group<V: Vec64>(rules: RuleSet, input: &[Prepared]) -> [bool; MAX_LANES] {
    let n = V::N;
    debug_assert_eq!(input.len(), n);
    let mask_of = |f: &dyn Fn(&Prepared) -> bool| {
        let m: [u64; MAX_LANES] = std::array::from_fn(|j| if j < n && f(&input[j]) { u64::MAX } else { 0 });
        V::from_slice(&m[..n])
    };
    let limbs = |f: &dyn Fn(&Prepared) -> [u8; 32]| -> [[u64; 10]; MAX_LANES] {
        std::array::from_fn(|j| if j < n { limbs_from_bytes(&f(&input[j])) } else { [0; 10] })
    };

    // A, and the table of [d](−A) for d in −8..=8: entry 8 + d holds [−d]A.
    let (a, a_ok) = decompress::<V>(&limbs(&|p| p.a)[..n], mask_of(&|p| p.a[31] >> 7 == 1));
    let mut multiples = [a; 8];
    let a_cached = a.to_cached();
    multiples[1] = a.double().to_ext();
    for j in 2..8 {
        multiples[j] = multiples[j - 1].add(&a_cached).to_ext();
    }
    let mut a_table = vec![0u64; 17 * 4 * LIMBS * n];
    let mut store = |entry: usize, c: &Cached<V>| {
        for (k, fe) in [c.ypx, c.ymx, c.z, c.t2d].iter().enumerate() {
            for l in 0..LIMBS {
                let at = ((entry * 4 + k) * LIMBS + l) * n;
                fe.0[l].to_array(&mut a_table[at..at + n]);
            }
        }
    };
    store(8, &Cached::identity());
    for (j, m) in multiples.iter().enumerate() {
        let c = m.to_cached();
        store(8 - (j + 1), &c);
        store(8 + (j + 1), &c.neg());
    }
    let (r, r_ok) = decompress::<V>(&limbs(&|p| p.r)[..n], mask_of(&|p| p.r[31] >> 7 == 1));

    // R' = [S]B + [k](−A), four bits at a time from the top.
    let b_table = basepoint_table();
    let lane: [u64; MAX_LANES] = std::array::from_fn(|j| j as u64);
    let lane = V::from_slice(&lane[..n]);
    let mut q = Ext::<V>::identity();
    for w in (0..64).rev() {
        if w != 63 {
            // [16]Q: three doublings to projective, the fourth to extended.
            let (x, y, z) = q.double().to_projective();
            let (x, y, z) = double(&x, &y, &z).to_projective();
            let (x, y, z) = double(&x, &y, &z).to_projective();
            q = double(&x, &y, &z).to_ext();
        }
        let a_idx: [u64; MAX_LANES] =
            std::array::from_fn(|j| if j < n { (input[j].k[w] + 8) as u64 * (4 * LIMBS * n) as u64 } else { 0 });
        let [ypx, ymx, z, t2d] = lookup::<V, 4>(&a_table, V::from_slice(&a_idx[..n]).add(lane), n as u64);
        q = q.add(&Cached { ypx, ymx, z, t2d }).to_ext();
        let b_idx: [u64; MAX_LANES] =
            std::array::from_fn(|j| if j < n { (input[j].s[w] + 8) as u64 * (3 * LIMBS) as u64 } else { 0 });
        let [ypx, ymx, xy2d] = lookup::<V, 3>(b_table, V::from_slice(&b_idx[..n]), 1);
        q = q.add_niels(&Niels { ypx, ymx, xy2d }).to_ext();
    }

    let ok = match rules {
        // [8](R' − R) = 0.
        RuleSet::Zip215 => q.add(&r.to_cached().neg()).to_ext().mul_by_cofactor().is_identity(),
        // Neither A nor R of small order, and R' = R (R is affine).
        RuleSet::Strict => {
            let small_a = multiples[7].double().to_ext().is_identity();
            let small_r = r.mul_by_cofactor().is_identity();
            let same = q.x.equals(&r.x.mul(&q.z)).and(q.y.equals(&r.y.mul(&q.z)));
            let weak = small_a.or(small_r);
            same.and(weak.eq(V::splat(0)))
        }
    };
    let mut verdict = [0u64; MAX_LANES];
    a_ok.and(r_ok).and(ok).to_array(&mut verdict[..n]);
    verdict.map(|v| v == u64::MAX)
}

#[cfg(test)]
mod tests;
