//! Where the GPU starts to beat the CPU: for each share of invalid
//! signatures and each batch size, signatures per second on the CPU (all
//! cores, `sig::verify_many_tuned`, what `--backend cpu` runs), on the GPU
//! alone (`GpuSigner::verify`, what `--backend gpu` runs) and split between
//! both (`Signer` in `GpuMode::Hybrid`, what `--backend auto` runs), on the
//! same signatures in the same run.
//!
//! The crossover of a share is the smallest batch size measured from which
//! the GPU wins at that size and every larger one measured: below it the
//! GPU's fixed cost per call (upload, dispatch, read-back) makes it lose.
//! Invalid signatures move it: a batch equation that fails costs the CPU the
//! equation plus each signature's own check in lanes, the GPU checks every
//! signature alone and does not care.
//! `auto` learns the same thing online (`vigil_engine::hybrid`); its column
//! shows whether it keeps up with the faster of the two.
//!
//! The signatures: 64 signing keys (an IoT chain has few devices), 32-byte
//! messages (a tx_id); an invalid one has one bit of S flipped (S stays
//! canonical, so the batch equation fails). Invalid
//! signatures are spread evenly: any prefix of n signatures holds
//! round(n × share) of them.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use vigil_engine::GpuMode;
use vigil_engine::gpu::GpuSigner;
use vigil_engine::sig::{self, BatchSizer, RuleSet, SigItem, Signer, SignerConfig};

/// One batch size at one share of invalid signatures.
#[derive(Debug, Clone, Serialize)]
pub struct CrossoverPoint {
    pub size: usize,
    pub invalid_share: f64,
    /// Signatures per second: CPU (all cores), GPU alone (0 when the GPU
    /// failed), CPU and GPU together (`--backend auto`).
    pub cpu_per_s: f64,
    pub gpu_per_s: f64,
    pub auto_per_s: f64,
}

impl CrossoverPoint {
    pub fn gpu_wins(&self) -> bool {
        self.gpu_per_s > self.cpu_per_s
    }

