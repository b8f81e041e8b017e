#![doc = include_str!("LANES.md")]

mod curve;
mod field;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // Only the IFMA lanes use it.
mod field52;
mod lane_field;
mod vec64;

use super::{RuleSet, SigItem};
use curve::{Cached, Ext, Niels, decompress, double};
use field::Fe;
#[cfg(target_arch = "x86_64")]
use field52::Fe52;
use lane_field::{LaneField, array};
use std::sync::OnceLock;
use vec64::{Emu, Vec64};

/// A lane implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lanes {
    /// Eight lanes of AVX-512 IFMA (radix 2^51, `vpmadd52luq`/`vpmadd52huq`).
    Avx512Ifma,
    /// Four lanes of AVX2 (radix 2^25.5, `vpmuludq`).
    Avx2,
    /// The same arithmetic on plain integers, checking every bound it
    /// relies on: for tests, and for CPUs without SIMD.
    Portable,
}

impl Lanes {
    /// Every implementation, fastest first.
    pub const ALL: [Lanes; 3] = [Lanes::Avx512Ifma, Lanes::Avx2, Lanes::Portable];

    /// The name `--lanes` and reports use (`avx512ifma`, `avx2`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            Lanes::Avx512Ifma => "avx512ifma",
            Lanes::Avx2 => "avx2",
            Lanes::Portable => "portable",
        }
    }

    /// Signatures per step.
    pub fn width(self) -> usize {
        match self {
            Lanes::Avx512Ifma => 8,
            Lanes::Avx2 => 4,
            Lanes::Portable => 4,
        }
    }

    /// Whether this CPU runs it.
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx512Ifma => {
                std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Lanes::Avx512Ifma => false,
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
    static PORTABLE: OnceLock<Vec<u64>> = OnceLock::new();
    match lanes {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `verify_lanes` checked `supported()`.
        Lanes::Avx512Ifma => unsafe { run_ifma(rules, input) },
        #[cfg(not(target_arch = "x86_64"))]
        Lanes::Avx512Ifma => unreachable!("not supported"),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `verify_lanes` checked `supported()`.
        Lanes::Avx2 => unsafe { run_avx2(rules, input) },
        #[cfg(not(target_arch = "x86_64"))]
        Lanes::Avx2 => unreachable!("not supported"),
        Lanes::Portable => {
            verify_group::<Fe<Emu<4>>>(rules, input, PORTABLE.get_or_init(build_basepoint_table::<Fe<Emu<4>>>))
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2(rules: RuleSet, input: &[Prepared]) -> [bool; MAX_LANES] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    type F = Fe<vec64::Avx2>;
    verify_group::<F>(rules, input, TABLE.get_or_init(build_basepoint_table::<F>))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512ifma")]
fn run_ifma(rules: RuleSet, input: &[Prepared]) -> [bool; MAX_LANES] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    type F = Fe52<vec64::Avx512Ifma>;
    verify_group::<F>(rules, input, TABLE.get_or_init(build_basepoint_table::<F>))
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

/// [d]B for d in −8..=8 as affine Niels points in `F`'s words: entry 8 + d
/// is three elements of `F::WORDS` words.
fn build_basepoint_table<F: LaneField>() -> Vec<u64> {
    use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT as B, scalar::Scalar};
    let w = F::WORDS;
    let mut table = vec![0u64; 17 * 3 * w];
    // The encodings of [j]B, decompressed by the (portable) lane code.
    let encs: Vec<[u8; 32]> = (0..=8u64).map(|j| (B * Scalar::from(j)).compress().to_bytes()).collect();
    for chunk in encs.chunks(4).enumerate() {
        let (c, encs) = chunk;
        let sign =
            Emu::<4>(std::array::from_fn(|j| if encs.get(j).is_some_and(|e| e[31] >> 7 == 1) { u64::MAX } else { 0 }));
        let (p, ok) = decompress::<Fe<Emu<4>>>(encs, sign);
        let d2 = Fe::<Emu<4>>::constant(&curve::D2);
        let coords = [
            p.y.add(&p.x).to_bytes(),
            p.y.sub(&p.x).to_bytes(),
            p.t.mul(&d2).to_bytes(),
            p.t.mul(&d2).neg().to_bytes(),
        ];
        for j in 0..encs.len() {
            assert_eq!(ok.0[j], u64::MAX, "[j]B decodes");
            let d = c * 4 + j;
            let [ypx, ymx, xy2d, minus_xy2d] = coords.each_ref().map(|c| F::constant(&c[j]));
            for (entry, elems) in [(8 + d, [ypx, ymx, xy2d]), (8 - d, [ymx, ypx, minus_xy2d])] {
                for (k, e) in elems.iter().enumerate() {
                    // Lane 0 only: a table of single elements.
                    let mut words = vec![0u64; w * F::V::N];
                    e.store(&mut words, 0, F::V::N);
                    for i in 0..w {
                        table[(entry * 3 + k) * w + i] = words[i * F::V::N];
                    }
                }
            }
        }
    }
    table
}

/// The verdicts of `input.len() == F::V::N` prepared signatures.
#[inline(always)]
fn verify_group<F: LaneField>(rules: RuleSet, input: &[Prepared], b_table: &[u64]) -> [bool; MAX_LANES] {
    let n = F::V::N;
    let w = F::WORDS;
    debug_assert_eq!(input.len(), n);
    let mask_of = |f: &dyn Fn(&Prepared) -> bool| {
        let m: [u64; MAX_LANES] = std::array::from_fn(|j| if j < n && f(&input[j]) { u64::MAX } else { 0 });
        F::V::from_slice(&m[..n])
    };
    let bytes = |f: &dyn Fn(&Prepared) -> [u8; 32]| -> [[u8; 32]; MAX_LANES] {
        std::array::from_fn(|j| if j < n { f(&input[j]) } else { [0; 32] })
    };

    // A, and the table of [d](−A) for d in −8..=8: entry 8 + d holds [−d]A,
    // four elements, lane-interleaved (word i of lane j at i·n + j).
    let (a, a_ok) = decompress::<F>(&bytes(&|p| p.a)[..n], mask_of(&|p| p.a[31] >> 7 == 1));
    let mut multiples = [a; 8];
    let a_cached = a.cached();
    multiples[1] = a.double().ext();
    for j in 2..8 {
        multiples[j] = multiples[j - 1].add(&a_cached).ext();
    }
    let entry_words = 4 * w * n;
    let mut a_table = vec![0u64; 17 * entry_words];
    let mut store = |entry: usize, c: &Cached<F>| {
        for (k, e) in [c.ypx, c.ymx, c.z, c.t2d].iter().enumerate() {
            e.store(&mut a_table, entry * entry_words + k * w * n, n);
        }
    };
    store(8, &Cached::identity());
    for (j, m) in multiples.iter().enumerate() {
        let c = m.cached();
        store(8 - (j + 1), &c);
        store(8 + (j + 1), &c.neg());
    }
    let (r, r_ok) = decompress::<F>(&bytes(&|p| p.r)[..n], mask_of(&|p| p.r[31] >> 7 == 1));

    // R' = [S]B + [k](−A), four bits at a time from the top.
    let lane: [u64; MAX_LANES] = std::array::from_fn(|j| j as u64);
    let lane = F::V::from_slice(&lane[..n]);
    let mut q = Ext::<F>::identity();
    for i in (0..64).rev() {
        if i != 63 {
            // [16]Q: three doublings to projective, the fourth to extended.
            let (x, y, z) = q.double().projective();
            let (x, y, z) = double(&x, &y, &z).projective();
            let (x, y, z) = double(&x, &y, &z).projective();
            q = double(&x, &y, &z).ext();
        }
        let a_idx: [u64; MAX_LANES] =
            array!(0; MAX_LANES, |j| if j < n { (input[j].k[i] + 8) as u64 * entry_words as u64 } else { 0 });
        let base = F::V::from_slice(&a_idx[..n]).add(lane);
        // SAFETY: digits are in −8..=8, so every entry read is in the table.
        let (stride, t, step) = (n as u64, &a_table[..], F::V::splat((w * n) as u64));
        let entry = unsafe {
            Cached {
                ypx: F::gather(t, base, stride),
                ymx: F::gather(t, base.add(step), stride),
                z: F::gather(t, base.add(step).add(step), stride),
                t2d: F::gather(t, base.add(step).add(step).add(step), stride),
            }
        };
        q = q.add(&entry).ext();
        let b_idx: [u64; MAX_LANES] =
            array!(0; MAX_LANES, |j| if j < n { (input[j].s[i] + 8) as u64 * (3 * w) as u64 } else { 0 });
        let base = F::V::from_slice(&b_idx[..n]);
        // SAFETY: as above, for the basepoint table.
        let step = F::V::splat(w as u64);
        let entry = unsafe {
            Niels {
                ypx: F::gather(b_table, base, 1),
                ymx: F::gather(b_table, base.add(step), 1),
                xy2d: F::gather(b_table, base.add(step).add(step), 1),
            }
        };
        q = q.add_niels(&entry).ext();
    }

    let ok = match rules {
        // [8](R' − R) = 0.
        RuleSet::Zip215 => q.add(&r.cached().neg()).ext().mul_by_cofactor().is_identity(),
        // Neither A nor R of small order, and R' = R (R is affine).
        RuleSet::Strict => {
            let small_a = multiples[7].double().ext().is_identity();
            let small_r = r.mul_by_cofactor().is_identity();
            let same = q.x.equals(&r.x.mul(&q.z)).and(q.y.equals(&r.y.mul(&q.z)));
            same.and(small_a.or(small_r).eq(F::V::splat(0)))
        }
    };
    let mut verdict = [0u64; MAX_LANES];
    a_ok.and(r_ok).and(ok).to_array(&mut verdict[..n]);
    verdict.map(|v| v == u64::MAX)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests52;
