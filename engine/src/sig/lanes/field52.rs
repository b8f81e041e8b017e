//! GF(2^255 − 19) in lanes for AVX-512 IFMA: one field element per lane,
//! five limbs in radix 2^51 (limb i holds bits 51·i..51·i + 51), each limb a
//! [`Vec52`] so that one `vpmadd52luq`/`vpmadd52huq` multiplies the same
//! limbs of every lane's element.
//!
//! Why radix 2^51 and not 2^52: the multiply-adds read only the low 52 bits
//! of each operand, so every limb that enters `mul` or `square` must be below
//! 2^52. A reduced value cannot have every limb below its radix (folding the
//! carry out of the top limb back in as 19·carry always leaves some limb a
//! little above it), so with radix 2^52 even reduced limbs could exceed 52
//! bits; radix 2^51 leaves one bit for that excess. It does not leave room
//! for the sum of two reduced values (up to 2^52 + 2^15), so `add` carries
//! once: its result is reduced too.
//!
//! Bounds (checked by [`super::vec64::Emu`] in the tests, argued here):
//! - *reduced* (what every operation returns, `add` included): every limb
//!   below 2^51 + 2^14 ([`carry`] takes any limbs below 2^60 there: the
//!   carries out of limbs 0..3 are below 2^9, and 19 times the carry out of
//!   limb 4 below 2^13.3). A *sum* in the sense of [`LaneField`] is a
//!   reduced value here, and `carry()` returns its input.
//! - `add`: limbs below 2^52 + 2^15, then [`carry`].
//! - `sub`: adds 2p first, whose limbs (2^52 − 38 and 2^52 − 2) exceed any
//!   reduced limb, so no limb goes below zero; the limbs stay below 2^53.
//! - `mul`/`square`: operands below 2^51 + 2^14 < 2^52, so the
//!   multiply-adds see every bit; a limb product is below 2^102.01, its low
//!   half below 2^52 and its high half below 2^50.01. The product f_i·g_j is
//!   worth 2^(51(i+j)): its low 52 bits land on limb k = i + j and its high
//!   bits, worth 2^52 = 2·2^51, twice on limb k + 1. A column has at most
//!   five products (`square` doubles at most two cross products and adds one
//!   square: the same five), so column k is below
//!   5·2^52 + 2·5·2^50.01 < 2^55. Columns 5..9 wrap past 2^255 and come
//!   back times 19: below 20·2^55 < 2^59.4, and [`carry`] reduces them.

use super::lane_field::{LaneField, array};
use super::vec64::Vec52;

/// 2^51 − 1.
const MASK: u64 = (1 << 51) - 1;

/// One field element per lane.
#[derive(Clone, Copy)]
pub(crate) struct Fe52<V>(pub [V; 5]);

/// 2p in limbs, added before a subtraction so that no limb goes below zero.
const TWO_P: [u64; 5] = [2 * (MASK - 18), 2 * MASK, 2 * MASK, 2 * MASK, 2 * MASK];

