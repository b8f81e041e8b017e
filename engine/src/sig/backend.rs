//! The one place a signature backend is wired: the CPU (batch equations or
//! SIMD lanes, the batch size learned by a [`BatchSizer`]), the GPU (a
//! `GpuSigner`, with the cargo feature `gpu`), or both at once (the
//! feature's `hybrid` module), with the failure policy. The [`Verifier`](crate::Verifier), the
//! [`Validator`](crate::Validator) and the CLI's `vigil sigs` all verify
//! through a [`Signer`].
//!
//! **Failure policy.** A GPU call that fails (an error, a panic in the
//! driver, a wrong number of verdicts) is verified again on the CPU, so
//! verdicts never depend on the GPU working; every such failure is counted
//! in [`SignerStats`] and the last one is kept
//! ([`Signer::last_gpu_failure`]), so a caller that wants the GPU or
//! nothing (`vigil sigs --backend gpu`) can still fail loudly. Once the
//! device is lost (`GpuSigner::lost`) no call is made to it: every later
//! batch runs on the CPU, counted as a fallback.

use super::{BatchSizer, RuleSet, SigItem, verify_many_tuned};
#[cfg(feature = "gpu")]
use crate::gpu::{GpuError, GpuSigner};
#[cfg(feature = "gpu")]
use crate::hybrid::{self, Feeder, Hybrid, HybridSplitter};
#[cfg(feature = "gpu")]
use std::any::Any;
#[cfg(feature = "gpu")]
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

/// How a GPU given to a signer (through a [`SignerConfig`], alone or in
/// [`VerifyOptions`](crate::VerifyOptions) or
/// [`ValidatorConfig`](crate::ValidatorConfig)) is used. Verdicts are the
/// same either way.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum GpuMode {
    /// Every signature batch on the GPU (`--backend gpu`).
    #[default]
    Only,
    /// Each batch split between the GPU and the CPU by measured throughput,
    /// small batches on the CPU alone (`--backend auto`): see the `hybrid`
    /// module (feature `gpu`).
    Hybrid,
    /// Each batch split with this fixed share (0 to 1) for the GPU, nothing
    /// learned: for tests and measurements.
    Split(f64),
}

/// What a [`Signer`] is built from: the backend of a
/// [`Verifier`](crate::Verifier), a [`Validator`](crate::Validator) or
/// `vigil sigs`. Without a GPU it verifies on the CPU.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SignerConfig {
    /// Verify signatures on this GPU (same verdicts; a call the GPU fails
    /// is verified on the CPU), as `gpu_mode` says.
    #[cfg(feature = "gpu")]
    pub gpu: Option<Arc<GpuSigner>>,
    /// How `gpu` is used: every batch on it, or each batch split with the
    /// CPU.
    #[cfg(feature = "gpu")]
    pub gpu_mode: GpuMode,
    /// Fix the CPU's zip215 batch size instead of learning it.
    pub batch_size: Option<usize>,
}

impl SignerConfig {
    /// The CPU alone, the batch size learned.
    pub fn cpu() -> Self {
        SignerConfig::default()
    }

    /// `gpu`, used as `mode` says.
    #[cfg(feature = "gpu")]
    pub fn gpu(gpu: Arc<GpuSigner>, mode: GpuMode) -> Self {
        SignerConfig { gpu: Some(gpu), gpu_mode: mode, batch_size: None }
    }

    /// The GPU if there is one (as `mode` says), else the CPU.
    #[cfg(feature = "gpu")]
    pub fn with_gpu(mut self, gpu: Option<Arc<GpuSigner>>, mode: GpuMode) -> Self {
        self.gpu = gpu;
        self.gpu_mode = mode;
        self
    }

    /// Whether a GPU takes part.
    pub fn has_gpu(&self) -> bool {
        #[cfg(feature = "gpu")]
        return self.gpu.is_some();
        #[cfg(not(feature = "gpu"))]
        false
    }

