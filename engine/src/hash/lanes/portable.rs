//! Portable reference kernel: `LANES` messages per step in plain Rust arrays
//! (`state[word][lane]`), which the compiler vectorises with whatever the
//! baseline target offers (SSE2 on x86_64, NEON on aarch64).

use super::{BLOCK_LEN, IV, Kernel, MSG_SCHEDULE, Params};

pub(crate) const LANES: usize = 4;

#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl Kernel<LANES> for Portable {
    #[inline]
    fn compress(
        self,
        key: &[u32; 8],
        cv: &mut [[u32; LANES]; 8],
        blocks: &[&[u8; BLOCK_LEN]; LANES],
        p: &Params<LANES>,
    ) {
        compress_lanes(key, cv, blocks, p)
    }
}

type Vec<const N: usize> = [u32; N];

#[inline(always)]
fn add<const N: usize>(a: Vec<N>, b: Vec<N>) -> Vec<N> {
    core::array::from_fn(|l| a[l].wrapping_add(b[l]))
}

#[inline(always)]
fn xor_rot<const N: usize>(a: Vec<N>, b: Vec<N>, r: u32) -> Vec<N> {
    core::array::from_fn(|l| (a[l] ^ b[l]).rotate_right(r))
}

#[inline(always)]
fn g<const N: usize>(v: &mut [Vec<N>; 16], a: usize, b: usize, c: usize, d: usize, x: Vec<N>, y: Vec<N>) {
    v[a] = add(add(v[a], v[b]), x);
    v[d] = xor_rot(v[d], v[a], 16);
    v[c] = add(v[c], v[d]);
    v[b] = xor_rot(v[b], v[c], 12);
    v[a] = add(add(v[a], v[b]), y);
    v[d] = xor_rot(v[d], v[a], 8);
    v[c] = add(v[c], v[d]);
    v[b] = xor_rot(v[b], v[c], 7);
}

#[inline(always)]
fn round<const N: usize>(v: &mut [Vec<N>; 16], m: &[Vec<N>; 16], r: usize) {
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

/// The [`Kernel`] contract for any lane count, one word vector per array.
pub(crate) fn compress_lanes<const N: usize>(
    key: &[u32; 8],
    cv: &mut [[u32; N]; 8],
    blocks: &[&[u8; BLOCK_LEN]; N],
    p: &Params<N>,
) {
    // Transpose: m[w][l] = word w of lane l's block.
    let mut m = [[0u32; N]; 16];
    for (l, block) in blocks.iter().enumerate() {
        for (w, bytes) in block.chunks_exact(4).enumerate() {
            m[w][l] = u32::from_le_bytes(bytes.try_into().unwrap());
        }
    }
    for (w, row) in cv.iter_mut().enumerate() {
        for (l, x) in row.iter_mut().enumerate() {
            if p.reset >> l & 1 == 1 {
                *x = key[w];
            }
        }
    }
    let mut v = [[0u32; N]; 16];
    v[..8].copy_from_slice(cv);
    for w in 0..4 {
        v[8 + w] = [IV[w]; N];
    }
    v[12] = p.counter;
    v[13] = [0; N];
    v[14] = p.block_len;
    v[15] = p.flags;
    for r in 0..7 {
        round(&mut v, &m, r);
    }
    for w in 0..8 {
        cv[w] = core::array::from_fn(|l| v[w][l] ^ v[w + 8][l]);
    }
}
