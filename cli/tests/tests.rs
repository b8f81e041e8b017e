//! The CLI's integration tests, one binary (ripgrep's `tests/tests.rs`): they
//! run the `vigil` binary. Run one file's tests by its module, e.g.
//! `cargo test -p vigil --test integration shards::`.

mod common;

mod checkpoints;
mod cli;
mod deploy;
mod follow;
mod hostile_input;
mod metrics;
mod serve;
mod shards;
