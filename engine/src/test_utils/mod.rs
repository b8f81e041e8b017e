//! Helpers for tests and benchmarks, with the cargo feature `test-utils`
//! (reth's pattern): what the engine's, the server's and the benches'
//! differential tests share. Not part of the verification API.

pub mod sig_cases;