    /// Whether every batch goes to a GPU ([`GpuMode::Only`]): a caller
    /// that wants the GPU or nothing checks
    /// [`Signer::last_gpu_failure`].
    pub fn gpu_only(&self) -> bool {
        #[cfg(feature = "gpu")]
        return self.gpu.is_some() && self.gpu_mode == GpuMode::Only;
        #[cfg(not(feature = "gpu"))]
        false
    }

    /// What verifies: `cpu`, `gpu: ADAPTER` or `auto: cpu + gpu: ADAPTER`
    /// (the Validator's status, the bench reports).
    pub fn backend_name(&self) -> String {
        #[cfg(feature = "gpu")]
        if let Some(gpu) = &self.gpu {
            return match self.gpu_mode {
                GpuMode::Only => format!("gpu: {}", gpu.adapter().name),
                GpuMode::Hybrid | GpuMode::Split(_) => format!("auto: cpu + gpu: {}", gpu.adapter().name),
            };
        }
        "cpu".into()
    }

    /// A fixed CPU batch size (`None`: learned).
    pub fn with_batch_size(mut self, batch_size: Option<usize>) -> Self {
        self.batch_size = batch_size;
        self
    }
}

/// Why a GPU call's verdicts were not used (the signatures were verified on
/// the CPU instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuFailure {
    /// The device or the driver reported an error.
    #[cfg(feature = "gpu")]
    #[error(transparent)]
    Error(#[from] GpuError),
    /// The call panicked (in the driver, or in wgpu).
    #[error("the GPU call panicked: {0}")]
    Panicked(String),
    /// The call returned a verdict count other than the signature count.
    #[error("the GPU returned {got} verdicts for {want} signatures")]
    WrongCount {
        /// Verdicts returned.
        got: usize,
        /// Signatures given.
        want: usize,
    },
}

#[cfg(feature = "gpu")]
impl GpuFailure {
    /// The failure for a caught panic's payload.
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> GpuFailure {
        let message = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "no message".to_owned(), |s| (*s).to_owned()),
        };
        GpuFailure::Panicked(message)
    }
}

/// What a [`Signer`] did so far: where its signatures were verified, and
/// how often the GPU failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SignerStats {
    /// Calls of [`Signer::verify`] with at least one signature.
    pub batches: u64,
    /// Signatures given to [`Signer::verify`].
    pub signatures: u64,
    /// GPU calls (whole batches, or a batch's GPU part), the hybrid's
    /// untimed warm-up left out.
    pub gpu_calls: u64,
    /// GPU calls that failed (an error, a panic, a wrong verdict count).
    pub gpu_failures: u64,
    /// Batches (or a batch's GPU part) meant for the GPU and verified on
    /// the CPU instead: every failed call, and every batch after the
    /// device was lost (no call is made to a lost device).
    pub cpu_fallbacks: u64,
    /// Signatures whose verdicts came from the GPU.
    pub gpu_signatures: u64,
    /// Signatures verified on the CPU, fallbacks included.
    pub cpu_signatures: u64,
    /// Signatures verified on the CPU that were meant for the GPU (after a
    /// failed call, or once the device was lost).
    pub fallback_signatures: u64,
    /// Whether the GPU was lost (from then on everything runs on the CPU).
    pub gpu_lost: bool,
}

/// The counters and the last failure, updated as a signer runs.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    stats: SignerStats,
    last_failure: Option<GpuFailure>,
}

impl Tally {
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_verified(&mut self, n: usize) {
        self.stats.gpu_calls += 1;
        self.stats.gpu_signatures += n as u64;
    }

