//! AVX2 kernel: 8 messages per step, lane `l` of each `__m256i` is message
//! `l`. Rotations by 16 and 8 are byte shuffles, by 12 and 7 shift-or;
//! message words are loaded as 8 rows of 2 x 32 bytes and transposed in
//! registers (two 8x8 transposes, 3 shuffle stages each).

use core::arch::x86_64::*;

use super::{BLOCK_LEN, IV, Kernel, MSG_SCHEDULE, Params};

const N: usize = 8;

/// Proof that the CPU has AVX2: only [`Avx2::new`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Avx2 {
    _detected: (),
}

impl Avx2 {
    pub(crate) fn new() -> Option<Self> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2 { _detected: () })
    }
}

impl Kernel<N> for Avx2 {
    #[inline]
    fn compress(self, key: &[u32; 8], cv: &mut [[u32; N]; 8], blocks: &[&[u8; BLOCK_LEN]; N], p: &Params<N>) {
        // SAFETY: an `Avx2` exists only if run-time detection found avx2.
        unsafe { compress8(key, cv, blocks, p) }
    }

    #[inline(always)]
    fn with_features<R>(self, f: impl FnOnce() -> R) -> R {
        #[target_feature(enable = "avx2")]
        fn call<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: an `Avx2` exists only if run-time detection found avx2.
        unsafe { call(f) }
    }

    #[inline]
    fn store_cvs(self, cv: &[[u32; N]; 8], out: &mut [[u8; 32]; N]) {
        // SAFETY: an `Avx2` exists only if run-time detection found avx2.
        unsafe { store_cvs8(cv, out) }
    }
}

// The helpers below are `#[inline(always)]` and only ever called from
// `compress8`, which enables avx2, so they are compiled with it.

#[inline(always)]
fn add(a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe { _mm256_add_epi32(a, b) }
}

#[inline(always)]
fn xor(a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe { _mm256_xor_si256(a, b) }
}

#[inline(always)]
fn rot16(x: __m256i) -> __m256i {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe {
        let s = _mm256_setr_epi8(
            2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
        );
        _mm256_shuffle_epi8(x, s)
    }
}

#[inline(always)]
fn rot8(x: __m256i) -> __m256i {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe {
        let s = _mm256_setr_epi8(
            1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
        );
        _mm256_shuffle_epi8(x, s)
    }
}

#[inline(always)]
fn rot12(x: __m256i) -> __m256i {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe { _mm256_or_si256(_mm256_srli_epi32::<12>(x), _mm256_slli_epi32::<20>(x)) }
}

#[inline(always)]
fn rot7(x: __m256i) -> __m256i {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe { _mm256_or_si256(_mm256_srli_epi32::<7>(x), _mm256_slli_epi32::<25>(x)) }
}

#[inline(always)]
fn g(v: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize, x: __m256i, y: __m256i) {
    v[a] = add(add(v[a], v[b]), x);
    v[d] = rot16(xor(v[d], v[a]));
    v[c] = add(v[c], v[d]);
    v[b] = rot12(xor(v[b], v[c]));
    v[a] = add(add(v[a], v[b]), y);
    v[d] = rot8(xor(v[d], v[a]));
    v[c] = add(v[c], v[d]);
    v[b] = rot7(xor(v[b], v[c]));
}