/// The five limbs of the low 255 bits of `bytes` (the value may be ≥ p; the
/// arithmetic is mod p either way, as curve25519-dalek's `from_bytes`).
pub(crate) fn limbs_from_bytes(bytes: &[u8; 32]) -> [u64; 5] {
    let mut b = *bytes;
    b[31] &= 0x7f;
    let v = [0, 1, 2, 3].map(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes")));
    std::array::from_fn(|i| {
        let (word, bit) = (51 * i / 64, 51 * i % 64);
        let mut x = v[word] >> bit;
        if bit + 51 > 64 {
            x |= v[word + 1] << (64 - bit);
        }
        x & MASK
    })
}

/// The 32 little-endian bytes of canonical limbs (each below 2^51).
pub(crate) fn bytes_from_limbs(l: &[u64; 5]) -> [u8; 32] {
    let mut v = [0u64; 4];
    for (i, &limb) in l.iter().enumerate() {
        let (word, bit) = (51 * i / 64, 51 * i % 64);
        v[word] |= limb << bit;
        if bit + 51 > 64 {
            v[word + 1] |= limb >> (64 - bit);
        }
    }
    let mut out = [0u8; 32];
    for (i, w) in v.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

impl<V: Vec52> Fe52<V> {
    #[inline(always)]
    pub fn splat(limbs: &[u64; 5]) -> Self {
        Fe52(limbs.map(V::splat))
    }

    /// Lane j takes `lanes[j]`'s limbs.
    #[inline(always)]
    pub fn from_lanes(lanes: &[[u64; 5]]) -> Self {
        debug_assert_eq!(lanes.len(), V::N);
        let mut col = [0u64; 16];
        Fe52(std::array::from_fn(|i| {
            for (j, l) in lanes.iter().enumerate() {
                col[j] = l[i];
            }
            V::from_slice(&col[..V::N])
        }))
    }

    /// Each lane's limbs (as they are, not reduced).
    pub fn to_lanes(self) -> Vec<[u64; 5]> {
        let mut out = vec![[0u64; 5]; V::N];
        let mut col = [0u64; 16];
        for i in 0..5 {
            self.0[i].to_array(&mut col[..V::N]);
            for (j, o) in out.iter_mut().enumerate() {
                o[i] = col[j];
            }
        }
        out
    }

    /// The canonical limbs (value in [0, p)) of a reduced element.
    #[inline(always)]
    pub fn canonical(&self) -> Self {
        let mask = V::splat(MASK);
        // Carry all the way up, twice around, so that every limb is below
        // 2^51 but limb 0, below 2^51 + 19, and the value below 2^255 + 19
        // (less than 2p).
        let mut h = self.0;
        for _ in 0..2 {
            for i in 0..5 {
                let c = h[i].shr::<51>();
                h[i] = h[i].and(mask);
                if i < 4 {
                    h[i + 1] = h[i + 1].add(c);
                } else {
                    h[0] = h[0].add(times19(c));
                }
            }
        }
        // q = 1 when h ≥ p, i.e. when h + 19 reaches 2^255.
        let mut q = h[0].add(V::splat(19)).shr::<51>();
        for hi in &h[1..] {
            q = hi.add(q).shr::<51>();
        }
        // h − q·p = h + 19q − q·2^255: add 19q, carry, drop bit 255.
        h[0] = h[0].add(times19(q));
        for i in 0..5 {
            let c = h[i].shr::<51>();
            h[i] = h[i].and(mask);
            if i < 4 {
                h[i + 1] = h[i + 1].add(c);
            }
        }
        Fe52(h)
    }
}

impl<V: Vec52> LaneField for Fe52<V> {
    type V = V;
    const WORDS: usize = 5;

    #[inline(always)]
    fn zero() -> Self {
        Fe52([V::splat(0); 5])
    }

    #[inline(always)]
    fn one() -> Self {
        let mut f = Self::zero();
        f.0[0] = V::splat(1);
        f
    }

    /// `self + o`, reduced (see the module's bounds: a sum of two reduced
    /// values would not fit the multiply-adds' 52-bit operands).
    #[inline(always)]
    fn add(&self, o: &Self) -> Self {
        carry(array!(V::splat(0); 5, |i| self.0[i].add(o.0[i])))
    }

    /// `self − o`, reduced.
    #[inline(always)]
    fn sub(&self, o: &Self) -> Self {
        carry(array!(V::splat(0); 5, |i| self.0[i].add(V::splat(TWO_P[i])).sub(o.0[i])))
    }

    #[inline(always)]
    fn neg(&self) -> Self {
        Self::zero().sub(self)
    }

    /// `add` already reduces: the value as it is.
    #[inline(always)]
    fn carry(&self) -> Self {
        *self
    }

    #[inline(always)]
    fn mul(&self, g: &Self) -> Self {
        Fe52(V::field52_mul(&self.0, &g.0))
    }

    #[inline(always)]
    fn square(&self) -> Self {
        Fe52(V::field52_square(&self.0))
    }

    #[inline(always)]
    fn is_zero(&self) -> V {
        let c = self.canonical().0;
        c[0].or(c[1]).or(c[2]).or(c[3]).or(c[4]).eq(V::splat(0))
    }

    #[inline(always)]
    fn is_negative(&self) -> V {
        let one = V::splat(1);
        self.canonical().0[0].and(one).eq(one)
    }

    #[inline(always)]
    fn blend(&self, o: &Self, mask: V) -> Self {
        Fe52(array!(V::splat(0); 5, |i| self.0[i].blend(o.0[i], mask)))
    }

    #[inline(always)]
    fn constant(bytes: &[u8; 32]) -> Self {
        Self::splat(&limbs_from_bytes(bytes))
    }

    #[inline(always)]
    fn from_bytes(lanes: &[[u8; 32]]) -> Self {
        let limbs: [[u64; 5]; 16] = std::array::from_fn(|j| lanes.get(j).map_or([0; 5], limbs_from_bytes));
        Self::from_lanes(&limbs[..V::N])
    }

    fn to_bytes(&self) -> Vec<[u8; 32]> {
        self.canonical().to_lanes().iter().map(bytes_from_limbs).collect()
    }

    #[inline(always)]
    fn store(&self, table: &mut [u64], at: usize, stride: usize) {
        for (w, limb) in self.0.iter().enumerate() {
            let i = at + w * stride;
            limb.to_array(&mut table[i..i + V::N]);
        }
    }

    #[inline(always)]
    unsafe fn gather(table: &[u64], base: V, stride: u64) -> Self {
        // SAFETY: the caller keeps every word read inside the table.
        Fe52(array!(V::splat(0); 5, |w| unsafe { V::gather(table, base.add(V::splat(w as u64 * stride))) }))
    }
}

/// 19·x for any x below 2^59.
#[inline(always)]
fn times19<V: Vec52>(x: V) -> V {
    x.shl::<4>().add(x.shl::<1>()).add(x)
}

#[inline(always)]
fn twice<V: Vec52>(x: V) -> V {
    x.add(x)
}

/// Limbs below 2^60 to a reduced element, carrying every limb at once (no
/// chain: each limb keeps its low 51 bits and gains the carry out of the
/// limb below, limb 0 19 times the carry out of limb 4).
#[inline(always)]
fn carry<V: Vec52>(h: [V; 5]) -> Fe52<V> {
    let mask = V::splat(MASK);
    let c: [V; 5] = array!(V::splat(0); 5, |i| h[i].shr::<51>());
    Fe52([
        h[0].and(mask).add(times19(c[4])),
        h[1].and(mask).add(c[0]),
        h[2].and(mask).add(c[1]),
        h[3].and(mask).add(c[2]),
        h[4].and(mask).add(c[3]),
    ])
}

/// Columns of low halves (column k: the products f_i·g_j with i + j = k)
/// and of high halves to limbs, reduced: limb k gains the low column k,
/// twice the high column k − 1, and 19 times what lands on limb k + 5.
#[inline(always)]
fn reduce_columns<V: Vec52>(lo: &[V; 9], hi: &[V; 9]) -> [V; 5] {
    let col = |k: usize| match k {
        0 => lo[0],
        9 => twice(hi[8]),
        _ => lo[k].add(twice(hi[k - 1])),
    };
    carry([
        col(0).add(times19(col(5))),
        col(1).add(times19(col(6))),
        col(2).add(times19(col(7))),
        col(3).add(times19(col(8))),
        col(4).add(times19(col(9))),
    ])
    .0
}

/// The product of two reduced elements, reduced (the module's bounds).
/// Written out term by term (the compiler does not unroll the loops this
/// comes from).
#[inline(always)]
pub(crate) fn mul_limbs<V: Vec52>(f: &[V; 5], g: &[V; 5]) -> [V; 5] {
    let z = V::splat(0);
    #[rustfmt::skip]
    let lo: [V; 9] = [
        z.madd52lo(f[0], g[0]),
        z.madd52lo(f[0], g[1]).madd52lo(f[1], g[0]),
        z.madd52lo(f[0], g[2]).madd52lo(f[1], g[1]).madd52lo(f[2], g[0]),
        z.madd52lo(f[0], g[3]).madd52lo(f[1], g[2]).madd52lo(f[2], g[1]).madd52lo(f[3], g[0]),
        z.madd52lo(f[0], g[4]).madd52lo(f[1], g[3]).madd52lo(f[2], g[2]).madd52lo(f[3], g[1]).madd52lo(f[4], g[0]),
        z.madd52lo(f[1], g[4]).madd52lo(f[2], g[3]).madd52lo(f[3], g[2]).madd52lo(f[4], g[1]),
        z.madd52lo(f[2], g[4]).madd52lo(f[3], g[3]).madd52lo(f[4], g[2]),
        z.madd52lo(f[3], g[4]).madd52lo(f[4], g[3]),
        z.madd52lo(f[4], g[4]),
    ];
    #[rustfmt::skip]
    let hi: [V; 9] = [
        z.madd52hi(f[0], g[0]),
        z.madd52hi(f[0], g[1]).madd52hi(f[1], g[0]),
        z.madd52hi(f[0], g[2]).madd52hi(f[1], g[1]).madd52hi(f[2], g[0]),
        z.madd52hi(f[0], g[3]).madd52hi(f[1], g[2]).madd52hi(f[2], g[1]).madd52hi(f[3], g[0]),
        z.madd52hi(f[0], g[4]).madd52hi(f[1], g[3]).madd52hi(f[2], g[2]).madd52hi(f[3], g[1]).madd52hi(f[4], g[0]),
        z.madd52hi(f[1], g[4]).madd52hi(f[2], g[3]).madd52hi(f[3], g[2]).madd52hi(f[4], g[1]),
        z.madd52hi(f[2], g[4]).madd52hi(f[3], g[3]).madd52hi(f[4], g[2]),
        z.madd52hi(f[3], g[4]).madd52hi(f[4], g[3]),
        z.madd52hi(f[4], g[4]),
    ];
    reduce_columns(&lo, &hi)
}

/// `mul_limbs(f, f)` with each cross product computed once, doubled.
#[inline(always)]
pub(crate) fn square_limbs<V: Vec52>(f: &[V; 5]) -> [V; 5] {
    let z = V::splat(0);
    #[rustfmt::skip]
    let lo: [V; 9] = [
        z.madd52lo(f[0], f[0]),
        twice(z.madd52lo(f[0], f[1])),
        twice(z.madd52lo(f[0], f[2])).madd52lo(f[1], f[1]),
        twice(z.madd52lo(f[0], f[3]).madd52lo(f[1], f[2])),
        twice(z.madd52lo(f[0], f[4]).madd52lo(f[1], f[3])).madd52lo(f[2], f[2]),
        twice(z.madd52lo(f[1], f[4]).madd52lo(f[2], f[3])),
        twice(z.madd52lo(f[2], f[4])).madd52lo(f[3], f[3]),
        twice(z.madd52lo(f[3], f[4])),
        z.madd52lo(f[4], f[4]),
    ];
    #[rustfmt::skip]
    let hi: [V; 9] = [
        z.madd52hi(f[0], f[0]),
        twice(z.madd52hi(f[0], f[1])),
        twice(z.madd52hi(f[0], f[2])).madd52hi(f[1], f[1]),
        twice(z.madd52hi(f[0], f[3]).madd52hi(f[1], f[2])),
        twice(z.madd52hi(f[0], f[4]).madd52hi(f[1], f[3])).madd52hi(f[2], f[2]),
        twice(z.madd52hi(f[1], f[4]).madd52hi(f[2], f[3])),
        twice(z.madd52hi(f[2], f[4])).madd52hi(f[3], f[3]),
        twice(z.madd52hi(f[3], f[4])),
        z.madd52hi(f[4], f[4]),
    ];
    reduce_columns(&lo, &hi)
}