    /// A GPU call on `n` signatures failed; they were verified on the CPU.
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_failed(&mut self, n: usize, failure: GpuFailure) {
        let s = &mut self.stats;
        let lost = matches!(failure, GpuFailure::Error(GpuError::Lost(_)));
        s.gpu_calls += 1;
        s.gpu_failures += 1;
        s.cpu_fallbacks += 1;
        s.fallback_signatures += n as u64;
        s.cpu_signatures += n as u64;
        // The first failure, and a loss, are warnings (the CLI shows
        // warnings); the rest are counted, and traced at debug level.
        if lost && !s.gpu_lost {
            s.gpu_lost = true;
            tracing::warn!("{failure}: {n} signatures, and every batch from now on, verified on the CPU");
        } else if s.gpu_failures == 1 {
            tracing::warn!(
                "a GPU call on {n} signatures failed ({failure}); verified on the CPU (further failures are counted)"
            );
        } else {
            tracing::debug!(target: "vigil::hybrid", "a GPU call on {n} signatures failed ({failure}); verified on the CPU");
        }
        self.last_failure = Some(failure);
    }

    /// `n` signatures meant for a GPU that was lost were verified on the
    /// CPU (no call was made).
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_gone(&mut self, n: usize, why: &str) {
        let s = &mut self.stats;
        if !s.gpu_lost {
            s.gpu_lost = true;
            tracing::warn!("the GPU was lost ({why}); verifying on the CPU from now on");
        }
        s.cpu_fallbacks += 1;
        s.fallback_signatures += n as u64;
        s.cpu_signatures += n as u64;
    }

    pub(crate) fn cpu_verified(&mut self, n: usize) {
        self.stats.cpu_signatures += n as u64;
    }
}