#[inline(always)]
fn round(v: &mut [__m256i; 16], m: &[__m256i; 16], r: usize) {
    let s = &MSG_SCHEDULE[r];
    g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/// 8x8 transpose of 32-bit words: in, `x[r]` = row `r`; out, `x[w]` lane `r`
/// = old `x[r]` lane `w`.
#[inline(always)]
fn transpose(x: &mut [__m256i; 8]) {
    // SAFETY: only inlined into avx2 code (see above).
    unsafe {
        let ab_0145 = _mm256_unpacklo_epi32(x[0], x[1]);
        let ab_2367 = _mm256_unpackhi_epi32(x[0], x[1]);
        let cd_0145 = _mm256_unpacklo_epi32(x[2], x[3]);
        let cd_2367 = _mm256_unpackhi_epi32(x[2], x[3]);
        let ef_0145 = _mm256_unpacklo_epi32(x[4], x[5]);
        let ef_2367 = _mm256_unpackhi_epi32(x[4], x[5]);
        let gh_0145 = _mm256_unpacklo_epi32(x[6], x[7]);
        let gh_2367 = _mm256_unpackhi_epi32(x[6], x[7]);
        let abcd_04 = _mm256_unpacklo_epi64(ab_0145, cd_0145);
        let abcd_15 = _mm256_unpackhi_epi64(ab_0145, cd_0145);
        let abcd_26 = _mm256_unpacklo_epi64(ab_2367, cd_2367);
        let abcd_37 = _mm256_unpackhi_epi64(ab_2367, cd_2367);
        let efgh_04 = _mm256_unpacklo_epi64(ef_0145, gh_0145);
        let efgh_15 = _mm256_unpackhi_epi64(ef_0145, gh_0145);
        let efgh_26 = _mm256_unpacklo_epi64(ef_2367, gh_2367);
        let efgh_37 = _mm256_unpackhi_epi64(ef_2367, gh_2367);
        x[0] = _mm256_permute2x128_si256::<0x20>(abcd_04, efgh_04);
        x[1] = _mm256_permute2x128_si256::<0x20>(abcd_15, efgh_15);
        x[2] = _mm256_permute2x128_si256::<0x20>(abcd_26, efgh_26);
        x[3] = _mm256_permute2x128_si256::<0x20>(abcd_37, efgh_37);
        x[4] = _mm256_permute2x128_si256::<0x31>(abcd_04, efgh_04);
        x[5] = _mm256_permute2x128_si256::<0x31>(abcd_15, efgh_15);
        x[6] = _mm256_permute2x128_si256::<0x31>(abcd_26, efgh_26);
        x[7] = _mm256_permute2x128_si256::<0x31>(abcd_37, efgh_37);
    }
}

/// # Safety
/// The CPU must support avx2.
#[target_feature(enable = "avx2")]
unsafe fn compress8(key: &[u32; 8], cv: &mut [[u32; N]; 8], blocks: &[&[u8; BLOCK_LEN]; N], p: &Params<N>) {
    let mut lo = [_mm256_setzero_si256(); 8];
    let mut hi = [_mm256_setzero_si256(); 8];
    for (l, block) in blocks.iter().enumerate() {
        // SAFETY: `block` is a reference to 64 readable bytes; unaligned loads
        // of bytes 0..32 and 32..64.
        unsafe {
            lo[l] = _mm256_loadu_si256(block.as_ptr().cast());
            hi[l] = _mm256_loadu_si256(block.as_ptr().add(32).cast());
        }
    }
    transpose(&mut lo);
    transpose(&mut hi);
    let mut m = [_mm256_setzero_si256(); 16];
    m[..8].copy_from_slice(&lo);
    m[8..].copy_from_slice(&hi);

    // Lanes to restart from the key: bit l of `reset` into all of lane l.
    let bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let reset = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(p.reset as i32), bit), bit);
    let mut v = [_mm256_setzero_si256(); 16];
    for w in 0..8 {
        // SAFETY: `cv[w]` is 8 readable u32s; unaligned load.
        let c = unsafe { _mm256_loadu_si256(cv[w].as_ptr().cast()) };
        v[w] = _mm256_blendv_epi8(c, _mm256_set1_epi32(key[w] as i32), reset);
        if w < 4 {
            v[8 + w] = _mm256_set1_epi32(IV[w] as i32);
        }
    }
    // SAFETY (three loads): each array is 8 readable u32s; unaligned loads.
    unsafe {
        v[12] = _mm256_loadu_si256(p.counter.as_ptr().cast());
        v[14] = _mm256_loadu_si256(p.block_len.as_ptr().cast());
        v[15] = _mm256_loadu_si256(p.flags.as_ptr().cast());
    }
    round(&mut v, &m, 0);
    round(&mut v, &m, 1);
    round(&mut v, &m, 2);
    round(&mut v, &m, 3);
    round(&mut v, &m, 4);
    round(&mut v, &m, 5);
    round(&mut v, &m, 6);
    for w in 0..8 {
        // SAFETY: `cv[w]` is 8 writable u32s; unaligned store.
        unsafe { _mm256_storeu_si256(cv[w].as_mut_ptr().cast(), xor(v[w], v[w + 8])) };
    }
}

/// # Safety
/// The CPU must support avx2.
#[target_feature(enable = "avx2")]
unsafe fn store_cvs8(cv: &[[u32; N]; 8], out: &mut [[u8; 32]; N]) {
    let mut c = [_mm256_setzero_si256(); 8];
    for (v, row) in c.iter_mut().zip(cv) {
        // SAFETY: `row` is 8 readable u32s; unaligned load.
        *v = unsafe { _mm256_loadu_si256(row.as_ptr().cast()) };
    }
    transpose(&mut c);
    for (v, o) in c.iter().zip(out) {
        // SAFETY: `o` is 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), *v) };
    }
}
