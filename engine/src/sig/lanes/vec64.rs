//! Vectors of unsigned 64-bit lanes: the only operations the lane field
//! arithmetic ([`super::field`], [`super::field52`]) uses, so that the same
//! field and curve code runs on AVX2 (4 lanes), AVX-512 IFMA (8 lanes) and
//! on a portable emulation ([`Emu`]) that checks every bound the arithmetic
//! relies on.

/// `N` unsigned 64-bit lanes. Every method is lane-wise.
pub(crate) trait Vec64: Copy {
    /// Lanes per vector.
    const N: usize;
    fn splat(x: u64) -> Self;
    /// Lane `i` is `a[i]` (`a.len() == N`).
    fn from_slice(a: &[u64]) -> Self;
    fn to_array(self, out: &mut [u64]);
    fn add(self, o: Self) -> Self;
    /// `self - o`; the field code never lets it go below zero.
    fn sub(self, o: Self) -> Self;
    /// The low 32 bits of each lane of `self` times those of `o`, as 64 bits.
    /// The field code only calls it with operands below 2^32.
    fn mul32(self, o: Self) -> Self;
    fn shr<const S: i32>(self) -> Self;
    /// `self << S`; the field code never shifts bits out.
    fn shl<const S: i32>(self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    /// All ones in lanes where `self == o`, zero elsewhere.
    fn eq(self, o: Self) -> Self;
    /// `b` in lanes where `mask` is all ones, `self` elsewhere.
    fn blend(self, b: Self, mask: Self) -> Self;
    /// Lane `i` is `table[idx[i]]`.
    ///
    /// # Safety
    /// Every lane of `idx` is below `table.len()`.
    unsafe fn gather(table: &[u64], idx: Self) -> Self;

    /// Field multiplication ([`super::field::Fe::mul`]); a vector type
    /// overrides it to compile the body once, with its target features, out
    /// of line (inlined at every call it would not fit the instruction cache).
    #[inline(never)]
    fn field_mul(f: &[Self; 10], g: &[Self; 10]) -> [Self; 10] {
        super::field::mul_limbs(f, g)
    }

    /// Field squaring ([`super::field::Fe::square`]), as `field_mul`.
    #[inline(never)]
    fn field_square(f: &[Self; 10]) -> [Self; 10] {
        super::field::square_limbs(f)
    }
}

/// A vector with the AVX-512 IFMA multiply-adds (`vpmadd52luq`,
/// `vpmadd52huq`): the radix-2^51 field [`super::field52`] is built on them.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // Only the IFMA lanes use it.
pub(crate) trait Vec52: Vec64 {
    /// Per lane: the low 52 bits of `b` times the low 52 bits of `c` (a
    /// 104-bit product), whose low 52 bits are added to `self` (wrapping at
    /// 2^64; the field code never lets it wrap). The field code only calls it
    /// with `b` and `c` below 2^52.
    fn madd52lo(self, b: Self, c: Self) -> Self;
    /// As `madd52lo`, adding bits 52..103 of the product.
    fn madd52hi(self, b: Self, c: Self) -> Self;

    /// Field multiplication ([`super::field52::Fe52::mul`]), compiled out of
    /// line as [`Vec64::field_mul`] is.
    #[inline(never)]
    fn field52_mul(f: &[Self; 5], g: &[Self; 5]) -> [Self; 5] {
        super::field52::mul_limbs(f, g)
    }

