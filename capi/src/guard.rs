//! The panic guard every entry point runs its body under: no Rust panic
//! crosses into C.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, turning a panic into `on_panic`.
pub(crate) fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            // Dropping the payload could itself panic; leak it instead.
            std::mem::forget(payload);
            on_panic
        }
    }
}