    /// `auto` against the faster of CPU and GPU alone.
    pub fn auto_ratio(&self) -> f64 {
        self.auto_per_s / self.cpu_per_s.max(self.gpu_per_s).max(f64::MIN_POSITIVE)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CrossoverTable {
    pub cpu: String,
    pub cores: usize,
    pub curve_backend: &'static str,
    pub gpu_adapter: String,
    pub rules: RuleSet,
    /// Batch sizes, ascending, and invalid shares, as measured.
    pub sizes: Vec<usize>,
    pub invalid_shares: Vec<f64>,
    /// Share-major: `points[s * sizes.len() + b]` is share s at size b.
    pub points: Vec<CrossoverPoint>,
    /// Per share: the smallest size from which the GPU wins (see
    /// [`crossover_size`]), `None` if it does not win at the largest.
    pub crossovers: Vec<(f64, Option<usize>)>,
    /// GPU verdicts that differed from the CPU's (must be 0).
    pub disagreements: usize,
}

impl CrossoverTable {
    /// The points of the `s`-th share, by ascending size.
    pub fn row(&self, s: usize) -> &[CrossoverPoint] {
        &self.points[s * self.sizes.len()..(s + 1) * self.sizes.len()]
    }
}

/// The smallest size from which the GPU wins at every larger size of
/// `points` (ascending sizes); `None` if it loses at the largest.
pub fn crossover_size(points: &[CrossoverPoint]) -> Option<usize> {
    let losing = points.iter().rposition(|p| !p.gpu_wins());
    match losing {
        None => points.first().map(|p| p.size),
        Some(i) => points.get(i + 1).map(|p| p.size),
    }
}

/// Whether signature `i` of a run is invalid at `share`: spread so that any
/// prefix of n holds round(n × share).
pub fn is_invalid(i: usize, share: f64) -> bool {
    let invalid_before = |n: usize| (n as f64 * share + 0.5).floor();
    invalid_before(i + 1) > invalid_before(i)
}

/// `n` valid signatures: 64 keys, 32-byte messages.
struct Material {
    keys: Vec<[u8; 32]>,
    messages: Vec<[u8; 32]>,
    signatures: Vec<[u8; 64]>,
}

impl Material {
    fn new(n: usize) -> Material {
        let (mut keys, mut messages, mut signatures) = (Vec::new(), Vec::new(), Vec::new());
        for (k, m, s) in super::signed(n, 64) {
            keys.push(k);
            messages.push(m);
            signatures.push(s);
        }
        Material { keys, messages, signatures }
    }

    /// The signatures with those invalid at `share` corrupted.
    fn with_invalid(&self, share: f64) -> Vec<[u8; 64]> {
        let mut sigs = self.signatures.clone();
        for (i, s) in sigs.iter_mut().enumerate() {
            if is_invalid(i, share) {
                s[40] ^= 0x10;
            }
        }
        sigs
    }
}

/// [`crossover_under`] for zip215 (the chain's rule), quietly.
pub fn crossover(gpu: &Arc<GpuSigner>, secs_per_point: f64, sizes: &[usize], invalid_shares: &[f64]) -> CrossoverTable {
    crossover_under(gpu, RuleSet::Zip215, secs_per_point, sizes, invalid_shares, &|_| {})
}

/// Measures CPU, GPU and auto at every (invalid share, batch size), each for
/// about `secs_per_point` seconds (best of at least three runs); `progress`
/// hears each point. Sizes are measured ascending; zero sizes and shares
/// outside 0..=1 are left out.
pub fn crossover_under(
    gpu: &Arc<GpuSigner>,
    rules: RuleSet,
    secs_per_point: f64,
    sizes: &[usize],
    invalid_shares: &[f64],
    progress: &dyn Fn(&str),
) -> CrossoverTable {
    let mut sizes: Vec<usize> = sizes.iter().copied().filter(|&n| n > 0).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let invalid_shares: Vec<f64> = invalid_shares.iter().copied().filter(|s| (0.0..=1.0).contains(s)).collect();
    let largest = sizes.last().copied().unwrap_or(0);
    progress(&format!("signing {largest} signatures"));
    let material = Material::new(largest);
    let mut points = Vec::new();
    let mut disagreements = 0;
    // `auto` as the CLI runs it: one signer learning over every point.
    let mut auto = Signer::new(SignerConfig::gpu(gpu.clone(), GpuMode::Hybrid));
    for &share in &invalid_shares {
        let signatures = material.with_invalid(share);
        let all: Vec<SigItem<'_>> = (0..largest)
            .map(|i| SigItem {
                public_key: &material.keys[i],
                message: &material.messages[i],
                signature: &signatures[i],
            })
            .collect();
        for &size in &sizes {
            progress(&format!("{size} signatures, {:.1}% invalid", share * 100.0));
            let items = &all[..size];
            let mut out = vec![false; size];
            let mut sizer = BatchSizer::new();
            let cpu_per_s =
                super::rate(secs_per_point, size as u64, || sig::verify_many_tuned(rules, items, &mut out, &mut sizer));
            // A checked first run: the GPU must agree with the CPU, and a
            // GPU that fails is not timed.
            let gpu_per_s = match gpu.verify(rules, items) {
                Ok(verdicts) => {
                    disagreements += verdicts.iter().zip(&out).filter(|(g, c)| g != c).count();
                    super::rate(secs_per_point, size as u64, || gpu.verify(rules, items))
                }
                Err(e) => {
                    progress(&format!("the GPU failed: {e}"));
                    0.0
                }
            };
            let auto_per_s = super::rate(secs_per_point, size as u64, || auto.verify(rules, items));
            points.push(CrossoverPoint { size, invalid_share: share, cpu_per_s, gpu_per_s, auto_per_s });
        }
    }
    let crossovers = invalid_shares
        .iter()
        .enumerate()
        .map(|(s, &share)| (share, crossover_size(&points[s * sizes.len()..(s + 1) * sizes.len()])))
        .collect();
    CrossoverTable {
        cpu: super::cpu_model(),
        cores: rayon::current_num_threads(),
        curve_backend: sig::curve_backend(),
        gpu_adapter: gpu.adapter().name.clone(),
        rules,
        sizes,
        invalid_shares,
        points,
        crossovers,
        disagreements,
    }
}

fn k(per_s: f64) -> String {
    if per_s >= 1e6 { format!("{:.2}M", per_s / 1e6) } else { format!("{:.1}k", per_s / 1e3) }
}

fn percent(share: f64) -> String {
    format!("{}%", (share * 1000.0).round() / 10.0)
}

impl fmt::Display for CrossoverTable {
    /// Per batch size (rows) and invalid share (column groups): CPU, GPU and
    /// auto signatures per second, the winner of CPU and GPU marked `*`;
    /// then each share's crossover.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} signatures/s: CPU {} ({} threads, {}), GPU {}; * marks the faster of CPU and GPU, auto is both",
            self.rules, self.cpu, self.cores, self.curve_backend, self.gpu_adapter
        )?;
        const CELL: usize = 9;
        write!(f, "{:>8}", "batch")?;
        for &share in &self.invalid_shares {
            write!(f, " | {:^w$}", format!("{} invalid", percent(share)), w = 3 * CELL + 2)?;
        }
        writeln!(f)?;
        write!(f, "{:>8}", "")?;
        for _ in &self.invalid_shares {
            write!(f, " | {:>CELL$} {:>CELL$} {:>CELL$}", "CPU", "GPU", "auto")?;
        }
        writeln!(f)?;
        for (b, &size) in self.sizes.iter().enumerate() {
            write!(f, "{size:>8}")?;
            for s in 0..self.invalid_shares.len() {
                let p = &self.row(s)[b];
                let mark = |wins: bool| if wins { "*" } else { " " };
                write!(
                    f,
                    " | {:>w$}{} {:>w$}{} {:>CELL$}",
                    k(p.cpu_per_s),
                    mark(!p.gpu_wins()),
                    k(p.gpu_per_s),
                    mark(p.gpu_wins()),
                    k(p.auto_per_s),
                    w = CELL - 1
                )?;
            }
            writeln!(f)?;
        }
        let crossovers: Vec<String> = self
            .crossovers
            .iter()
            .map(|(share, size)| match size {
                Some(n) => format!("{} invalid: {n}", percent(*share)),
                None => format!("{} invalid: never (up to {})", percent(*share), self.sizes.last().unwrap_or(&0)),
            })
            .collect();
        writeln!(f, "GPU wins from batch size: {}", crossovers.join(", "))?;
        let worst = self.points.iter().map(CrossoverPoint::auto_ratio).fold(f64::INFINITY, f64::min);
        if worst.is_finite() {
            writeln!(f, "auto against the faster of CPU and GPU: {worst:.2}x at worst")?;
        }
        if self.disagreements > 0 {
            writeln!(f, "GPU VERDICTS DIFFERED FROM THE CPU'S: {}", self.disagreements)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(size: usize, cpu: f64, gpu: f64) -> CrossoverPoint {
        CrossoverPoint { size, invalid_share: 0.0, cpu_per_s: cpu, gpu_per_s: gpu, auto_per_s: cpu.max(gpu) }
    }

    #[test]
    fn crossover_is_where_the_gpu_wins_from_on() {
        let row = |gpu: [f64; 4]| -> Vec<CrossoverPoint> {
            [64, 1024, 16384, 65536].iter().zip(gpu).map(|(&n, g)| point(n, 100.0, g)).collect()
        };
        assert_eq!(crossover_size(&row([1.0, 50.0, 150.0, 300.0])), Some(16384));
        assert_eq!(crossover_size(&row([101.0, 150.0, 200.0, 300.0])), Some(64));
        // A win then a loss (noise) does not count.
        assert_eq!(crossover_size(&row([1.0, 150.0, 90.0, 300.0])), Some(65536));
        assert_eq!(crossover_size(&row([1.0, 150.0, 200.0, 90.0])), None);
        assert_eq!(crossover_size(&[]), None);
    }

    #[test]
    fn invalid_signatures_are_spread_evenly() {
        for share in [0.0, 0.001, 0.01, 0.1, 0.5, 1.0] {
            for n in [1, 7, 64, 1000, 4096] {
                let count = (0..n).filter(|&i| is_invalid(i, share)).count();
                assert_eq!(count as f64, (n as f64 * share + 0.5).floor(), "{share} of {n}");
            }
        }
        let m = Material::new(8);
        let sigs = m.with_invalid(0.5);
        for (i, signature) in sigs.iter().enumerate() {
            let ok = sig::verify(RuleSet::Zip215, &m.keys[i], &m.messages[i], signature);
            assert_eq!(ok, !is_invalid(i, 0.5), "{i}");
        }
    }

    #[test]
    fn the_table_prints_every_point_and_the_crossovers() {
        let points =
            vec![point(64, 100e3, 1e3), point(4096, 100e3, 200e3), point(64, 50e3, 1e3), point(4096, 50e3, 1e6)];
        let table = CrossoverTable {
            cpu: "test cpu".into(),
            cores: 2,
            curve_backend: "serial",
            gpu_adapter: "test gpu".into(),
            rules: RuleSet::Zip215,
            sizes: vec![64, 4096],
            invalid_shares: vec![0.0, 0.1],
            crossovers: vec![(0.0, Some(4096)), (0.1, Some(4096))],
            points,
            disagreements: 0,
        };
        let text = table.to_string();
        assert!(text.contains("0% invalid") && text.contains("10% invalid"), "{text}");
        assert!(text.contains("1.00M*"), "{text}");
        assert!(text.contains("GPU wins from batch size: 0% invalid: 4096, 10% invalid: 4096"), "{text}");
        assert_eq!(text.lines().count(), 7, "{text}");
    }
}