    /// Field squaring ([`super::field52::Fe52::square`]), as `field52_mul`.
    #[inline(never)]
    fn field52_square(f: &[Self; 5]) -> [Self; 5] {
        super::field52::square_limbs(f)
    }
}

/// Portable `N`-lane vector that checks the field code's bounds: `mul32`
/// operands below 2^32, `madd52lo`/`madd52hi` operands below 2^52, no add
/// that overflows (the multiply-adds' included), no sub that goes below zero.
/// Tests run the lane arithmetic through it, and it builds the basepoint
/// table on any CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Emu<const N: usize>(pub [u64; N]);

impl<const N: usize> Vec64 for Emu<N> {
    const N: usize = N;
    #[inline(always)]
    fn splat(x: u64) -> Self {
        Emu([x; N])
    }
    #[inline(always)]
    fn from_slice(a: &[u64]) -> Self {
        Emu(a.try_into().expect("N lanes"))
    }
    #[inline(always)]
    fn to_array(self, out: &mut [u64]) {
        out.copy_from_slice(&self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Emu(std::array::from_fn(|i| self.0[i].checked_add(o.0[i]).expect("lane add overflows")))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Emu(std::array::from_fn(|i| self.0[i].checked_sub(o.0[i]).expect("lane sub underflows")))
    }
    #[inline(always)]
    fn mul32(self, o: Self) -> Self {
        Emu(std::array::from_fn(|i| {
            assert!(self.0[i] >> 32 == 0 && o.0[i] >> 32 == 0, "mul32 operand above 2^32");
            self.0[i] * o.0[i]
        }))
    }
    #[inline(always)]
    fn shr<const S: i32>(self) -> Self {
        Emu(self.0.map(|x| x >> S))
    }
    #[inline(always)]
    fn shl<const S: i32>(self) -> Self {
        Emu(self.0.map(|x| {
            assert!(x.leading_zeros() >= S as u32, "shl shifts bits out");
            x << S
        }))
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        Emu(std::array::from_fn(|i| self.0[i] & o.0[i]))
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        Emu(std::array::from_fn(|i| self.0[i] | o.0[i]))
    }
    #[inline(always)]
    fn eq(self, o: Self) -> Self {
        Emu(std::array::from_fn(|i| if self.0[i] == o.0[i] { u64::MAX } else { 0 }))
    }
    #[inline(always)]
    fn blend(self, b: Self, mask: Self) -> Self {
        Emu(std::array::from_fn(|i| (self.0[i] & !mask.0[i]) | (b.0[i] & mask.0[i])))
    }
    #[inline(always)]
    unsafe fn gather(table: &[u64], idx: Self) -> Self {
        Emu(idx.0.map(|i| table[i as usize]))
    }
}

impl<const N: usize> Vec52 for Emu<N> {
    #[inline(always)]
    fn madd52lo(self, b: Self, c: Self) -> Self {
        Emu(std::array::from_fn(|i| {
            let lo = (madd52_product(b.0[i], c.0[i]) & MASK52) as u64;
            self.0[i].checked_add(lo).expect("madd52lo overflows")
        }))
    }
    #[inline(always)]
    fn madd52hi(self, b: Self, c: Self) -> Self {
        Emu(std::array::from_fn(|i| {
            let hi = (madd52_product(b.0[i], c.0[i]) >> 52) as u64;
            self.0[i].checked_add(hi).expect("madd52hi overflows")
        }))
    }
}

const MASK52: u128 = (1 << 52) - 1;

/// The 104-bit product of two operands below 2^52 (the instructions take
/// each operand's low 52 bits; Emu checks that there are no others).
#[inline(always)]
fn madd52_product(b: u64, c: u64) -> u128 {
    assert!(b >> 52 == 0 && c >> 52 == 0, "madd52 operand above 2^52");
    (b as u128 & MASK52) * (c as u128 & MASK52)
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512Ifma;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Vec64;
    use std::arch::x86_64::*;

    /// Four lanes in one AVX2 register. Only ever used inside functions
    /// compiled with `#[target_feature(enable = "avx2")]`, entered after
    /// run-time detection; the methods inline into them.
    #[derive(Clone, Copy)]
    #[repr(transparent)]
    pub(crate) struct Avx2(__m256i);

    // SAFETY (every method): an `Avx2` value exists only on a CPU with AVX2
    // (see the type's documentation), so the intrinsics are available.
    impl Vec64 for Avx2 {
        const N: usize = 4;
        #[inline(always)]
        fn splat(x: u64) -> Self {
            Avx2(unsafe { _mm256_set1_epi64x(x as i64) })
        }
        #[inline(always)]
        fn from_slice(a: &[u64]) -> Self {
            assert_eq!(a.len(), 4);
            Avx2(unsafe { _mm256_loadu_si256(a.as_ptr().cast()) })
        }
        #[inline(always)]
        fn to_array(self, out: &mut [u64]) {
            assert_eq!(out.len(), 4);
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_add_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_sub_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn mul32(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_mul_epu32(self.0, o.0) })
        }
        #[inline(always)]
        fn shr<const S: i32>(self) -> Self {
            Avx2(unsafe { _mm256_srli_epi64::<S>(self.0) })
        }
        #[inline(always)]
        fn shl<const S: i32>(self) -> Self {
            Avx2(unsafe { _mm256_slli_epi64::<S>(self.0) })
        }
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_and_si256(self.0, o.0) })
        }
        #[inline(always)]
        fn or(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_or_si256(self.0, o.0) })
        }
        #[inline(always)]
        fn eq(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_cmpeq_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn blend(self, b: Self, mask: Self) -> Self {
            Avx2(unsafe { _mm256_blendv_epi8(self.0, b.0, mask.0) })
        }
        #[inline(always)]
        unsafe fn gather(table: &[u64], idx: Self) -> Self {
            // SAFETY: the caller keeps every index in bounds.
            Avx2(unsafe { _mm256_i64gather_epi64::<8>(table.as_ptr().cast(), idx.0) })
        }
        #[inline(always)]
        fn field_mul(f: &[Self; 10], g: &[Self; 10]) -> [Self; 10] {
            unsafe { mul(f, g) }
        }
        #[inline(always)]
        fn field_square(f: &[Self; 10]) -> [Self; 10] {
            unsafe { square(f) }
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn mul(f: &[Avx2; 10], g: &[Avx2; 10]) -> [Avx2; 10] {
        crate::sig::lanes::field::mul_limbs(f, g)
    }

    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn square(f: &[Avx2; 10]) -> [Avx2; 10] {
        crate::sig::lanes::field::square_limbs(f)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Vec52, Vec64};
    use std::arch::x86_64::*;

    /// Eight lanes in one AVX-512 register. Only ever used inside functions
    /// compiled with `#[target_feature(enable = "avx512f,avx512ifma")]`,
    /// entered after run-time detection; the methods inline into them.
    #[derive(Clone, Copy)]
    #[repr(transparent)]
    pub(crate) struct Avx512Ifma(__m512i);

    // SAFETY (every method): an `Avx512Ifma` value exists only on a CPU with
    // AVX-512F and AVX-512 IFMA (see the type's documentation), so the
    // intrinsics are available.
    impl Vec64 for Avx512Ifma {
        const N: usize = 8;
        #[inline(always)]
        fn splat(x: u64) -> Self {
            Avx512Ifma(unsafe { _mm512_set1_epi64(x as i64) })
        }
        #[inline(always)]
        fn from_slice(a: &[u64]) -> Self {
            assert_eq!(a.len(), 8);
            Avx512Ifma(unsafe { _mm512_loadu_si512(a.as_ptr().cast()) })
        }
        #[inline(always)]
        fn to_array(self, out: &mut [u64]) {
            assert_eq!(out.len(), 8);
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_add_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_sub_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn mul32(self, o: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_mul_epu32(self.0, o.0) })
        }
        // The immediate shifts take `u32` counts where the trait has `i32`;
        // a shift by a splatted constant compiles to the immediate form.
        #[inline(always)]
        fn shr<const S: i32>(self) -> Self {
            Avx512Ifma(unsafe { _mm512_srlv_epi64(self.0, _mm512_set1_epi64(S as i64)) })
        }
        #[inline(always)]
        fn shl<const S: i32>(self) -> Self {
            Avx512Ifma(unsafe { _mm512_sllv_epi64(self.0, _mm512_set1_epi64(S as i64)) })
        }
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_and_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn or(self, o: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_or_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn eq(self, o: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_maskz_mov_epi64(_mm512_cmpeq_epi64_mask(self.0, o.0), _mm512_set1_epi64(-1)) })
        }
        #[inline(always)]
        fn blend(self, b: Self, mask: Self) -> Self {
            // `mask` lanes are all ones or zero: its nonzero lanes select `b`.
            Avx512Ifma(unsafe { _mm512_mask_blend_epi64(_mm512_test_epi64_mask(mask.0, mask.0), self.0, b.0) })
        }
        #[inline(always)]
        unsafe fn gather(table: &[u64], idx: Self) -> Self {
            // SAFETY: the caller keeps every index in bounds.
            Avx512Ifma(unsafe { _mm512_i64gather_epi64::<8>(idx.0, table.as_ptr().cast()) })
        }
        #[inline(always)]
        fn field_mul(f: &[Self; 10], g: &[Self; 10]) -> [Self; 10] {
            unsafe { mul10(f, g) }
        }
        #[inline(always)]
        fn field_square(f: &[Self; 10]) -> [Self; 10] {
            unsafe { square10(f) }
        }
    }

    impl Vec52 for Avx512Ifma {
        #[inline(always)]
        fn madd52lo(self, b: Self, c: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_madd52lo_epu64(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn madd52hi(self, b: Self, c: Self) -> Self {
            Avx512Ifma(unsafe { _mm512_madd52hi_epu64(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn field52_mul(f: &[Self; 5], g: &[Self; 5]) -> [Self; 5] {
            unsafe { mul(f, g) }
        }
        #[inline(always)]
        fn field52_square(f: &[Self; 5]) -> [Self; 5] {
            unsafe { square(f) }
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline(never)]
    fn mul(f: &[Avx512Ifma; 5], g: &[Avx512Ifma; 5]) -> [Avx512Ifma; 5] {
        crate::sig::lanes::field52::mul_limbs(f, g)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline(never)]
    fn square(f: &[Avx512Ifma; 5]) -> [Avx512Ifma; 5] {
        crate::sig::lanes::field52::square_limbs(f)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline(never)]
    fn mul10(f: &[Avx512Ifma; 10], g: &[Avx512Ifma; 10]) -> [Avx512Ifma; 10] {
        crate::sig::lanes::field::mul_limbs(f, g)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline(never)]
    fn square10(f: &[Avx512Ifma; 10]) -> [Avx512Ifma; 10] {
        crate::sig::lanes::field::square_limbs(f)
    }
}
