//! `--backend auto`: signatures verified on the CPU and the GPU at once,
//! split by what each side is measured to do on the real work.
//!
//! A batch split in two contiguous parts sends the first to the GPU
//! ([`GpuSigner::verify`](crate::gpu::GpuSigner::verify), run on a thread of
//! its own; its host preparation, SHA-512 and packing, runs on a rayon pool
//! the [`Signer`](crate::sig::Signer) makes on first use, cores / 2 threads,
//! so that it is not queued behind the CPU part's tasks),
//! while the rest is verified on the current rayon pool
//! ([`sig::verify_many_tuned`](crate::sig::verify_many_tuned), what the CPU backend runs). A batch for the
//! GPU alone runs exactly as `--backend gpu` does (host preparation on the
//! current pool). Verdicts are
//! concatenated in order, so they are exactly the CPU's whatever the split:
//! both sides give [`sig::verify`](crate::sig::verify)'s verdict for every item. A GPU part that
//! fails (an error or a panic in the driver) is verified on the CPU (and
//! counted in [`SignerStats`](crate::sig::SignerStats)), and the GPU is
//! then left out for 2, 4, 8, … batches (up to 1,024) before it is
//! tried again.
//!
//! # The choice
//!
//! A batch runs one of three ways: the CPU alone, the GPU alone, or split.
//! [`HybridSplitter`] predicts each way's time from what earlier batches
//! took (exponentially smoothed, the newest batch weighing [`SMOOTHING`])
//! and takes the fastest:
//!
//! - the GPU as a line, `seconds = latency + signatures × cost`, fitted by
//!   weighted least squares (batch sizes vary, and probes are small, so the
//!   two terms can be told apart; while all recent sizes are alike, the
//!   last latency that could be told apart is kept). One GPU model serves
//!   both rule sets: the kernel computes both verdicts in one pass.
//! - the CPU as seconds per signature, per rule set (strict verifies one
//!   signature at a time, zip215 in batches).
//!
//! Each side is measured twice: on batches it ran alone and on batches it
//! shared with the other. The difference is what the sides cost each other
//! (the GPU's host preparation takes cores; the CPU part slows the feeding
//! of the GPU; a software adapter such as lavapipe runs on the very cores
//! the CPU part needs): a split is only chosen when, measured as it really
//! runs, it beats both sides alone.
//!
//! The split gives the GPU the `g` that makes both sides finish together,
//! `latency + g × gpu_cost = (n − g) × cpu_cost`. So batches below the
//! **crossover** ([`HybridSplitter::crossover`], about `latency / cpu_cost`
//! signatures: the GPU's fixed latency would make it finish last) go all to
//! the CPU; a GPU far faster than the CPU takes the whole batch, a GPU
//! slower than its cost to the CPU takes nothing. A side's part is never
//! under 64 signatures, and batches under 128 stay on the CPU. The CPU's
//! cost is measured on the real signatures, so when a stretch of the chain
//! holds invalid signatures (failed batch equations then cost the CPU each
//! signature's own check too, while the GPU's cost does not change) the GPU's share grows
//! within a few batches, and shrinks back after.
//!
//! Learning is online and bounded. A splitter's first large batch (512
//! signatures or more) calibrates on its own first signatures, each side
//! alone and timed: the GPU on 1,024 (after a 64-signature warm-up that is
//! not timed: buffers, first dispatch), then on 16,384 if the 1,024 took
//! under 20 ms (two sizes tell its latency from its cost a signature; a
//! slow GPU costs one small part to find out), then the CPU on up to 2,048;
//! the rest of that batch is already split as the models say. (A fixed
//! first split instead left the first batches almost whole to the CPU while
//! the GPU's part ramped up: on an H200 `auto` ran a 10M-transaction chain
//! at 0.76× `gpu`.) A chosen GPU part is never more than 4× the largest
//! measured so far, or than the models predict in 4× the longest GPU part
//! measured or 0.25 s, so a bad extrapolation costs little. Each side is
//! also tried alone:
//!
//! - once, if its estimate (from its times beside the other side,
//!   extrapolated linearly: pessimistic, as its share of the cores shrinks
//!   beside the other and, for the GPU, time grows less than linearly until
//!   the device is full) is within 8× of the best way's; the GPU on a batch
//!   at most 64× the largest part it ran. A wrong guess costs one batch at
//!   most 8× the best way's time.
//! - then every 64th batch of a rule set if its estimate is within 2.5×,
//!   and the GPU on any batch over twice the size it was measured at (its
//!   line, fitted on smaller batches, overestimates larger ones).
//!
//! At the 2nd, 4th, 8th and 16th batch, then every 32nd, a side that gets
//! nothing gets a probe: the GPU as much as it is predicted to finish while
//! the CPU does the rest (at least 64; repeated probes grow the measured
//! range), the CPU a 16th of the batch. So a change on either side is
//! noticed. A side 8× slower alone than the other is probed only every
//! 256th batch: a split could gain it little, and its probe slows the
//! faster side (a CPU part takes the cores that feed the GPU).
//!
//! What a splitter learns belongs to its [`Signer`](crate::sig::Signer):
//! two signers in one process learn apart, unless they share one signer
//! ([`SharedSigner`](crate::sig::SharedSigner); a
//! [`Validator`](crate::Validator) shares its own between its signature
//! requests and its chains). The GPU device is the one thing users of one
//! [`GpuSigner`](crate::gpu::GpuSigner) share: it runs one split's GPU part
//! at a time, and warms up once. Each batch's choice, times and predictions
//! are a `tracing` event at debug level, target `vigil::hybrid` (the CLI
//! shows them with `VIGIL_HYBRID_TRACE=1`).
//!
//! The model ([`HybridSplitter`], in `model.rs`) only predicts and learns;
//! the executor (`executor.rs`) runs a batch as it says.
//!
//! `--backend gpu` never splits (every batch on the GPU, the comparison
//! point of the benchmarks), `--backend cpu` never uses a GPU. `auto` uses
//! this hybrid with a hardware adapter; with only a software adapter
//! (lavapipe) it uses the CPU alone, unless the environment variable
//! `VIGIL_HYBRID=1` forces the hybrid (for tests; the CLI reads it). In
//! the engine the hybrid is chosen with
//! [`GpuMode::Hybrid`](crate::verify::GpuMode) in
//! [`VerifyOptions`](crate::VerifyOptions) or
//! [`ValidatorConfig`](crate::ValidatorConfig), on any adapter.

mod executor;
mod model;

pub(crate) use executor::{Feeder, Hybrid, verify_signatures};
pub use model::{GpuModel, HybridSplitter, Outcome, Prediction, SMOOTHING};