/// `gpu.verify`, with a panic or a wrong verdict count turned into a
/// failure.
#[cfg(feature = "gpu")]
pub(crate) fn call_gpu(gpu: &GpuSigner, rules: RuleSet, items: &[SigItem<'_>]) -> Result<Vec<bool>, GpuFailure> {
    match catch_unwind(AssertUnwindSafe(|| gpu.verify(rules, items))) {
        Ok(Ok(verdicts)) if verdicts.len() == items.len() => Ok(verdicts),
        Ok(Ok(verdicts)) => Err(GpuFailure::WrongCount { got: verdicts.len(), want: items.len() }),
        Ok(Err(e)) => Err(GpuFailure::Error(e)),
        Err(panic) => Err(GpuFailure::from_panic(panic)),
    }
}

/// A signature backend with what it learns: verifies batches of signatures
/// on the CPU, the GPU or both, as its [`SignerConfig`] says, with exactly
/// [`super::verify`]'s verdicts whatever runs them. Work runs on the
/// current rayon pool (the GPU's host preparation in the hybrid on a pool
/// of the signer's own, made on first use).
///
/// What it learns (the CPU's batch size, the hybrid's cost model) stays
/// with it: to share it, share the signer ([`Signer::shared`]).
#[derive(Debug)]
pub struct Signer {
    config: SignerConfig,
    sizer: BatchSizer,
    #[cfg(feature = "gpu")]
    splitter: HybridSplitter,
    #[cfg(feature = "gpu")]
    feeder: Feeder,
    tally: Tally,
}

/// A [`Signer`] several users share, one batch at a time (the
/// [`Validator`](crate::Validator)'s signature requests and chains; the
/// [`Verifier`](crate::Verifier)s given one).
pub type SharedSigner = Arc<Mutex<Signer>>;

impl Default for Signer {
    fn default() -> Self {
        Signer::new(SignerConfig::default())
    }
}

impl Signer {
    /// A signer as `config` says.
    pub fn new(config: SignerConfig) -> Signer {
        Signer {
            sizer: config.batch_size.map_or_else(BatchSizer::new, BatchSizer::fixed),
            #[cfg(feature = "gpu")]
            splitter: match config.gpu_mode {
                GpuMode::Split(share) => HybridSplitter::fixed(share),
                GpuMode::Only | GpuMode::Hybrid => HybridSplitter::new(),
            },
            #[cfg(feature = "gpu")]
            feeder: Feeder::default(),
            tally: Tally::default(),
            config,
        }
    }

    /// This signer, to share.
    pub fn shared(self) -> SharedSigner {
        Arc::new(Mutex::new(self))
    }

    /// What it was built from.
    pub fn config(&self) -> &SignerConfig {
        &self.config
    }

    /// The GPU it uses, if any.
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> Option<&Arc<GpuSigner>> {
        self.config.gpu.as_ref()
    }

    /// The CPU's batch sizer, as learned so far.
    pub fn sizer(&self) -> &BatchSizer {
        &self.sizer
    }

    /// The hybrid's model, as learned so far (learning only with
    /// [`GpuMode::Hybrid`]).
    #[cfg(feature = "gpu")]
    pub fn splitter(&self) -> &HybridSplitter {
        &self.splitter
    }

    /// Counters so far.
    pub fn stats(&self) -> SignerStats {
        self.tally.stats
    }

    /// The last GPU failure, if any (each is counted in
    /// [`SignerStats::gpu_failures`]).
    pub fn last_gpu_failure(&self) -> Option<&GpuFailure> {
        self.tally.last_failure.as_ref()
    }

    /// One verdict per item, exactly [`super::verify`]'s, learning batch
    /// sizes and splits. A GPU that fails costs time, never a verdict: its
    /// part is verified on the CPU (and counted).
    pub fn verify(&mut self, rules: RuleSet, items: &[SigItem<'_>]) -> Vec<bool> {
        if items.is_empty() {
            return Vec::new();
        }
        self.tally.stats.batches += 1;
        self.tally.stats.signatures += items.len() as u64;
        #[cfg(feature = "gpu")]
        if let Some(gpu) = &self.config.gpu {
            if let Some(why) = gpu.lost() {
                let verdicts = on_cpu(&mut self.sizer, rules, items);
                self.tally.gpu_gone(items.len(), why);
                return verdicts;
            }
            return match self.config.gpu_mode {
                GpuMode::Only => match call_gpu(gpu, rules, items) {
                    Ok(verdicts) => {
                        self.tally.gpu_verified(items.len());
                        verdicts
                    }
                    Err(failure) => {
                        let verdicts = on_cpu(&mut self.sizer, rules, items);
                        self.tally.gpu_failed(items.len(), failure);
                        verdicts
                    }
                },
                GpuMode::Hybrid | GpuMode::Split(_) => {
                    let mut run = Hybrid {
                        gpu,
                        sizer: &mut self.sizer,
                        splitter: &mut self.splitter,
                        feeder: &self.feeder,
                        tally: &mut self.tally,
                    };
                    hybrid::verify_signatures(&mut run, rules, items)
                }
            };
        }
        let verdicts = on_cpu(&mut self.sizer, rules, items);
        self.tally.cpu_verified(items.len());
        verdicts
    }
}

/// `items`' verdicts on the CPU, the batch size from `sizer` (the caller
/// counts them: verified on the CPU, or a GPU's fallback).
fn on_cpu(sizer: &mut BatchSizer, rules: RuleSet, items: &[SigItem<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    verify_many_tuned(rules, items, &mut verdicts, sizer);
    verdicts
}

#[cfg(all(test, feature = "gpu"))]
mod tests {
    use super::*;

    #[test]
    fn every_gpu_failure_is_counted_as_a_cpu_fallback_and_the_last_is_kept() {
        let mut tally = Tally::default();
        tally.gpu_verified(100);
        tally.gpu_failed(7, GpuFailure::Panicked("first".into()));
        tally.gpu_failed(5, GpuFailure::WrongCount { got: 4, want: 5 });
        tally.cpu_verified(3);
        let s = tally.stats;
        assert_eq!((s.gpu_calls, s.gpu_failures, s.cpu_fallbacks), (3, 2, 2));
        assert_eq!((s.gpu_signatures, s.fallback_signatures, s.cpu_signatures), (100, 12, 15));
        let last = tally.last_failure.as_ref().map(ToString::to_string);
        assert_eq!(last.as_deref(), Some("the GPU returned 4 verdicts for 5 signatures"));
    }
}
