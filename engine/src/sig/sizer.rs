//! Picks the zip215 batch size by measuring: the best size depends on the
//! CPU's curve backend, the core count and the data (how many signatures
//! share a key), so it is learned from the signatures being verified rather
//! than fixed.
//!
//! Candidate sizes are tried largest first (large batches are usually
//! fastest, and a short run may never get past the first try), walking down
//! only while each smaller size beats the larger ones; then the fastest
//! (lowest time per signature, an exponential average) is used, with every
//! eighth call re-measuring the best or a neighbour so the choice follows
//! the data. What a sizer learns is shared with the sizers created
//! after it in the same process (a node or a bench verifies many times).

use std::sync::Mutex;
use std::time::Duration;

/// What sizers learned so far in this process.
static LEARNED: Mutex<[Option<f64>; CANDIDATES.len()]> = Mutex::new([None; CANDIDATES.len()]);

/// Batch sizes worth trying (the bench covers 1..4096).
pub const CANDIDATES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];

#[derive(Debug, Clone)]
pub struct BatchSizer {
    fixed: Option<usize>,
    /// Nanoseconds per signature per candidate, once measured.
    cost: [Option<f64>; CANDIDATES.len()],
    calls: u64,
    next_probe: usize,
}

/// A size to use now, and which candidate it measures (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub size: usize,
    slot: Option<usize>,
}

impl Default for BatchSizer {
    fn default() -> Self {
        BatchSizer { fixed: None, cost: [None; CANDIDATES.len()], calls: 0, next_probe: 0 }
    }
}

impl BatchSizer {
    /// Learns the size from measurements, starting from what earlier
    /// sizers of this process learned.
    pub fn new() -> Self {
        let cost = *LEARNED.lock().unwrap_or_else(|e| e.into_inner());
        BatchSizer { cost, ..Self::default() }
    }

    /// Always uses `size` (benches, tests, `--batch-size`).
    pub fn fixed(size: usize) -> Self {
        BatchSizer { fixed: Some(size.max(1)), ..Self::default() }
    }

    /// The size to use for `total` signatures over `threads` workers.
    pub fn choose(&mut self, total: usize, threads: usize) -> Choice {
        if let Some(size) = self.fixed {
            return Choice { size, slot: None };
        }
        self.calls += 1;
        // A chunk larger than this would leave a worker idle.
        let cap = total.div_ceil(threads.max(1)).max(1);
        let fits = |i: &usize| CANDIDATES[*i] <= cap;
        let best = self.best_slot(usize::MAX);
        // Throughput rises with size up to a peak: walk down from the
        // largest size only while each smaller one keeps winning.
        let worth_trying =
            |i: usize| self.cost[i].is_none() && (i + 1 == CANDIDATES.len() || !fits(&(i + 1)) || best == Some(i + 1));
        let unmeasured = (0..CANDIDATES.len()).rev().filter(fits).find(|&i| worth_trying(i));
        let slot = unmeasured.or_else(|| {
            if self.calls.is_multiple_of(8) {
                // Re-measure a neighbour of the best, or the best itself.
                let b = self.best_slot(cap)?;
                self.next_probe += 1;
                let i = match self.next_probe % 3 {
                    0 => b.saturating_sub(1),
                    1 => (b + 1).min(CANDIDATES.len() - 1),
                    _ => b,
                };
                Some(i).filter(fits)
            } else {
                self.best_slot(cap)
            }
        });
        let (size, slot) = match slot {
            Some(i) => (CANDIDATES[i], Some(i)),
            None => (self.best_slot(cap).map_or(cap, |i| CANDIDATES[i]), None),
        };
        // Spread evenly: a whole number of chunks per worker.
        let threads = threads.max(1);
        let chunks = total.div_ceil(size).div_ceil(threads) * threads;
        Choice { size: total.div_ceil(chunks).max(1), slot }
    }

    /// Records how long `sigs` signatures took at `choice`.
    pub fn record(&mut self, choice: Choice, sigs: usize, elapsed: Duration) {
        let Some(i) = choice.slot else { return };
        if sigs == 0 {
            return;
        }
        let ns = elapsed.as_nanos() as f64 / sigs as f64;
        self.cost[i] = Some(match self.cost[i] {
            Some(old) => 0.5 * old + 0.5 * ns,
            None => ns,
        });
        LEARNED.lock().unwrap_or_else(|e| e.into_inner())[i] = self.cost[i];
    }

    /// The fastest size measured so far.
    pub fn best(&self) -> Option<usize> {
        self.fixed.or_else(|| self.best_slot(usize::MAX).map(|i| CANDIDATES[i]))
    }

    fn best_slot(&self, cap: usize) -> Option<usize> {
        (0..CANDIDATES.len())
            .filter(|&i| CANDIDATES[i] <= cap)
            .filter_map(|i| self.cost[i].map(|c| (i, c)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_every_candidate_largest_first_then_keeps_the_fastest() {
        let mut s = BatchSizer::default();
        let mut tried = Vec::new();
        for _ in 0..5 {
            let c = s.choose(1 << 20, 2);
            tried.push(CANDIDATES[c.slot.unwrap()]);
            // Pretend time per signature falls with size down to 512, then rises.
            let ns = (CANDIDATES.iter().position(|&x| x == CANDIDATES[c.slot.unwrap()]).unwrap() as i64 - 3).abs() + 10;
            s.record(c, 1000, Duration::from_nanos(ns as u64 * 1000));
        }
        // 4096, 2048, 1024, 512 each improve; 256 is worse, so 128 and 64 are never tried.
        assert_eq!(tried, [4096, 2048, 1024, 512, 256]);
        assert_eq!(s.best(), Some(512));
        let sizes: Vec<usize> = (0..12).map(|_| CANDIDATES[s.choose(1 << 20, 2).slot.unwrap()]).collect();
        assert!(sizes.iter().filter(|&&x| x == 512).count() >= 10, "{sizes:?}");
        assert!(!sizes.contains(&64) && !sizes.contains(&128), "{sizes:?}");
    }

    #[test]
    fn never_starves_workers_and_fixed_is_fixed() {
        let mut s = BatchSizer::default();
        assert_eq!(s.choose(100, 2).size, 50);
        assert!(s.choose(1000, 2).size <= 500);
        // 20,000 signatures on 2 workers: chunks come in pairs.
        let c = s.choose(20_000, 2);
        assert_eq!(20_000usize.div_ceil(c.size) % 2, 0, "{c:?}");
        let mut f = BatchSizer::fixed(77);
        assert_eq!(f.choose(10, 2).size, 77);
    }
}
