//! Running a batch as the model says: calibration steps first while a side
//! is unmeasured, then the planned split, the GPU part on a thread of its
//! own (fed by the signer's [`Feeder`] pool) beside the CPU part; each
//! side's time goes back to the model, each GPU call's result to the
//! signer's counters. A GPU part that fails is verified on the CPU.

use super::model::{HybridSplitter, MIN_PART, Outcome};
use crate::gpu::GpuSigner;
use crate::sig::backend::{Tally, call_gpu};
use crate::sig::{self, BatchSizer, RuleSet, SigItem};
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pool the GPU part's host preparation runs on: cores / 2 threads,
/// made on first use (`None` if it could not be made: then the current
/// pool), owned by one signer.
#[derive(Default)]
pub(crate) struct Feeder(OnceLock<Option<rayon::ThreadPool>>);

impl fmt::Debug for Feeder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feeder").field("started", &self.0.get().is_some()).finish()
    }
}

impl Feeder {
    fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.0
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                rayon::ThreadPoolBuilder::new()
                    .num_threads((cores / 2).clamp(1, 16))
                    .thread_name(|i| format!("vigil-gpu-feed-{i}"))
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// What a hybrid run uses: the device, the CPU's batch sizer, the model,
/// the feeder pool and the counters, all the signer's.
pub(crate) struct Hybrid<'a> {
    pub gpu: &'a GpuSigner,
    pub sizer: &'a mut BatchSizer,
    pub splitter: &'a mut HybridSplitter,
    pub feeder: &'a Feeder,
    pub tally: &'a mut Tally,
}

/// One verdict per item, exactly [`sig::verify`]'s: the batch split between
/// the GPU and the CPU by the model (see the [module documentation](super)).
pub(crate) fn verify_signatures(h: &mut Hybrid<'_>, rules: RuleSet, items: &[SigItem<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    if items.is_empty() {
        return verdicts;
    }
    let mut start = 0;
    // At most three steps (two GPU sizes and the CPU).
    for _ in 0..3 {
        let Some((len, g)) = h.splitter.calibration(rules, items.len() - start) else { break };
        // The device's first GPU call pays for warming it up (buffers,
        // first dispatch): a few signatures, untimed and not counted,
        // before anything is timed.
        if g > 0 && h.gpu.first_warm_up() {
            let _ = call_gpu(h.gpu, rules, &items[start..start + MIN_PART]);
        }
        let (items, verdicts) = (&items[start..start + len], &mut verdicts[start..start + len]);
        // Each side alone on its part, one after the other: both measured
        // alone, so no batch has to be given to one side to learn it.
        let (head, tail) = verdicts.split_at_mut(g);
        if g > 0 {
            run_split(h, rules, &items[..g], head, g);
        }
        if len > g {
            run_split(h, rules, &items[g..], tail, 0);
        }
        start += len;
    }
    let rest = &items[start..];
    if !rest.is_empty() {
        let g = h.splitter.plan(rules, rest.len()).min(rest.len());
        run_split(h, rules, rest, &mut verdicts[start..], g);
    }
    verdicts
}

/// Verifies `items` into `verdicts`: the first `g` on the GPU (on a thread
/// of its own), the rest on the CPU at the same time; records the times.
fn run_split(h: &mut Hybrid<'_>, rules: RuleSet, items: &[SigItem<'_>], verdicts: &mut [bool], g: usize) {
    let started = Instant::now();
    let (gpu_items, cpu_items) = items.split_at(g);
    let (gpu_out, cpu_out) = verdicts.split_at_mut(g);
    let (gpu, feeder) = (h.gpu, h.feeder);
    let run_gpu = || {
        let started = Instant::now();
        (call_gpu(gpu, rules, gpu_items), started.elapsed())
    };
    let (gpu_result, cpu_elapsed) = if cpu_items.is_empty() {
        // The GPU alone: exactly `--backend gpu`, its host preparation on
        // the current pool's every worker.
        (Some(run_gpu()), Duration::ZERO)
    } else {
        let sizer = &mut *h.sizer;
        std::thread::scope(|scope| {
            let gpu_side = (g > 0).then(|| {
                scope.spawn(|| {
                    // One split's GPU part at a time on the device: it runs
                    // one anyway, and a second job queued on a feeder pool
                    // could be picked up by a worker waiting inside the
                    // first (rayon steals while it waits) and meet the
                    // first's locks.
                    let _turn = gpu.turn();
                    crate::in_pool(feeder.pool(), run_gpu)
                })
            });
            let started = Instant::now();
            sig::verify_many_tuned(rules, cpu_items, cpu_out, sizer);
            let cpu_elapsed = started.elapsed();
            let joined = gpu_side.map(|side| {
                side.join().unwrap_or_else(|panic| (Err(sig::GpuFailure::from_panic(panic)), Duration::ZERO))
            });
            (joined, cpu_elapsed)
        })
    };
    let gpu = gpu_result.map(|(result, elapsed)| match result {
        Ok(gpu_verdicts) => {
            gpu_out.copy_from_slice(&gpu_verdicts);
            h.tally.gpu_verified(g);
            Ok((g, elapsed))
        }
        // An error, a panic, or a wrong count: the CPU's verdicts instead.
        Err(failure) => {
            sig::verify_many_tuned(rules, gpu_items, gpu_out, h.sizer);
            h.tally.gpu_failed(g, failure);
            Err(g)
        }
    });
    h.tally.cpu_verified(cpu_items.len());
    let outcome = Outcome { gpu, cpu: (cpu_items.len(), cpu_elapsed) };
    if tracing::enabled!(target: "vigil::hybrid", tracing::Level::DEBUG) {
        tracing::debug!(
            target: "vigil::hybrid",
            "hybrid: {rules} {} signatures, GPU {g}: {outcome:?}, {:.3} ms; predicted {:?}",
            items.len(),
            started.elapsed().as_secs_f64() * 1e3,
            h.splitter.predict(rules, items.len())
        );
    }
    h.splitter.record(rules, outcome);
}
