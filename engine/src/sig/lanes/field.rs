//! GF(2^255 − 19) in lanes: one field element per lane, ten limbs in radix
//! 2^25.5 (limb i holds bits from ⌈25.5·i⌉, 26 bits wide when i is even and
//! 25 when odd), each limb a [`Vec64`] so that one instruction works on the
//! same limb of every lane's element.
//!
//! Bounds (checked by [`super::vec64::Emu`] in the tests, argued here):
//! - *reduced* (what `mul`, `square`, `sub`, `neg` and `carry` return):
//!   every limb below 2^26 + 2^17;
//! - *sum* (what `add` returns from two reduced inputs): limbs below
//!   2^27 + 2^18. `mul` and `square` accept reduced or sum inputs; `sub`
//!   accepts them too (it adds 4p, whose limbs exceed 2^27 + 2^18); nothing
//!   else may be added to a sum without `carry`.
//! - In `mul` the multiplier limbs times 19 stay below 2^31.3 and times 2
//!   below 2^28.1, so every `mul32` operand is below 2^32; a product is below
//!   2^59.3 and ten of them below 2^62.6, so the 64-bit sums never overflow.
//!   `square` uses 4·f (below 2^29.1) times 19·f: products below 2^60.4, at
//!   most six per limb, below 2^63.

use super::lane_field::{LaneField, array};
use super::vec64::Vec64;

/// Bit position of each limb.
const POS: [u32; 10] = [0, 26, 51, 77, 102, 128, 153, 179, 204, 230];
/// Width of limb i.
#[inline(always)]
const fn width(i: usize) -> u32 {
    if i.is_multiple_of(2) { 26 } else { 25 }
}

/// One field element per lane.
#[derive(Clone, Copy)]
pub(crate) struct Fe<V>(pub [V; 10]);

/// 4p in limbs, added before a subtraction so that no limb goes below zero.
const FOUR_P: [u64; 10] = {
    let mut l = [0u64; 10];
    let mut i = 0;
    while i < 10 {
        l[i] = 4 * ((1u64 << width(i)) - 1);
        i += 1;
    }
    l[0] = 4 * ((1 << 26) - 19);
    l
};

