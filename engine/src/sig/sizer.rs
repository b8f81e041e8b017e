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
static LEARNED: Mutex<[Option<f64>; SLOTS]> = Mutex::new([None; SLOTS]);

/// Batch sizes worth trying (the bench covers 1..4096).
pub const CANDIDATES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];
/// The slot that measures [`Method::Lanes`].
const LANES: usize = CANDIDATES.len();
const SLOTS: usize = CANDIDATES.len() + 1;

/// How a run of zip215 signatures is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Each signature on its own, in SIMD lanes ([`super::verify_many_in_lanes`]).
    Lanes,
    /// Batch equations over this many signatures ([`super::verify_many`]).
    Batch(usize),
}

/// Picks how each run of zip215 signatures is verified ([`Method`]): a fixed
/// batch size, or one learned from measured cost per signature across
/// candidate sizes (and the lanes), probing the others now and then, and
/// charging each size for the chance that a batch holds an invalid
/// signature (such a batch fails as a whole and is redone in lanes).
#[derive(Debug, Clone)]
pub struct BatchSizer {
    fixed: Option<usize>,
    /// Whether [`Method::Lanes`] is a candidate (the CPU has lanes).
    lanes: bool,
    /// Nanoseconds per signature per slot (candidate sizes, then lanes), once measured.
    cost: [Option<f64>; SLOTS],
    /// Share of invalid signatures seen lately (an exponential average).
    invalid_rate: f64,
    calls: u64,
    next_probe: usize,
}

/// A method to use now, and which slot it measures (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The method to use.
    pub method: Method,
    slot: Option<usize>,
    first: bool,
}

impl Choice {
    /// Lanes, never measured before: the caller may measure them on part of
    /// its signatures and ask again for the rest.
    pub fn is_first_lanes(&self) -> bool {
        self.first && self.method == Method::Lanes
    }
}

impl Default for BatchSizer {
    fn default() -> Self {
        BatchSizer {
            fixed: None,
            lanes: super::lanes::Lanes::best().is_some(),
            cost: [None; SLOTS],
            invalid_rate: 0.0,
            calls: 0,
            next_probe: 0,
        }
    }
}

impl BatchSizer {
    /// Learns the method and size from measurements, starting from what
    /// earlier sizers of this process learned.
    pub fn new() -> Self {
        let cost = *LEARNED.lock().unwrap_or_else(|e| e.into_inner());
        BatchSizer { cost, ..Self::default() }
    }

    /// Always uses batches of `size` (benches, tests, `--batch-size`).
    pub fn fixed(size: usize) -> Self {
        BatchSizer { fixed: Some(size.max(1)), ..Self::default() }
    }

    /// The method to use for `total` signatures over `threads` workers.
    pub fn choose(&mut self, total: usize, threads: usize) -> Choice {
        if let Some(size) = self.fixed {
            return Choice { method: Method::Batch(size), slot: None, first: false };
        }
        self.calls += 1;
        if self.lanes && self.cost[LANES].is_none() {
            return Choice { method: Method::Lanes, slot: Some(LANES), first: true };
        }
        // A chunk larger than this would leave a worker idle.
        let cap = total.div_ceil(threads.max(1)).max(1);
        let fits = |i: &usize| *i == LANES || CANDIDATES[*i] <= cap;
        let best_batch = self.best_batch_slot(usize::MAX);
        // Throughput rises with size up to a peak: walk down from the
        // largest size only while each smaller one keeps winning.
        let worth_trying = |i: usize| {
            self.cost[i].is_none() && (i + 1 == CANDIDATES.len() || !fits(&(i + 1)) || best_batch == Some(i + 1))
        };
        let unmeasured = (0..CANDIDATES.len()).rev().filter(fits).find(|&i| worth_trying(i));
        let slot = unmeasured.or_else(|| {
            if self.calls.is_multiple_of(8) {
                // Re-measure lanes, a neighbour of the best size, or the best size.
                let b = self.best_batch_slot(cap)?;
                self.next_probe += 1;
                let i = match self.next_probe % 4 {
                    0 => b.saturating_sub(1),
                    1 => (b + 1).min(CANDIDATES.len() - 1),
                    2 if self.lanes => LANES,
                    _ => b,
                };
                Some(i).filter(fits)
            } else {
                self.best_slot(cap)
            }
        });
        let (method, slot) = match slot {
            Some(LANES) => (Method::Lanes, Some(LANES)),
            Some(i) => (Method::Batch(CANDIDATES[i]), Some(i)),
            None => (Method::Batch(self.best_batch_slot(cap).map_or(cap, |i| CANDIDATES[i])), None),
        };
        let method = match method {
            // Spread evenly: a whole number of chunks per worker.
            Method::Batch(size) => {
                let threads = threads.max(1);
                let chunks = total.div_ceil(size).div_ceil(threads) * threads;
                Method::Batch(total.div_ceil(chunks).max(1))
            }
            lanes => lanes,
        };
        Choice { method, slot, first: false }
    }

