#![allow(dead_code)] // each test crate uses a subset

pub mod data;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod lanes;
pub use vigil_engine::test_utils::sig_cases;

/// `$name` parsed, or `default` when unset (test sizes and seeds).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}
