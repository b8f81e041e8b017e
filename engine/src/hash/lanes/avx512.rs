//! AVX-512F kernel: 16 messages per step, lane `l` of each `__m512i` is
//! message `l`. Native 32-bit rotates (`vprord`); message words are loaded
//! as 16 rows of 64 bytes and transposed in registers (4 shuffle stages).

use core::arch::x86_64::*;

use super::{BLOCK_LEN, IV, Kernel, MSG_SCHEDULE, Params};

const N: usize = 16;

/// Proof that the CPU has AVX-512F: only [`Avx512::new`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Avx512 {
    _detected: (),
}

impl Avx512 {
    pub(crate) fn new() -> Option<Self> {
        std::is_x86_feature_detected!("avx512f").then_some(Avx512 { _detected: () })
    }
}

impl Kernel<N> for Avx512 {
    #[inline]
    fn compress(self, key: &[u32; 8], cv: &mut [[u32; N]; 8], blocks: &[&[u8; BLOCK_LEN]; N], p: &Params<N>) {
        // SAFETY: an `Avx512` exists only if run-time detection found avx512f.
        unsafe { compress16(key, cv, blocks, p) }
    }

    #[inline(always)]
    fn with_features<R>(self, f: impl FnOnce() -> R) -> R {
        #[target_feature(enable = "avx512f")]
        fn call<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: an `Avx512` exists only if run-time detection found avx512f.
        unsafe { call(f) }
    }

    #[inline]
    fn store_cvs(self, cv: &[[u32; N]; 8], out: &mut [[u8; 32]; N]) {
        // SAFETY: an `Avx512` exists only if run-time detection found avx512f.
        unsafe { store_cvs16(cv, out) }
    }
}

// The helpers below are `#[inline(always)]` and only ever called from
// `compress16`, which enables avx512f, so they are compiled with it.

#[inline(always)]
fn add(a: __m512i, b: __m512i) -> __m512i {
    // SAFETY: only inlined into avx512f code (see above).
    unsafe { _mm512_add_epi32(a, b) }
}

#[inline(always)]
fn xor_ror<const R: i32>(a: __m512i, b: __m512i) -> __m512i {
    // SAFETY: only inlined into avx512f code (see above).
    unsafe { _mm512_ror_epi32::<R>(_mm512_xor_si512(a, b)) }
}

/// Four G functions side by side (columns or diagonals), one instruction
/// of each in turn so the four independent chains interleave.
#[inline(always)]
fn g4(v: &mut [__m512i; 16], idx: [[usize; 4]; 4], x: [__m512i; 4], y: [__m512i; 4]) {
    let [a, b, c, d] = idx;
    for i in 0..4 {
        v[a[i]] = add(add(v[a[i]], v[b[i]]), x[i]);
    }
    for i in 0..4 {
        v[d[i]] = xor_ror::<16>(v[d[i]], v[a[i]]);
    }
    for i in 0..4 {
        v[c[i]] = add(v[c[i]], v[d[i]]);
    }
    for i in 0..4 {
        v[b[i]] = xor_ror::<12>(v[b[i]], v[c[i]]);
    }
    for i in 0..4 {
        v[a[i]] = add(add(v[a[i]], v[b[i]]), y[i]);
    }
    for i in 0..4 {
        v[d[i]] = xor_ror::<8>(v[d[i]], v[a[i]]);
    }
    for i in 0..4 {
        v[c[i]] = add(v[c[i]], v[d[i]]);
    }
    for i in 0..4 {
        v[b[i]] = xor_ror::<7>(v[b[i]], v[c[i]]);
    }
}

#[inline(always)]
fn round(v: &mut [__m512i; 16], m: &[__m512i; 16], r: usize) {
    let s = &MSG_SCHEDULE[r];
    let cols = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]];
    let diags = [[0, 1, 2, 3], [5, 6, 7, 4], [10, 11, 8, 9], [15, 12, 13, 14]];
    g4(v, cols, [m[s[0]], m[s[2]], m[s[4]], m[s[6]]], [m[s[1]], m[s[3]], m[s[5]], m[s[7]]]);
    g4(v, diags, [m[s[8]], m[s[10]], m[s[12]], m[s[14]]], [m[s[9]], m[s[11]], m[s[13]], m[s[15]]]);
}