    /// Records how long `sigs` signatures took with `choice`, `invalid` of
    /// them invalid.
    ///
    /// With lanes on this CPU, a failed batch equation sends the whole batch
    /// to the lanes, so a batch size costs what it costs on valid
    /// signatures plus, when its equation fails, the lanes' cost: what is
    /// kept per size is its cost on valid signatures (a call that met
    /// invalid ones counts less the lanes' share), and the choice adds the lanes' cost times the chance
    /// that a batch of that size holds an invalid signature at the share
    /// seen lately. A burst of invalid signatures moves the choice at once
    /// to smaller batches or to the lanes, and back when it ends.
    pub fn record(&mut self, choice: Choice, sigs: usize, invalid: usize, elapsed: Duration) {
        if sigs == 0 {
            return;
        }
        let share = invalid as f64 / sigs as f64;
        self.invalid_rate = 0.5 * self.invalid_rate + 0.5 * share;
        let Some(i) = choice.slot else { return };
        let mut ns = elapsed.as_nanos() as f64 / sigs as f64;
        if let (true, true, Some(lanes)) = (i != LANES, invalid > 0, self.cost[LANES].filter(|_| self.lanes)) {
            // Take out what the failed equations cost, as `expected` adds it.
            let fails = 1.0 - (1.0 - share).powi(CANDIDATES[i] as i32);
            ns = (ns - fails * lanes).max(0.1 * ns);
        }
        self.cost[i] = Some(match self.cost[i] {
            Some(old) => 0.5 * old + 0.5 * ns,
            None => ns,
        });
        LEARNED.lock().unwrap_or_else(|e| e.into_inner())[i] = self.cost[i];
    }

    /// Expected nanoseconds per signature of slot `i` at the share of
    /// invalid signatures seen lately (see [`BatchSizer::record`]).
    fn expected(&self, i: usize) -> Option<f64> {
        let cost = self.cost[i]?;
        if i == LANES || !self.lanes {
            return Some(cost);
        }
        let lanes = self.cost[LANES]?;
        let fails = 1.0 - (1.0 - self.invalid_rate).powi(CANDIDATES[i] as i32);
        Some(cost + fails * lanes)
    }

    /// The fastest method measured so far.
    pub fn best(&self) -> Option<Method> {
        if let Some(size) = self.fixed {
            return Some(Method::Batch(size));
        }
        self.best_slot(usize::MAX).map(|i| if i == LANES { Method::Lanes } else { Method::Batch(CANDIDATES[i]) })
    }

    /// The fastest slot measured so far, lanes included.
    fn best_slot(&self, cap: usize) -> Option<usize> {
        let lanes = self.cost[LANES].filter(|_| self.lanes).map(|c| (LANES, c));
        self.batch_costs(cap).chain(lanes).min_by(|a, b| a.1.total_cmp(&b.1)).map(|(i, _)| i)
    }

    fn best_batch_slot(&self, cap: usize) -> Option<usize> {
        self.batch_costs(cap).min_by(|a, b| a.1.total_cmp(&b.1)).map(|(i, _)| i)
    }

