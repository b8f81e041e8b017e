//! `../shared/` beside the checkout (or `$VIGIL_SHARED`): conformance data
//! and vectors, read in place. A missing directory fails the test loudly.

use std::path::{Path, PathBuf};

/// `shared/<sub>`, which must exist.
pub fn shared(sub: &str) -> PathBuf {
    let root = match std::env::var_os("VIGIL_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let dir = root.join(sub);
    assert!(dir.is_dir(), "{sub} missing at {} (set VIGIL_SHARED to the shared/ directory)", dir.display());
    dir
}