/// 16x16 transpose of 32-bit words: in, `x[r]` = row `r`; out, `x[w]` lane `r`
/// = old `x[r]` lane `w`.
#[inline(always)]
fn transpose(x: &mut [__m512i; 16]) {
    // SAFETY: only inlined into avx512f code (see above).
    unsafe {
        let mut t = [_mm512_setzero_si512(); 16];
        // 32-bit interleave of row pairs.
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
        }
        // 64-bit interleave: rows 4i..4i+4.
        for i in 0..4 {
            let (a0, a2, c0, c2) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            x[4 * i] = _mm512_unpacklo_epi64(a0, c0);
            x[4 * i + 1] = _mm512_unpackhi_epi64(a0, c0);
            x[4 * i + 2] = _mm512_unpacklo_epi64(a2, c2);
            x[4 * i + 3] = _mm512_unpackhi_epi64(a2, c2);
        }
        // 128-bit interleave of row groups 0-3 with 4-7 and 8-11 with 12-15.
        for h in 0..2 {
            let b = 8 * h;
            for j in 0..4 {
                t[b + j] = _mm512_shuffle_i32x4::<0x88>(x[b + j], x[b + 4 + j]);
                t[b + 4 + j] = _mm512_shuffle_i32x4::<0xdd>(x[b + j], x[b + 4 + j]);
            }
        }
        // And once more, rows 0-7 with 8-15.
        for j in 0..8 {
            x[j] = _mm512_shuffle_i32x4::<0x88>(t[j], t[8 + j]);
            x[8 + j] = _mm512_shuffle_i32x4::<0xdd>(t[j], t[8 + j]);
        }
    }
}

/// # Safety
/// The CPU must support avx512f.
#[target_feature(enable = "avx512f")]
unsafe fn compress16(key: &[u32; 8], cv: &mut [[u32; N]; 8], blocks: &[&[u8; BLOCK_LEN]; N], p: &Params<N>) {
    let mut m = [_mm512_setzero_si512(); 16];
    for (row, block) in m.iter_mut().zip(blocks) {
        // SAFETY: `block` is a reference to 64 readable bytes; unaligned load.
        *row = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    }
    transpose(&mut m);
    let reset = p.reset as __mmask16;
    let mut v = [_mm512_setzero_si512(); 16];
    for w in 0..8 {
        // SAFETY: `cv[w]` is 16 readable u32s; unaligned load.
        let c = unsafe { _mm512_loadu_si512(cv[w].as_ptr().cast()) };
        v[w] = _mm512_mask_blend_epi32(reset, c, _mm512_set1_epi32(key[w] as i32));
        if w < 4 {
            v[8 + w] = _mm512_set1_epi32(IV[w] as i32);
        }
    }
    // SAFETY (three loads): each array is 16 readable u32s; unaligned loads.
    unsafe {
        v[12] = _mm512_loadu_si512(p.counter.as_ptr().cast());
        v[14] = _mm512_loadu_si512(p.block_len.as_ptr().cast());
        v[15] = _mm512_loadu_si512(p.flags.as_ptr().cast());
    }
    round(&mut v, &m, 0);
    round(&mut v, &m, 1);
    round(&mut v, &m, 2);
    round(&mut v, &m, 3);
    round(&mut v, &m, 4);
    round(&mut v, &m, 5);
    round(&mut v, &m, 6);
    for w in 0..8 {
        // SAFETY: `cv[w]` is 16 writable u32s; unaligned store.
        unsafe { _mm512_storeu_si512(cv[w].as_mut_ptr().cast(), _mm512_xor_si512(v[w], v[w + 8])) };
    }
}

/// # Safety
/// The CPU must support avx512f.
#[target_feature(enable = "avx512f")]
unsafe fn store_cvs16(cv: &[[u32; N]; 8], out: &mut [[u8; 32]; N]) {
    let mut c = [_mm512_setzero_si512(); 8];
    for (v, row) in c.iter_mut().zip(cv) {
        // SAFETY: `row` is 16 readable u32s; unaligned load.
        *v = unsafe { _mm512_loadu_si512(row.as_ptr().cast()) };
    }
    // 32-bit then 64-bit interleaves: in 128-bit lane k, `lo[j]` holds words
    // 0..4 and `hi[j]` words 4..8 of message 4k + j.
    let mut t = [_mm512_setzero_si512(); 8];
    for i in 0..4 {
        t[2 * i] = _mm512_unpacklo_epi32(c[2 * i], c[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(c[2 * i], c[2 * i + 1]);
    }
    let mut lo = [_mm512_setzero_si512(); 4];
    let mut hi = [_mm512_setzero_si512(); 4];
    for (h, dst) in [&mut lo, &mut hi].into_iter().enumerate() {
        let (a0, a2, c0, c2) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
        dst[0] = _mm512_unpacklo_epi64(a0, c0);
        dst[1] = _mm512_unpackhi_epi64(a0, c0);
        dst[2] = _mm512_unpacklo_epi64(a2, c2);
        dst[3] = _mm512_unpackhi_epi64(a2, c2);
    }
    // Pair 128-bit lanes: messages 4k + j and 4(k + 1) + j in one register.
    let idx01 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    let idx23 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for j in 0..4 {
        for (k, idx) in [(0, idx01), (2, idx23)] {
            let r = _mm512_permutex2var_epi64(lo[j], idx, hi[j]);
            // SAFETY: `out[_]` are 32 writable bytes each; unaligned stores.
            unsafe {
                _mm256_storeu_si256(out[4 * k + j].as_mut_ptr().cast(), _mm512_castsi512_si256(r));
                _mm256_storeu_si256(out[4 * (k + 1) + j].as_mut_ptr().cast(), _mm512_extracti64x4_epi64::<1>(r));
            }
        }
    }
}
