//! What the curve code needs of a field implementation: one element of
//! GF(2^255 − 19) per lane. Two implement it: [`super::field::Fe`] (ten
//! 25.5-bit limbs, any [`Vec64`]) and [`super::field52::Fe52`] (five 51-bit
//! limbs, AVX-512 IFMA).
//!
//! Values come in two kinds: *reduced* (what `mul`, `square`, `sub`, `neg`,
//! `carry` and the constructors return) and *sums* (what `add` returns from
//! two reduced values). A sum may only go into `mul`, `square`, `sub` or
//! `carry`; each implementation documents the bounds that make this safe.

use super::vec64::Vec64;

/// `[init; n]` with element i set to `e` (for i in 0..n): an array built by a
/// loop, not by `std::array::from_fn`, whose closure the compiler may leave
/// out of line, without the target features of the lane code around it.
macro_rules! array {
    ($init:expr; $n:expr, |$i:ident| $e:expr) => {{
        let mut out = [$init; $n];
        for $i in 0..$n {
            out[$i] = $e;
        }
        out
    }};
}
pub(crate) use array;

pub(crate) trait LaneField: Copy {
    /// Masks (all ones or zero per lane) and table indices.
    type V: Vec64;
    /// 64-bit words of one element in a table.
    const WORDS: usize;
    fn zero() -> Self;
    fn one() -> Self;
    /// The little-endian value `bytes` (below p) in every lane.
    fn constant(bytes: &[u8; 32]) -> Self;
    /// Lane j holds the low 255 bits of `lanes[j]`, taken mod p (lanes past
    /// `lanes.len()` hold zero).
    fn from_bytes(lanes: &[[u8; 32]]) -> Self;
    /// Each lane's canonical encoding.
    fn to_bytes(&self) -> Vec<[u8; 32]>;
    fn add(&self, o: &Self) -> Self;
    fn sub(&self, o: &Self) -> Self;
    fn neg(&self) -> Self;
    /// The same value, reduced (for a sum of more than two).
    fn carry(&self) -> Self;
    fn mul(&self, o: &Self) -> Self;
    fn square(&self) -> Self;
    /// All ones in lanes where the value is 0 mod p.
    fn is_zero(&self) -> Self::V;
    /// All ones in lanes where the canonical value is odd.
    fn is_negative(&self) -> Self::V;
    /// `o` in lanes where `mask` is all ones, `self` elsewhere.
    fn blend(&self, o: &Self, mask: Self::V) -> Self;
    /// Writes lane j's word w to `table[at + w·stride + j]`.
    fn store(&self, table: &mut [u64], at: usize, stride: usize);
    /// Lane j's word w is `table[base_j + w·stride]`.
    ///
    /// # Safety
    /// Every word read is inside `table`.
    unsafe fn gather(table: &[u64], base: Self::V, stride: u64) -> Self;

    /// All ones in lanes where `self == o` mod p.
    #[inline(always)]
    fn equals(&self, o: &Self) -> Self::V {
        self.sub(o).is_zero()
    }

    /// `self` squared `k` times.
    #[inline(always)]
    fn square_n(&self, k: usize) -> Self {
        let mut x = *self;
        for _ in 0..k {
            x = x.square();
        }
        x
    }

    /// (self^(2^250 − 1), self^11), the common start of inversion and
    /// `pow_p58` (curve25519-dalek's addition chain).
    #[doc(hidden)]
    fn pow22501(&self) -> (Self, Self) {
        let t0 = self.square();
        let t1 = t0.square_n(2);
        let t2 = self.mul(&t1);
        let t3 = t0.mul(&t2);
        let t4 = t3.square();
        let t5 = t2.mul(&t4);
        let t6 = t5.square_n(5);
        let t7 = t6.mul(&t5);
        let t8 = t7.square_n(10);
        let t9 = t8.mul(&t7);
        let t10 = t9.square_n(20);
        let t11 = t10.mul(&t9);
        let t12 = t11.square_n(10);
        let t13 = t12.mul(&t7);
        let t14 = t13.square_n(50);
        let t15 = t14.mul(&t13);
        let t16 = t15.square_n(100);
        let t17 = t16.mul(&t15);
        let t18 = t17.square_n(50);
        let t19 = t18.mul(&t13);
        (t19, t3)
    }

    /// self^((p − 5) / 8).
    fn pow_p58(&self) -> Self {
        let (t19, _) = self.pow22501();
        self.mul(&t19.square_n(2))
    }

    /// self^(p − 2): the inverse (zero for zero).
    #[cfg(test)]
    fn invert(&self) -> Self {
        let (t19, t3) = self.pow22501();
        t19.square_n(5).mul(&t3)
    }
}
