//! The parts of the `vigil` command line that its companion binaries share
//! (`vigil-bench`, in the benches crate): argument parsers, how `--backend`
//! opens a signature backend, logging, exit codes and the run-stopping
//! error. Not a stable API: use `vigil-engine` to embed vigil.

pub mod args;
pub mod log;

/// Exit codes: 0 all valid, 1 something invalid or malformed, 2 usage or I/O error.
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// A run-stopping error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct Fatal(pub String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
}

/// Sizes rayon's global pool: `threads` workers, or all cores when `None`.
pub fn init_threads(threads: Option<usize>) -> Result<(), Fatal> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            return Err(Fatal("--threads must be at least 1".into()));
        }
        builder = builder.num_threads(n);
    }
    Ok(builder.build_global()?)
}
