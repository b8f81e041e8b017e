//! The hybrid's cost model: what each side is measured to cost (rates,
//! lines), what a splitter has learned, and the choice it makes for each
//! batch (see the [module documentation](super)).

use crate::sig::RuleSet;
use std::time::Duration;

/// Weight of the newest batch in every smoothed measurement.
pub const SMOOTHING: f64 = 0.3;
/// The GPU's first part (before anything is measured) when a batch is too
/// small to calibrate on.
const CALIBRATION: usize = 256;
/// Calibration on a splitter's first batch (large enough): prefixes of it on
/// the GPU alone, then at most `CALIBRATE_CPU` signatures on the CPU alone,
/// each timed; the rest of the batch is then split as the models say. (A fixed first split would leave almost the whole first
/// batches to one side while the other's part ramps up: on an H200 that
/// cost `auto` a quarter of `gpu`'s speed on a 10M-transaction chain.)
/// The GPU calibrates in two steps: a small part, then (if that took less
/// than `CALIBRATE_FAST` seconds) a large one, so its latency and its cost a
/// signature are told apart, and a slow GPU costs little to find out.
const CALIBRATE_GPU: [usize; 2] = [1_024, 16_384];
const CALIBRATE_FAST: f64 = 0.02;
const CALIBRATE_CPU: usize = 2_048;
/// A GPU part may always take this long by the models (besides `GROWTH`
/// times the largest part measured): larger parts are what fill a big GPU.
const CAP_SECONDS: f64 = 0.25;
/// A side this many times slower than the other alone gets probes only
/// every `SLOW_PROBE_EVERY` batches: its share of a split could gain little
/// and its probe costs the faster side (the CPU probing takes the cores
/// that feed the GPU).
const SLOW_SIDE: f64 = 8.0;
const SLOW_PROBE_EVERY: u64 = 256;
/// The smallest part worth sending to a side: smaller GPU parts go to the
/// CPU, smaller CPU parts to the GPU, and batches under twice this go all
/// to the CPU.
pub(super) const MIN_PART: usize = 64;
/// A GPU part is at most this many times the largest measured so far.
const GROWTH: usize = 4;
/// Every this many batches (per rule set), a side left out gets a probe
/// (and at the 2nd, 4th, 8th, ... batch).
const PROBE_EVERY: u64 = 32;
/// Every this many batches (per rule set), each side runs a batch alone if
/// that is predicted within `EXPLORE` times the best way's time.
const EXPLORE_EVERY: u64 = 64;
const EXPLORE: f64 = 2.5;
/// The same for a side never measured alone (its estimate, from its time
/// beside the other, is pessimistic).
const EXPLORE_FIRST: f64 = 8.0;
/// An exploration of the GPU alone goes up to this many times the largest
/// GPU part measured.
const EXPLORE_GROWTH: usize = 64;
/// A CPU probe is this fraction of the batch (at least `MIN_PART`).
const PROBE_DIVISOR: usize = 16;
/// The longest a failing GPU is left out, in batches.
const MAX_BACKOFF: u64 = 1024;

/// Seconds per signature, exponentially smoothed and weighted by batch size
/// (a ratio of smoothed sums: a batch of 10 signatures barely moves what
/// batches of 30,000 measured).
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    seconds: f64,
    signatures: f64,
}

impl Rate {
    fn observe(&mut self, signatures: usize, seconds: f64) {
        self.seconds = self.seconds * (1.0 - SMOOTHING) + seconds;
        self.signatures = self.signatures * (1.0 - SMOOTHING) + signatures as f64;
    }

    /// Seconds per signature, once measured.
    fn cost(&self) -> Option<f64> {
        (self.signatures > 0.0 && self.seconds > 0.0).then(|| self.seconds / self.signatures)
    }
}

/// `seconds = latency + signatures × cost`, fitted by exponentially
/// weighted least squares.
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    /// Σw, Σw·n, Σw·t, Σw·n², Σw·n·t.
    w: f64,
    n: f64,
    t: f64,
    nn: f64,
    nt: f64,
    /// The latency of the last fit whose sizes were spread enough to
    /// separate it from the cost (steady batches all have one size), if any.
    latency: Option<f64>,
}

impl Line {
    fn observe(&mut self, signatures: usize, seconds: f64) {
        let (n, t) = (signatures as f64, seconds);
        let keep = 1.0 - SMOOTHING;
        self.w = self.w * keep + 1.0;
        self.n = self.n * keep + n;
        self.t = self.t * keep + t;
        self.nn = self.nn * keep + n * n;
        self.nt = self.nt * keep + n * t;
        if let Some(latency) = self.regression_latency() {
            self.latency = Some(latency);
        }
    }

