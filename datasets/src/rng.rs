//! Deterministic randomness: every stream is a ChaCha8 keyed by BLAKE3 over
//! the seed, a purpose and indices, so what a block or transaction gets never
//! depends on the order in which threads happen to run. Integer sampling is
//! done here (not with `rand`'s distributions) so the bytes stay the same
//! even if `rand` changes its algorithms.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 32 bytes derived from `purpose` and `parts` (e.g. seed, height, index).
pub(crate) fn derive(purpose: &str, parts: &[u64]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("vigil gen v1 2026-01 derived material");
    h.update(&(purpose.len() as u64).to_le_bytes());
    h.update(purpose.as_bytes());
    for p in parts {
        h.update(&p.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// A small wrapper over ChaCha8 with the few samplers the generator needs.
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub(crate) fn new(purpose: &str, parts: &[u64]) -> Self {
        Rng(ChaCha8Rng::from_seed(derive(purpose, parts)))
    }

    pub(crate) fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`), by a 128-bit multiply (bias < 2^-32 for
    /// any `n` the generator uses).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.u64(),
        }
    }

    /// Uniform in `lo..=hi` for signed values.
    pub(crate) fn irange(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `num / den`.
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_stay_in_range_and_are_reproducible() {
        let mut a = Rng::new("t", &[1, 2]);
        let mut b = Rng::new("t", &[1, 2]);
        for _ in 0..1000 {
            let x = a.range(5, 9);
            assert!((5..=9).contains(&x));
            assert_eq!(x, b.range(5, 9));
            let y = a.irange(-3, 3);
            assert!((-3..=3).contains(&y));
            b.irange(-3, 3);
        }
        assert_eq!(a.range(0, u64::MAX), b.range(0, u64::MAX));
        assert_ne!(derive("t", &[1, 2]), derive("t", &[2, 1]));
        assert_ne!(derive("t", &[1]), derive("u", &[1]));
    }
}