/// The ten limbs of the low 255 bits of `bytes` (the value may be ≥ p; the
/// arithmetic is mod p either way, as curve25519-dalek's `from_bytes`).
pub(crate) fn limbs_from_bytes(bytes: &[u8; 32]) -> [u64; 10] {
    let mut b = *bytes;
    b[31] &= 0x7f;
    let v = [0, 1, 2, 3].map(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes")));
    std::array::from_fn(|i| {
        let (word, bit) = ((POS[i] / 64) as usize, POS[i] % 64);
        let mut x = v[word] >> bit;
        if bit + width(i) > 64 {
            x |= v[word + 1] << (64 - bit);
        }
        x & ((1 << width(i)) - 1)
    })
}

/// The 32 little-endian bytes of canonical limbs (each within its width).
pub(crate) fn bytes_from_limbs(l: &[u64; 10]) -> [u8; 32] {
    let mut v = [0u64; 4];
    for i in 0..10 {
        let (word, bit) = ((POS[i] / 64) as usize, POS[i] % 64);
        v[word] |= l[i] << bit;
        if bit + width(i) > 64 {
            v[word + 1] |= l[i] >> (64 - bit);
        }
    }
    let mut out = [0u8; 32];
    for (i, w) in v.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

impl<V: Vec64> Fe<V> {
    #[inline(always)]
    pub fn splat(limbs: &[u64; 10]) -> Self {
        Fe(limbs.map(V::splat))
    }

    /// Lane j takes `lanes[j]`'s limbs.
    #[inline(always)]
    pub fn from_lanes(lanes: &[[u64; 10]]) -> Self {
        debug_assert_eq!(lanes.len(), V::N);
        let mut col = [0u64; 16];
        Fe(std::array::from_fn(|i| {
            for (j, l) in lanes.iter().enumerate() {
                col[j] = l[i];
            }
            V::from_slice(&col[..V::N])
        }))
    }

    /// Each lane's limbs (as they are, not reduced).
    pub fn lanes(&self) -> Vec<[u64; 10]> {
        let mut out = vec![[0u64; 10]; V::N];
        let mut col = [0u64; 16];
        for i in 0..10 {
            self.0[i].to_array(&mut col[..V::N]);
            for (j, o) in out.iter_mut().enumerate() {
                o[i] = col[j];
            }
        }
        out
    }

    /// The canonical limbs (value in [0, p)) of a reduced or sum element.
    #[inline(always)]
    pub fn canonical(&self) -> Self {
        let mask = |i: usize| V::splat((1 << width(i)) - 1);
        // Carry all the way up, twice around, so that every limb is within
        // its width and the value is below 2^255 + 2^26 (less than 2p).
        let mut h = self.0;
        for _ in 0..2 {
            for i in 0..10 {
                let c = shr_width(h[i], i);
                h[i] = h[i].and(mask(i));
                if i < 9 {
                    h[i + 1] = h[i + 1].add(c);
                } else {
                    h[0] = h[0].add(times19(c));
                }
            }
        }
        // q = 1 when h ≥ p, i.e. when h + 19 reaches 2^255.
        let mut q = h[0].add(V::splat(19)).shr::<26>();
        for (i, hi) in h.iter().enumerate().skip(1) {
            q = shr_width(hi.add(q), i);
        }
        // h − q·p = h + 19q − q·2^255: add 19q, carry, drop bit 255.
        h[0] = h[0].add(times19(q));
        for i in 0..10 {
            let c = shr_width(h[i], i);
            h[i] = h[i].and(mask(i));
            if i < 9 {
                h[i + 1] = h[i + 1].add(c);
            }
        }
        Fe(h)
    }
}

impl<V: Vec64> LaneField for Fe<V> {
    type V = V;
    const WORDS: usize = 10;

    #[inline(always)]
    fn zero() -> Self {
        Fe([V::splat(0); 10])
    }

    #[inline(always)]
    fn one() -> Self {
        let mut f = Self::zero();
        f.0[0] = V::splat(1);
        f
    }

    /// Sum, limb by limb, without carrying (see the module's bounds).
    #[inline(always)]
    fn add(&self, o: &Self) -> Self {
        Fe(array!(V::splat(0); 10, |i| self.0[i].add(o.0[i])))
    }

    /// `self − o`, reduced.
    #[inline(always)]
    fn sub(&self, o: &Self) -> Self {
        carry(array!(V::splat(0); 10, |i| self.0[i].add(V::splat(FOUR_P[i])).sub(o.0[i])))
    }

    #[inline(always)]
    fn neg(&self) -> Self {
        Self::zero().sub(self)
    }

    /// Reduced again (for a value that is a sum of more than two).
    #[inline(always)]
    fn carry(&self) -> Self {
        carry(self.0)
    }

    #[inline(always)]
    fn mul(&self, g: &Self) -> Self {
        Fe(V::field_mul(&self.0, &g.0))
    }

    #[inline(always)]
    fn square(&self) -> Self {
        Fe(V::field_square(&self.0))
    }

    /// All ones in lanes where the element is 0 mod p.
    #[inline(always)]
    fn is_zero(&self) -> V {
        let c = self.canonical().0;
        let mut any = c[0];
        for x in &c[1..] {
            any = any.or(*x);
        }
        any.eq(V::splat(0))
    }

    /// All ones in lanes where the canonical value is odd ("negative").
    #[inline(always)]
    fn is_negative(&self) -> V {
        let one = V::splat(1);
        self.canonical().0[0].and(one).eq(one)
    }

    /// `o` in lanes where `mask` is all ones, `self` elsewhere.
    #[inline(always)]
    fn blend(&self, o: &Self, mask: V) -> Self {
        Fe(array!(V::splat(0); 10, |i| self.0[i].blend(o.0[i], mask)))
    }

    #[inline(always)]
    fn constant(bytes: &[u8; 32]) -> Self {
        Self::splat(&limbs_from_bytes(bytes))
    }

    #[inline(always)]
    fn from_bytes(lanes: &[[u8; 32]]) -> Self {
        let limbs: [[u64; 10]; 16] = std::array::from_fn(|j| lanes.get(j).map_or([0; 10], limbs_from_bytes));
        Self::from_lanes(&limbs[..V::N])
    }

    fn to_bytes(&self) -> Vec<[u8; 32]> {
        self.canonical().lanes().iter().map(bytes_from_limbs).collect()
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
        Fe(array!(V::splat(0); 10, |w| unsafe { V::gather(table, base.add(V::splat(w as u64 * stride))) }))
    }
}

/// 19·x for any x below 2^59 (a carry out of limb 9 can exceed 32 bits).
#[inline(always)]
fn times19<V: Vec64>(x: V) -> V {
    x.shl::<4>().add(x.shl::<1>()).add(x)
}

#[inline(always)]
fn shr_width<V: Vec64>(x: V, i: usize) -> V {
    if i.is_multiple_of(2) { x.shr::<26>() } else { x.shr::<25>() }
}

/// Carries limb sums below 2^64 back to reduced limbs (ref10's order: two
/// interleaved chains, then 9 → 0 with the factor 19, then 0 → 1).
#[inline(always)]
fn carry<V: Vec64>(mut h: [V; 10]) -> Fe<V> {
    // Written out (a loop over the order is not unrolled, and keeps h in memory).
    carry_step(&mut h, 0);
    carry_step(&mut h, 4);
    carry_step(&mut h, 1);
    carry_step(&mut h, 5);
    carry_step(&mut h, 2);
    carry_step(&mut h, 6);
    carry_step(&mut h, 3);
    carry_step(&mut h, 7);
    carry_step(&mut h, 4);
    carry_step(&mut h, 8);
    carry_step(&mut h, 9);
    carry_step(&mut h, 0);
    Fe(h)
}

/// Carries limb `i` into the next (9 into 0, times 19).
#[inline(always)]
fn carry_step<V: Vec64>(h: &mut [V; 10], i: usize) {
    let c = shr_width(h[i], i);
    h[i] = h[i].and(V::splat((1 << width(i)) - 1));
    if i == 9 {
        h[0] = h[0].add(times19(c));
    } else {
        h[i + 1] = h[i + 1].add(c);
    }
}

/// The product of two reduced-or-sum elements, reduced (the module's
/// bounds): every limb product f_i·g_j lands on limb (i + j) mod 10, times 2
/// when both limbs are odd (their positions round up twice) and times 19
/// when it wraps past 2^255. Written out term by term (the compiler does not
/// unroll the loops this comes from).
#[inline(always)]
pub(crate) fn mul_limbs<V: Vec64>(f: &[V; 10], g: &[V; 10]) -> [V; 10] {
    let c19 = V::splat(19);
    let g19: [V; 10] = array!(V::splat(0); 10, |j| g[j].mul32(c19));
    let f2: [V; 10] = array!(V::splat(0); 10, |i| f[i].add(f[i]));
    #[rustfmt::skip]
    let h = [
        f[0].mul32(g[0])
            .add(f2[1].mul32(g19[9]))
            .add(f[2].mul32(g19[8]))
            .add(f2[3].mul32(g19[7]))
            .add(f[4].mul32(g19[6]))
            .add(f2[5].mul32(g19[5]))
            .add(f[6].mul32(g19[4]))
            .add(f2[7].mul32(g19[3]))
            .add(f[8].mul32(g19[2]))
            .add(f2[9].mul32(g19[1])),
        f[0].mul32(g[1])
            .add(f[1].mul32(g[0]))
            .add(f[2].mul32(g19[9]))
            .add(f[3].mul32(g19[8]))
            .add(f[4].mul32(g19[7]))
            .add(f[5].mul32(g19[6]))
            .add(f[6].mul32(g19[5]))
            .add(f[7].mul32(g19[4]))
            .add(f[8].mul32(g19[3]))
            .add(f[9].mul32(g19[2])),
        f[0].mul32(g[2])
            .add(f2[1].mul32(g[1]))
            .add(f[2].mul32(g[0]))
            .add(f2[3].mul32(g19[9]))
            .add(f[4].mul32(g19[8]))
            .add(f2[5].mul32(g19[7]))
            .add(f[6].mul32(g19[6]))
            .add(f2[7].mul32(g19[5]))
            .add(f[8].mul32(g19[4]))
            .add(f2[9].mul32(g19[3])),
        f[0].mul32(g[3])
            .add(f[1].mul32(g[2]))
            .add(f[2].mul32(g[1]))
            .add(f[3].mul32(g[0]))
            .add(f[4].mul32(g19[9]))
            .add(f[5].mul32(g19[8]))
            .add(f[6].mul32(g19[7]))
            .add(f[7].mul32(g19[6]))
            .add(f[8].mul32(g19[5]))
            .add(f[9].mul32(g19[4])),
        f[0].mul32(g[4])
            .add(f2[1].mul32(g[3]))
            .add(f[2].mul32(g[2]))
            .add(f2[3].mul32(g[1]))
            .add(f[4].mul32(g[0]))
            .add(f2[5].mul32(g19[9]))
            .add(f[6].mul32(g19[8]))
            .add(f2[7].mul32(g19[7]))
            .add(f[8].mul32(g19[6]))
            .add(f2[9].mul32(g19[5])),
        f[0].mul32(g[5])
            .add(f[1].mul32(g[4]))
            .add(f[2].mul32(g[3]))
            .add(f[3].mul32(g[2]))
            .add(f[4].mul32(g[1]))
            .add(f[5].mul32(g[0]))
            .add(f[6].mul32(g19[9]))
            .add(f[7].mul32(g19[8]))
            .add(f[8].mul32(g19[7]))
            .add(f[9].mul32(g19[6])),
        f[0].mul32(g[6])
            .add(f2[1].mul32(g[5]))
            .add(f[2].mul32(g[4]))
            .add(f2[3].mul32(g[3]))
            .add(f[4].mul32(g[2]))
            .add(f2[5].mul32(g[1]))
            .add(f[6].mul32(g[0]))
            .add(f2[7].mul32(g19[9]))
            .add(f[8].mul32(g19[8]))
            .add(f2[9].mul32(g19[7])),
        f[0].mul32(g[7])
            .add(f[1].mul32(g[6]))
            .add(f[2].mul32(g[5]))
            .add(f[3].mul32(g[4]))
            .add(f[4].mul32(g[3]))
            .add(f[5].mul32(g[2]))
            .add(f[6].mul32(g[1]))
            .add(f[7].mul32(g[0]))
            .add(f[8].mul32(g19[9]))
            .add(f[9].mul32(g19[8])),
        f[0].mul32(g[8])
            .add(f2[1].mul32(g[7]))
            .add(f[2].mul32(g[6]))
            .add(f2[3].mul32(g[5]))
            .add(f[4].mul32(g[4]))
            .add(f2[5].mul32(g[3]))
            .add(f[6].mul32(g[2]))
            .add(f2[7].mul32(g[1]))
            .add(f[8].mul32(g[0]))
            .add(f2[9].mul32(g19[9])),
        f[0].mul32(g[9])
            .add(f[1].mul32(g[8]))
            .add(f[2].mul32(g[7]))
            .add(f[3].mul32(g[6]))
            .add(f[4].mul32(g[5]))
            .add(f[5].mul32(g[4]))
            .add(f[6].mul32(g[3]))
            .add(f[7].mul32(g[2]))
            .add(f[8].mul32(g[1]))
            .add(f[9].mul32(g[0])),
    ];
    carry(h).0
}

/// `mul_limbs(f, f)` with each cross product computed once, doubled.
#[inline(always)]
pub(crate) fn square_limbs<V: Vec64>(f: &[V; 10]) -> [V; 10] {
    let c19 = V::splat(19);
    let f2: [V; 10] = array!(V::splat(0); 10, |i| f[i].add(f[i]));
    let f4: [V; 10] = array!(V::splat(0); 10, |i| f2[i].add(f2[i]));
    let f19: [V; 10] = array!(V::splat(0); 10, |j| f[j].mul32(c19));
    #[rustfmt::skip]
    let h = [
        f[0].mul32(f[0])
            .add(f4[1].mul32(f19[9]))
            .add(f2[2].mul32(f19[8]))
            .add(f4[3].mul32(f19[7]))
            .add(f2[4].mul32(f19[6]))
            .add(f2[5].mul32(f19[5])),
        f2[0].mul32(f[1])
            .add(f2[2].mul32(f19[9]))
            .add(f2[3].mul32(f19[8]))
            .add(f2[4].mul32(f19[7]))
            .add(f2[5].mul32(f19[6])),
        f2[0].mul32(f[2])
            .add(f2[1].mul32(f[1]))
            .add(f4[3].mul32(f19[9]))
            .add(f2[4].mul32(f19[8]))
            .add(f4[5].mul32(f19[7]))
            .add(f[6].mul32(f19[6])),
        f2[0].mul32(f[3])
            .add(f2[1].mul32(f[2]))
            .add(f2[4].mul32(f19[9]))
            .add(f2[5].mul32(f19[8]))
            .add(f2[6].mul32(f19[7])),
        f2[0].mul32(f[4])
            .add(f4[1].mul32(f[3]))
            .add(f[2].mul32(f[2]))
            .add(f4[5].mul32(f19[9]))
            .add(f2[6].mul32(f19[8]))
            .add(f2[7].mul32(f19[7])),
        f2[0].mul32(f[5])
            .add(f2[1].mul32(f[4]))
            .add(f2[2].mul32(f[3]))
            .add(f2[6].mul32(f19[9]))
            .add(f2[7].mul32(f19[8])),
        f2[0].mul32(f[6])
            .add(f4[1].mul32(f[5]))
            .add(f2[2].mul32(f[4]))
            .add(f2[3].mul32(f[3]))
            .add(f4[7].mul32(f19[9]))
            .add(f[8].mul32(f19[8])),
        f2[0].mul32(f[7])
            .add(f2[1].mul32(f[6]))
            .add(f2[2].mul32(f[5]))
            .add(f2[3].mul32(f[4]))
            .add(f2[8].mul32(f19[9])),
        f2[0].mul32(f[8])
            .add(f4[1].mul32(f[7]))
            .add(f2[2].mul32(f[6]))
            .add(f4[3].mul32(f[5]))
            .add(f[4].mul32(f[4]))
            .add(f2[9].mul32(f19[9])),
        f2[0].mul32(f[9])
            .add(f2[1].mul32(f[8]))
            .add(f2[2].mul32(f[7]))
            .add(f2[3].mul32(f[6]))
            .add(f2[4].mul32(f[5])),
    ];
    carry(h).0
}