    fn means(&self) -> Option<(f64, f64)> {
        (self.w > 0.0 && self.n > 0.0 && self.t > 0.0).then(|| (self.n / self.w, self.t / self.w))
    }

    /// The intercept, when the sizes spread enough (a 10% coefficient of
    /// variation) to tell it from the slope.
    fn regression_latency(&self) -> Option<f64> {
        let (mean_n, mean_t) = self.means()?;
        let var_n = self.nn / self.w - mean_n * mean_n;
        (var_n > (0.1 * mean_n).powi(2)).then(|| {
            let slope = (self.nt / self.w - mean_n * mean_t) / var_n;
            (mean_t - slope * mean_n).max(0.0)
        })
    }

    /// (latency, seconds per signature), once measured: the line through
    /// the mean point with the latest separable latency (else `prior`'s,
    /// else none).
    fn fit(&self, prior: Option<f64>) -> Option<Fit> {
        let (mean_n, mean_t) = self.means()?;
        let latency = self.latency.or(prior).unwrap_or(0.0).clamp(0.0, mean_t);
        // Never free (where the device is not yet full, time hardly grows
        // with size; that must not promise it everything).
        let cost = ((mean_t - latency) / mean_n).max(mean_t / mean_n * 1e-3);
        Some((latency, cost))
    }
}

/// (latency in seconds, seconds per signature).
type Fit = (f64, f64);

#[derive(Debug, Clone, Copy, Default)]
struct Learned {
    /// The GPU on batches it verified whole, and beside the CPU.
    gpu_alone: Line,
    gpu_beside: Line,
    /// The largest GPU part measured, and the longest a GPU part took.
    gpu_largest: usize,
    gpu_longest: f64,
    /// Per rule set ([`rule_index`]): the CPU alone, and beside the GPU.
    cpu_alone: [Rate; 2],
    cpu_beside: [Rate; 2],
}

impl Learned {
    /// The GPU (alone, beside the CPU), each once measured; the latency is
    /// the device's, so one fit lends it to the other.
    fn gpu(&self) -> (Option<Fit>, Option<Fit>) {
        let (alone, beside) = (self.gpu_alone.latency, self.gpu_beside.latency);
        (self.gpu_alone.fit(beside), self.gpu_beside.fit(alone))
    }
}

fn rule_index(rules: RuleSet) -> usize {
    match rules {
        RuleSet::Zip215 => 0,
        RuleSet::Strict => 1,
    }
}

/// How long each side took on a batch, for [`HybridSplitter::record`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The GPU part: its size and its time, or `Err(size)` when it failed.
    pub gpu: Option<Result<(usize, Duration), usize>>,
    /// The CPU part: its size and its time (without a failed GPU part
    /// redone on the CPU).
    pub cpu: (usize, Duration),
}

/// The GPU's time for a part as measured: `latency + signatures /
/// per_second` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuModel {
    /// Fixed cost of a part, in seconds.
    pub latency: f64,
    /// Signatures a second beyond it.
    pub per_second: f64,
}

/// What the models predict for a batch, in seconds (NaN while nothing is
/// measured, infinite where a way cannot run).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Prediction {
    /// The GPU's part (the batch's first signatures) in the fastest way: 0
    /// (the CPU alone), the whole batch (the GPU alone) or a split.
    pub gpu_part: usize,
    /// The predicted time of that way.
    pub seconds: f64,
    /// The predicted time on the CPU alone.
    pub cpu_alone: f64,
    /// The predicted time on the GPU alone.
    pub gpu_alone: f64,
    /// The best split: (GPU part, seconds).
    pub split: (usize, f64),
}

/// Chooses each batch's split between the GPU and the CPU from measured
/// throughput; see the [module documentation](crate::hybrid).
#[derive(Debug, Clone, Default)]
pub struct HybridSplitter {
    /// A fixed share of each batch for the GPU (tests, benches).
    fixed: Option<f64>,
    learned: Learned,
    /// Batches planned, per rule set (for probes and explorations) and in
    /// all.
    batches: [u64; 2],
    total: u64,
    /// Consecutive GPU failures, and the batch before which the GPU is left
    /// out.
    failures: u32,
    skip_until: u64,
}