    fn batch_costs(&self, cap: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        (0..CANDIDATES.len()).filter(move |&i| CANDIDATES[i] <= cap).filter_map(|i| self.expected(i).map(|c| (i, c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(c: Choice) -> usize {
        match c.method {
            Method::Batch(n) => n,
            Method::Lanes => panic!("lanes chosen: {c:?}"),
        }
    }

    #[test]
    fn tries_every_candidate_largest_first_then_keeps_the_fastest() {
        let mut s = BatchSizer { lanes: false, ..BatchSizer::default() };
        let mut tried = Vec::new();
        for _ in 0..5 {
            let c = s.choose(1 << 20, 2);
            tried.push(CANDIDATES[c.slot.unwrap()]);
            // Pretend time per signature falls with size down to 512, then rises.
            let ns = (CANDIDATES.iter().position(|&x| x == CANDIDATES[c.slot.unwrap()]).unwrap() as i64 - 3).abs() + 10;
            s.record(c, 1000, 0, Duration::from_nanos(ns as u64 * 1000));
        }
        // 4096, 2048, 1024, 512 each improve; 256 is worse, so 128 and 64 are never tried.
        assert_eq!(tried, [4096, 2048, 1024, 512, 256]);
        assert_eq!(s.best(), Some(Method::Batch(512)));
        let sizes: Vec<usize> = (0..12).map(|_| CANDIDATES[s.choose(1 << 20, 2).slot.unwrap()]).collect();
        assert!(sizes.iter().filter(|&&x| x == 512).count() >= 10, "{sizes:?}");
        assert!(!sizes.contains(&64) && !sizes.contains(&128), "{sizes:?}");
    }

    #[test]
    fn never_starves_workers_and_fixed_is_fixed() {
        let mut s = BatchSizer { lanes: false, ..BatchSizer::default() };
        assert_eq!(size(s.choose(100, 2)), 50);
        assert!(size(s.choose(1000, 2)) <= 500);
        // 20,000 signatures on 2 workers: chunks come in pairs.
        let c = s.choose(20_000, 2);
        assert_eq!(20_000usize.div_ceil(size(c)) % 2, 0, "{c:?}");
        let mut f = BatchSizer::fixed(77);
        assert_eq!(size(f.choose(10, 2)), 77);
    }

    #[test]
    fn lanes_are_measured_first_and_kept_while_fastest_with_batches_re_measured() {
        let mut s = BatchSizer { lanes: true, ..BatchSizer::default() };
        let c = s.choose(1 << 20, 2);
        assert_eq!(c.method, Method::Lanes);
        s.record(c, 1000, 0, Duration::from_micros(10_000)); // 10 µs a signature
        // Every batch size is slower (12 µs) than lanes.
        let mut methods = Vec::new();
        for _ in 0..40 {
            let c = s.choose(1 << 20, 2);
            methods.push(c.method);
            let ns = if c.method == Method::Lanes { 10_000 } else { 12_000 };
            s.record(c, 1000, 0, Duration::from_nanos(ns * 1000));
        }
        assert_eq!(s.best(), Some(Method::Lanes));
        let lanes = methods.iter().filter(|&&m| m == Method::Lanes).count();
        assert!(lanes >= 28, "{methods:?}");
        // Batches got faster (the invalid signatures stopped): they win.
        for _ in 0..200 {
            let c = s.choose(1 << 20, 2);
            let ns = if c.method == Method::Lanes { 10_000 } else { 5_000 };
            s.record(c, 1000, 0, Duration::from_nanos(ns * 1000));
        }
        assert!(matches!(s.best(), Some(Method::Batch(_))), "{:?}", s.best());
    }

    #[test]
    fn invalid_signatures_move_the_choice_to_lanes_at_once_and_back() {
        // Lanes 10 µs a signature; batches on valid signatures from 10 µs
        // (64) down to 4 µs (4096).
        let cost = |c: Choice| match c.method {
            Method::Lanes => 10_000,
            Method::Batch(n) => 4_000 + 1_000 * (12 - n.ilog2() as u64),
        };
        let mut s = BatchSizer { lanes: true, ..BatchSizer::default() };
        for _ in 0..30 {
            let c = s.choose(1 << 20, 2);
            s.record(c, 1000, 0, Duration::from_nanos(cost(c) * 1000));
        }
        assert_eq!(s.best(), Some(Method::Batch(4096)));
        // A call with 1% invalid: a batch of 4096 now nearly always fails
        // (4 + 10 µs), so the choice moves to the lanes at once.
        let c = s.choose(1 << 20, 2);
        s.record(c, 1000, 10, Duration::from_nanos(14_000 * 1000));
        assert_eq!(s.best(), Some(Method::Lanes));
        for _ in 0..5 {
            let c = s.choose(1 << 20, 2);
            s.record(c, 1000, 10, Duration::from_nanos(cost(c) * 1000));
        }
        assert_eq!(s.best(), Some(Method::Lanes));
        // All valid again: back to the largest batches.
        for _ in 0..16 {
            let c = s.choose(1 << 20, 2);
            s.record(c, 1000, 0, Duration::from_nanos(cost(c) * 1000));
        }
        assert_eq!(s.best(), Some(Method::Batch(4096)));
    }
}
