//! vigil's engine: chain format v1, hashing, signature checking, chain rules
//! and the streaming verifier. The `vigil` CLI is a thin layer over this
//! crate; a node embedding it gets exactly what the CLI gets.

pub mod chain;
pub mod format;
pub mod frame;
pub mod gpu;
pub mod hash;
pub mod hybrid;
pub mod input;
pub mod multihash;
pub mod report;
pub mod server;
pub mod shard;
pub mod sig;
pub mod validator;
pub mod verify;

pub use chain::ChainState;
pub use format::{BlockHeader, BlockView, Malformation, TxHeader, TxView};
pub use hash::Digest;
pub use input::{
    ChainInput, InputError, IoMode, PathKind, Segment, expand_files, expand_inputs, expand_paths, path_kind,
};
pub use report::{
    BlockRef, BlockReport, CollectSink, Discontinuity, Failure, MalformedReport, ReportSink, Rule, SenderFirst, Summary,
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