impl HybridSplitter {
    /// Learns the split from measurements, starting from nothing (a
    /// splitter learns only from the batches it is told about: two
    /// [`Signer`](crate::sig::Signer)s learn apart unless they share one).
    pub fn new() -> Self {
        Self::default()
    }

    /// Always gives the GPU `share` of each batch (0: none, 1: all;
    /// rounded to whole signatures), learning nothing. For tests and
    /// measurements.
    pub fn fixed(share: f64) -> Self {
        let share = if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) };
        HybridSplitter { fixed: Some(share), ..Self::default() }
    }

    /// The GPU's part of the next batch of `n` signatures under `rules`
    /// (the batch's first `g` signatures); counts the batch.
    pub fn plan(&mut self, rules: RuleSet, n: usize) -> usize {
        if let Some(share) = self.fixed {
            return ((n as f64 * share).round() as usize).min(n);
        }
        self.total += 1;
        if n < 2 * MIN_PART || self.total < self.skip_until {
            return 0;
        }
        let r = rule_index(rules);
        self.batches[r] += 1;
        let k = self.batches[r];
        let p = self.predict(rules, n);
        if p.seconds.is_nan() {
            return p.gpu_part;
        }
        // Run a side alone when that was never measured, or every
        // EXPLORE_EVERY batches, if its estimate is within EXPLORE times the
        // best way's. The CPU never measured alone is estimated from its
        // time beside the GPU, which the GPU's use of the cores can inflate:
        // EXPLORE_FIRST then.
        let cpu_unmeasured = self.learned.cpu_alone[r].cost().is_none();
        let cpu_limit = if cpu_unmeasured { EXPLORE_FIRST } else { EXPLORE };
        if p.gpu_part != 0
            && (cpu_unmeasured || k.is_multiple_of(EXPLORE_EVERY))
            && p.cpu_alone <= cpu_limit * p.seconds
        {
            return 0;
        }
        // The GPU never measured alone is estimated from its line beside the
        // CPU, extrapolated linearly: pessimistic (its time grows less than
        // linearly until the device is full, and beside a busy CPU its
        // feeding can starve many times over), hence EXPLORE_FIRST, on a
        // batch at most EXPLORE_GROWTH times the largest part it ran. Its
        // line alone, fitted on smaller batches, overestimates a batch over
        // twice their size for the same reason: that is measured too.
        let (gpu_alone, gpu_beside) = self.learned.gpu();
        let estimate = gpu_alone.or(gpu_beside).map_or(f64::INFINITY, |(latency, cost)| latency + n as f64 * cost);
        let gpu_limit = if gpu_alone.is_none() { EXPLORE_FIRST } else { EXPLORE };
        let reach = self.learned.gpu_largest.saturating_mul(EXPLORE_GROWTH).max(CALIBRATION);
        let larger = self.learned.gpu_alone.means().is_some_and(|(size, _)| n as f64 > 2.0 * size);
        let due = k % EXPLORE_EVERY == EXPLORE_EVERY / 2;
        if p.gpu_part != n && n <= reach && (gpu_alone.is_none() || larger || due) && estimate <= gpu_limit * p.seconds
        {
            return n;
        }
        // Probes come early (batches 2, 4, 8: a model made of one or two
        // batches may be far off), then every PROBE_EVERY batches; a side
        // SLOW_SIDE times slower than the other, only every
        // SLOW_PROBE_EVERY batches.
        let slow = p.cpu_alone.min(p.gpu_alone) * SLOW_SIDE < p.cpu_alone.max(p.gpu_alone);
        let every = if slow { SLOW_PROBE_EVERY } else { PROBE_EVERY };
        if !((k.is_power_of_two() && !slow) || k.is_multiple_of(every)) {
            return p.gpu_part;
        }
        // A side left out gets a part.
        if p.gpu_part == 0 {
            // As much as the GPU is predicted to finish while the CPU
            // verifies the rest (so, without interference, the batch takes
            // no longer), within the cap: repeated probes grow the measured
            // range until the GPU alone can be tried on whole batches.
            let (alone, beside) = self.learned.gpu();
            let cpu = self.learned.cpu_alone[r].cost().or(self.learned.cpu_beside[r].cost());
            let fits = beside
                .or(alone)
                .zip(cpu)
                .map_or(0, |((latency, gpu), cpu)| ((n as f64 * cpu - latency) / (gpu + cpu)).max(0.0) as usize);
            fits.min(self.gpu_cap()).min(n - MIN_PART).max(MIN_PART)
        } else if p.gpu_part == n {
            n - (n / PROBE_DIVISOR).max(MIN_PART)
        } else {
            p.gpu_part
        }
    }

    /// What the models say for a batch of `n` under `rules`, without
    /// explorations, probes or counting (with nothing measured yet: the
    /// calibration part).
    pub fn predict(&self, rules: RuleSet, n: usize) -> Prediction {
        let r = rule_index(rules);
        let (cpu_alone, cpu_beside) = (self.learned.cpu_alone[r].cost(), self.learned.cpu_beside[r].cost());
        let (gpu_alone, gpu_beside) = self.learned.gpu();
        let (Some(cpu_a), Some(cpu_b), Some(gpu_a), Some(gpu_b)) =
            (cpu_alone.or(cpu_beside), cpu_beside.or(cpu_alone), gpu_alone.or(gpu_beside), gpu_beside.or(gpu_alone))
        else {
            let gpu_part = if n < 2 * MIN_PART { 0 } else { CALIBRATION.min(n / 2) };
            return Prediction {
                gpu_part,
                seconds: f64::NAN,
                cpu_alone: f64::NAN,
                gpu_alone: f64::NAN,
                split: (0, f64::NAN),
            };
        };
        let cpu_seconds = n as f64 * cpu_a;
        let gpu_seconds = if n <= self.gpu_cap() { gpu_a.0 + n as f64 * gpu_a.1 } else { f64::INFINITY };
        // Both sides finish together: latency + g·gpu = (n − g)·cpu.
        let (latency, gpu_cost) = gpu_b;
        let even = (n as f64 * cpu_b - latency) / (gpu_cost + cpu_b);
        let g = (even.max(0.0).round() as usize).min(n).min(self.gpu_cap());
        let split = if n >= 2 * MIN_PART && g >= MIN_PART && n - g >= MIN_PART {
            (g, (latency + g as f64 * gpu_cost).max((n - g) as f64 * cpu_b))
        } else {
            (0, f64::INFINITY)
        };
        let mut p =
            Prediction { gpu_part: 0, seconds: cpu_seconds, cpu_alone: cpu_seconds, gpu_alone: gpu_seconds, split };
        if n < 2 * MIN_PART {
            return p;
        }
        if split.1 < p.seconds {
            (p.gpu_part, p.seconds) = split;
        }
        if gpu_seconds < p.seconds {
            (p.gpu_part, p.seconds) = (n, gpu_seconds);
        }
        p
    }

    /// The smallest batch (up to 2^24 signatures) the GPU gets a part of
    /// under `rules`, as far as measured: below it the GPU's fixed latency
    /// makes it lose. `None` when nothing is measured yet or the GPU never
    /// helps.
    pub fn crossover(&self, rules: RuleSet) -> Option<usize> {
        // Without the cap on GPU parts, which only limits extrapolation.
        let model = HybridSplitter { learned: Learned { gpu_largest: usize::MAX / GROWTH, ..self.learned }, ..*self };
        let helps = |n: usize| model.predict(rules, n).gpu_part > 0;
        if model.predict(rules, 1 << 24).seconds.is_nan() || !helps(1 << 24) {
            return None;
        }
        // The first size that helps (the prediction is monotone in n).
        let (mut lo, mut hi) = (1usize, 1usize << 24);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if helps(mid) { hi = mid } else { lo = mid + 1 }
        }
        Some(lo)
    }

    /// The GPU as measured alone, and beside the CPU (each once measured).
    pub fn gpu_models(&self) -> (Option<GpuModel>, Option<GpuModel>) {
        let model = |fit: Option<Fit>| fit.map(|(latency, cost)| GpuModel { latency, per_second: 1.0 / cost });
        let (alone, beside) = self.learned.gpu();
        (model(alone), model(beside))
    }

    /// The CPU's signatures per second under `rules`: alone, and beside the
    /// GPU, each once measured.
    pub fn cpu_rates(&self, rules: RuleSet) -> (Option<f64>, Option<f64>) {
        let r = rule_index(rules);
        (self.learned.cpu_alone[r].cost().map(|c| 1.0 / c), self.learned.cpu_beside[r].cost().map(|c| 1.0 / c))
    }

    /// Learns from how long each side took on a batch under `rules`.
    pub fn record(&mut self, rules: RuleSet, outcome: Outcome) {
        match outcome.gpu {
            Some(Err(_)) => {
                self.failures = self.failures.saturating_add(1);
                let backoff = 1u64.checked_shl(self.failures).unwrap_or(MAX_BACKOFF).min(MAX_BACKOFF);
                self.skip_until = self.total + backoff;
                // The CPU's time beside a failing GPU says little.
                return;
            }
            Some(Ok(_)) => self.failures = 0,
            None => {}
        }
        if self.fixed.is_some() {
            return;
        }
        let r = rule_index(rules);
        let learned = &mut self.learned;
        let (c, cpu_elapsed) = outcome.cpu;
        let gpu = match outcome.gpu {
            Some(Ok((g, elapsed))) if g > 0 => Some((g, elapsed)),
            _ => None,
        };
        if let Some((g, elapsed)) = gpu {
            let line = if c > 0 { &mut learned.gpu_beside } else { &mut learned.gpu_alone };
            line.observe(g, elapsed.as_secs_f64());
            learned.gpu_largest = learned.gpu_largest.max(g);
            learned.gpu_longest = learned.gpu_longest.max(elapsed.as_secs_f64());
        }
        if c > 0 {
            let rate = if gpu.is_some() { &mut learned.cpu_beside[r] } else { &mut learned.cpu_alone[r] };
            rate.observe(c, cpu_elapsed.as_secs_f64());
        }
    }

    /// The largest GPU part the models may choose: `GROWTH` times the
    /// largest measured, or as much as they predict within `GROWTH` times
    /// the longest part measured or `CAP_SECONDS`.
    fn gpu_cap(&self) -> usize {
        let by_size = self.learned.gpu_largest.saturating_mul(GROWTH).max(CALIBRATION);
        let (alone, beside) = self.learned.gpu();
        let by_time = alone.or(beside).map_or(0, |(latency, cost)| {
            let budget = (GROWTH as f64 * self.learned.gpu_longest).max(CAP_SECONDS);
            ((budget - latency).max(0.0) / cost).min(usize::MAX as f64 / 2.0) as usize
        });
        by_size.max(by_time)
    }

    /// The next calibration step for a batch with `n` signatures left, as
    /// (prefix length, GPU part of it: the GPU verifies that part alone,
    /// then the CPU the rest alone), while a side is not yet measured well
    /// enough (the GPU at two sizes, or the CPU under `rules`); `None` then,
    /// for small batches and for fixed splits.
    pub fn calibration(&self, rules: RuleSet, n: usize) -> Option<(usize, usize)> {
        if self.fixed.is_some() || n < 8 * MIN_PART || self.total < self.skip_until {
            return None;
        }
        let learned = &self.learned;
        let gpu = if learned.gpu_largest == 0 {
            CALIBRATE_GPU[0].min(n / 2)
        } else if learned.gpu_largest <= CALIBRATE_GPU[0]
            && learned.gpu_longest < CALIBRATE_FAST
            && CALIBRATE_GPU[1].min(n / 2) >= 4 * learned.gpu_largest
        {
            CALIBRATE_GPU[1].min(n / 2)
        } else {
            0
        };
        let r = rule_index(rules);
        let cpu_known = learned.cpu_alone[r].cost().or(learned.cpu_beside[r].cost()).is_some();
        let cpu = if cpu_known { 0 } else { (n / 8).clamp(MIN_PART, CALIBRATE_CPU).min(n - gpu) };
        (gpu + cpu > 0).then_some((gpu + cpu, gpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated machine: CPU seconds per signature, GPU latency and
    /// seconds per signature, and how much each side slows down while the
    /// other runs.
    struct Machine {
        cpu: f64,
        latency: f64,
        gpu: f64,
        interference: f64,
        gpu_interference: f64,
        /// Below this many signatures the GPU takes as long as for this many
        /// (it is not full).
        gpu_full: usize,
    }

    impl Machine {
        fn new(cpu: f64, latency: f64, gpu: f64) -> Machine {
            Machine { cpu, latency, gpu, interference: 1.0, gpu_interference: 1.0, gpu_full: 0 }
        }

        /// Runs one batch of `n` as `verify_signatures` does (a calibration
        /// prefix while a side is unmeasured, then the plan); returns (GPU
        /// signatures, seconds).
        fn batch(&self, s: &mut HybridSplitter, rules: RuleSet, n: usize) -> (usize, f64) {
            let (mut gpu_total, mut seconds, mut rest) = (0, 0.0, n);
            while let Some((len, g)) = s.calibration(rules, rest) {
                if g > 0 {
                    seconds += self.part(s, rules, g, g);
                }
                if len > g {
                    seconds += self.part(s, rules, len - g, 0);
                }
                gpu_total += g;
                rest -= len;
            }
            let g = s.plan(rules, rest);
            seconds += self.part(s, rules, rest, g);
            (gpu_total + g, seconds)
        }

        /// `n` signatures, the first `g` on the GPU; returns seconds.
        fn part(&self, s: &mut HybridSplitter, rules: RuleSet, n: usize, g: usize) -> f64 {
            let c = n - g;
            let cpu_alone = c as f64 * self.cpu;
            let gpu_alone = if g > 0 { self.latency + g.max(self.gpu_full) as f64 * self.gpu } else { 0.0 };
            // While both run, each goes slower by its factor; the one left
            // finishes at full speed.
            let (cpu, gpu) = if g == 0 || c == 0 {
                (cpu_alone, gpu_alone)
            } else {
                let (cpu_both, gpu_both) = (cpu_alone * self.interference, gpu_alone * self.gpu_interference);
                if gpu_both <= cpu_both {
                    (gpu_both + cpu_alone * (1.0 - gpu_both / cpu_both), gpu_both)
                } else {
                    (cpu_both, cpu_both + gpu_alone * (1.0 - cpu_both / gpu_both))
                }
            };
            let secs = |x: f64| Duration::from_secs_f64(x);
            let outcome = Outcome { gpu: (g > 0).then_some(Ok((g, secs(gpu)))), cpu: (c, secs(cpu)) };
            s.record(rules, outcome);
            cpu.max(gpu)
        }
    }

    fn fresh() -> HybridSplitter {
        HybridSplitter::default()
    }

    #[test]
    fn converges_to_the_split_where_both_finish_together() {
        // CPU 100k sig/s, GPU 300k sig/s after 1 ms.
        let m = Machine::new(1e-5, 1e-3, 1e-5 / 3.0);
        let mut s = fresh();
        let n = 32_768;
        let mut last = (0, 0.0);
        for i in 0..40 {
            last = m.batch(&mut s, RuleSet::Zip215, n);
            if i == 0 {
                // Calibration: both GPU sizes alone, the CPU alone, then the split.
                assert!(last.0 >= CALIBRATE_GPU[0] + CALIBRATE_GPU[1], "calibration first: {last:?}");
            }
        }
        // Ideal: 1e-3 + g/3e5 = (n − g)/1e5 → g = (0.32768 − 0.001)·3e5/4 ≈ 24,501.
        let ideal = ((n as f64 * 1e-5 - 1e-3) / (1e-5 / 3.0 + 1e-5)) as usize;
        let p = s.predict(RuleSet::Zip215, n);
        assert!(p.gpu_part.abs_diff(ideal) < ideal / 50, "{p:?} vs {ideal}");
        let GpuModel { latency, per_second: rate } = s.gpu_models().1.unwrap();
        assert!((latency - 1e-3).abs() < 2e-4, "{latency}");
        assert!((rate / 3e5 - 1.0).abs() < 0.05, "{rate}");
        // Faster than the faster side alone (GPU alone: 110 ms, CPU: 328 ms).
        assert!(last.1 < 0.09, "{last:?}");
        // Below the crossover (~ latency × CPU rate = 100 signatures, plus
        // the smallest part) the CPU gets everything.
        let crossover = s.crossover(RuleSet::Zip215).unwrap();
        assert!((100..400).contains(&crossover), "{crossover}");
        assert_eq!(s.predict(RuleSet::Zip215, crossover - 1).gpu_part, 0);
        assert!(s.predict(RuleSet::Zip215, crossover).gpu_part > 0);
    }

    #[test]
    fn a_slower_cpu_from_invalid_signatures_shifts_work_to_the_gpu_and_back() {
        let mut m = Machine::new(1e-5, 1e-3, 2e-5);
        let mut s = fresh();
        let n = 32_768;
        for _ in 0..30 {
            m.batch(&mut s, RuleSet::Zip215, n);
        }
        let before = s.predict(RuleSet::Zip215, n).gpu_part;
        assert!((n / 4..n / 2).contains(&before), "{before}");
        // A stretch with invalid signatures: the CPU is 4× slower.
        m.cpu = 4e-5;
        for _ in 0..15 {
            m.batch(&mut s, RuleSet::Zip215, n);
        }
        let during = s.predict(RuleSet::Zip215, n).gpu_part;
        assert!(during > n * 6 / 10, "{before} → {during}");
        m.cpu = 1e-5;
        for _ in 0..15 {
            m.batch(&mut s, RuleSet::Zip215, n);
        }
        let after = s.predict(RuleSet::Zip215, n).gpu_part;
        assert!(after.abs_diff(before) < n / 20, "{before} → {during} → {after}");
    }

    #[test]
    fn a_gpu_far_faster_takes_everything_and_a_slow_one_nothing_but_probes() {
        let fast = Machine::new(1e-5, 1e-4, 1e-8);
        let mut s = fresh();
        for _ in 0..30 {
            fast.batch(&mut s, RuleSet::Zip215, 4096);
        }
        let parts: Vec<usize> = (0..64).map(|_| fast.batch(&mut s, RuleSet::Zip215, 4096).0).collect();
        // All to the GPU: a CPU this much slower gets a probe only every
        // SLOW_PROBE_EVERY batches.
        assert!(parts.iter().filter(|&&g| g == 4096).count() >= 62, "{parts:?}");
        assert!(parts.iter().all(|&g| g >= 4096 - 256), "{parts:?}");

        let slow = Machine::new(1e-6, 5e-3, 1e-3);
        let mut s = fresh();
        for _ in 0..30 {
            slow.batch(&mut s, RuleSet::Strict, 32_768);
        }
        let parts: Vec<usize> = (0..64).map(|_| slow.batch(&mut s, RuleSet::Strict, 32_768).0).collect();
        assert!(parts.iter().filter(|&&g| g == 0).count() >= 62, "{parts:?}");
        assert!(parts.iter().all(|&g| g <= 32_768 / 16), "{parts:?}");
        // The GPU would help only at batches far larger.
        assert!(s.crossover(RuleSet::Strict).is_none_or(|c| c > 60_000), "{:?}", s.crossover(RuleSet::Strict));
    }

    #[test]
    fn a_gpu_that_slows_the_cpu_more_than_it_helps_is_left_out() {
        // A software adapter: the GPU part takes the CPU's cores.
        let lavapipe = Machine { interference: 2.0, ..Machine::new(1e-5, 1e-3, 2e-4) };
        let mut s = fresh();
        let mut total = 0.0;
        for _ in 0..64 {
            total += lavapipe.batch(&mut s, RuleSet::Zip215, 32_768).1;
        }
        // The CPU alone would take 64 × 0.328 s; probes cost a little.
        assert!(total < 64.0 * 0.328 * 1.1, "{total}");
        assert_eq!(s.predict(RuleSet::Zip215, 32_768).gpu_part, 0);
    }

    #[test]
    fn a_gpu_faster_alone_than_split_runs_alone() {
        // Both sides share the cores (lavapipe): each at less than half
        // speed beside the other, the GPU a little faster alone.
        let shared = Machine { interference: 2.2, gpu_interference: 2.2, ..Machine::new(2.4e-5, 2e-3, 1.96e-5) };
        let mut s = fresh();
        let n = 32_768;
        let total: f64 = (0..256).map(|_| shared.batch(&mut s, RuleSet::Zip215, n).1).sum();
        assert_eq!(s.predict(RuleSet::Zip215, n).gpu_part, n, "{:?}", s.predict(RuleSet::Zip215, n));
        let gpu_alone = 256.0 * (2e-3 + n as f64 * 1.96e-5);
        assert!(total < gpu_alone * 1.1, "{total} against {gpu_alone} for the GPU alone");
        // And the CPU alone, when it is the faster one.
        let shared = Machine { cpu: 1.2e-5, ..shared };
        let mut s = fresh();
        let total: f64 = (0..256).map(|_| shared.batch(&mut s, RuleSet::Zip215, n).1).sum();
        assert_eq!(s.predict(RuleSet::Zip215, n).gpu_part, 0, "{:?}", s.predict(RuleSet::Zip215, n));
        let cpu_alone = 256.0 * n as f64 * 1.2e-5;
        assert!(total < cpu_alone * 1.1, "{total} against {cpu_alone} for the CPU alone");
    }

    #[test]
    fn a_gpu_measured_on_small_batches_is_tried_alone_on_larger_ones() {
        // 1 ms, then flat up to 65,536 signatures (not full), then 10M/s:
        // a line fitted on 16k batches says 3M/s.
        // Beside the CPU its host preparation has fewer cores: 3× slower.
        let h200 = Machine { gpu_full: 65_536, gpu_interference: 3.0, ..Machine::new(7e-7, 1e-3, 1e-7) };
        let mut s = fresh();
        for _ in 0..40 {
            h200.batch(&mut s, RuleSet::Zip215, 16_384);
        }
        let big = 262_144;
        let times: Vec<f64> = (0..8).map(|_| h200.batch(&mut s, RuleSet::Zip215, big).1).collect();
        let gpu_alone = 1e-3 + big as f64 * 1e-7;
        assert!(times[5..].iter().all(|&t| t < gpu_alone * 1.05), "{times:?} against {gpu_alone}");
        assert_eq!(s.predict(RuleSet::Zip215, big).gpu_part, big);
    }

    #[test]
    fn a_gpu_slowed_down_by_a_busy_cpu_is_still_tried_alone() {
        // Strict on the CPU: 285k/s; the GPU alone 11M/s once full, but
        // beside a CPU part its feeding starves: 12× slower (as measured on
        // an H200 with 16 cores).
        let m = Machine { gpu_full: 16_384, gpu_interference: 12.0, ..Machine::new(3.5e-6, 1e-3, 9e-8) };
        let mut s = fresh();
        let parts: Vec<usize> = (0..64).map(|_| m.batch(&mut s, RuleSet::Strict, 16_384).0).collect();
        assert!(parts[8..].iter().filter(|&&g| g == 16_384).count() >= 52, "{parts:?}");
        assert_eq!(s.predict(RuleSet::Strict, 16_384).gpu_part, 16_384);
    }

    #[test]
    fn small_batches_stay_on_the_cpu_and_rule_sets_are_learned_apart() {
        let m = Machine::new(1e-5, 1e-3, 5e-6);
        let mut s = fresh();
        assert_eq!(s.plan(RuleSet::Zip215, 2 * MIN_PART - 1), 0);
        for _ in 0..30 {
            m.batch(&mut s, RuleSet::Zip215, 8192);
        }
        assert_eq!(s.predict(RuleSet::Zip215, 50).gpu_part, 0);
        // Strict has not been measured on the CPU: it calibrates.
        assert_eq!(s.predict(RuleSet::Strict, 8192).gpu_part, CALIBRATION);
    }

    #[test]
    fn failures_back_off_and_fixed_is_fixed() {
        let mut s = fresh();
        let fail = Outcome { gpu: Some(Err(256)), cpu: (0, Duration::ZERO) };
        assert_eq!(s.plan(RuleSet::Zip215, 1000), CALIBRATION);
        s.record(RuleSet::Zip215, fail);
        assert_eq!(s.plan(RuleSet::Zip215, 1000), 0, "left out after a failure");
        assert_eq!(s.plan(RuleSet::Zip215, 1000), CALIBRATION, "then tried again");
        s.record(RuleSet::Zip215, fail);
        let left_out = (0..8).take_while(|_| s.plan(RuleSet::Zip215, 1000) == 0).count();
        assert_eq!(left_out, 3, "twice as long after a second failure");

        let mut f = HybridSplitter::fixed(0.25);
        assert_eq!(f.plan(RuleSet::Zip215, 10), 3);
        assert_eq!(f.plan(RuleSet::Strict, 1000), 250);
        assert_eq!(HybridSplitter::fixed(7.0).plan(RuleSet::Zip215, 5), 5);
        assert_eq!(HybridSplitter::fixed(f64::NAN).plan(RuleSet::Zip215, 5), 0);
    }

    #[test]
    fn on_a_gpu_far_faster_than_the_cpu_a_long_chain_runs_as_fast_as_the_gpu_alone() {
        // The H200 of the 10M-transaction run (benches/GPU-NOTES.md): CPU
        // 800k sig/s, GPU 12M sig/s with host work, 1 ms latency, not full
        // below 65,536; 39 batches of 262,144. Beside a CPU part the GPU's
        // feeding slows by 1, 3 or 12×.
        for gpu_interference in [1.0, 3.0, 12.0] {
            let m = Machine { gpu_full: 65_536, gpu_interference, ..Machine::new(1.25e-6, 1e-3, 8.3e-8) };
            let mut s = fresh();
            let n = 262_144;
            let times: Vec<f64> = (0..39).map(|_| m.batch(&mut s, RuleSet::Zip215, n).1).collect();
            let total: f64 = times.iter().sum();
            let gpu_alone = 39.0 * (1e-3 + n as f64 * 8.3e-8);
            assert!(total < gpu_alone * 1.05, "×{gpu_interference}: {total} s against {gpu_alone} s: {times:?}");
        }
    }
}
