//! vigil's engine: the verification pipeline for chain format v1 (input,
//! framing, hashing, signatures on CPU lanes or GPU, chain rules, reports),
//! the streaming [`Verifier`], the node-facing [`Validator`] and sharding.
//! The `vigil` CLI, the coprocessor server (`vigil-server`) and the C ABI
//! (`vigil-capi`) are thin layers over this crate: a node embedding it gets
//! exactly what they get.
//!
//! **Cargo features.** `gpu` (on by default here; off in the workspace's
//! dependency on this crate, so the server, the C ABI and embedders link no
//! GPU stack unless they ask): the WGSL backend on wgpu ([`gpu`]) and the
//! CPU+GPU split ([`hybrid`]), given to a [`sig::Signer`] through
//! [`sig::SignerConfig`]. Without it every signature is verified on the CPU,
//! with the same verdicts.
#![warn(missing_docs)]

// The pipeline, in the order the data flows through it (verify.rs has the
// picture): the format's views and hashes come from `vigil-format`.
pub use vigil_format as format;
pub mod input;
pub mod frame;
pub mod hash;
pub mod sig;
#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(feature = "gpu")]
pub mod hybrid;
pub mod chain;
pub mod report;
pub mod checkpoint;
pub mod follow;

// What drives the pipeline: a whole chain, a node's requests, a shard.
pub mod verify;
pub mod validator;
pub mod stats;
pub mod shard;

#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use chain::ChainState;
pub use checkpoint::{Checkpoint, CheckpointError};
pub use format::{BlockHeader, BlockView, Malformation, TxHeader, TxView};
pub use hash::Digest;
pub use input::{
    ChainInput, InputError, IoMode, PathKind, Segment, expand_files, expand_inputs, expand_paths, path_kind,
};
pub use report::{
    BlockRef, BlockReport, CollectSink, Discontinuity, Failure, Flow, MalformedReport, ReportSink, Rule, SenderFirst,
    Summary,
};
pub use sig::RuleSet;
pub use validator::{
    BlockVerdict, Pending, Request, SigBatch, SubmitError, Validator, ValidatorConfig, ValidatorStatus, Verdict,
};
pub use verify::{GpuMode, Verifier, VerifyOptions};

/// Runs `work` in `pool` (its parallel parts on that pool's threads), or as
/// it is (on rayon's global pool) when there is none.
pub(crate) fn in_pool<R: Send>(pool: Option<&rayon::ThreadPool>, work: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}
