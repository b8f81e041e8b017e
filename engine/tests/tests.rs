//! The engine's integration tests, one binary (ripgrep's `tests/tests.rs`):
//! one link instead of one per file. Run one file's tests by its module,
//! e.g. `cargo test -p vigil-engine --test integration lanes_equal_single::`.
//! The GPU tests need the cargo feature `gpu` (on by default).

mod common;

mod bad_input;
mod batch_equals_single;
mod conformance;
mod data_drift;
mod frame;
#[cfg(feature = "gpu")]
mod gpu_blake3;
#[cfg(feature = "gpu")]
mod gpu_conformance;
#[cfg(feature = "gpu")]
mod gpu_ed25519;
#[cfg(feature = "gpu")]
mod gpu_selftest;
#[cfg(feature = "gpu")]
mod hybrid;
mod lanes_equal_single;
mod multihash;
mod shard;
mod stitch_totals;
mod validator;
mod vectors;
