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

/// The bytes of `shared/vectors/<name>`.
pub fn read_vectors(name: &str) -> Vec<u8> {
    let path = shared("vectors").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read test vectors {}: {e}", path.display()))
}

/// `shared/vectors/<name>` parsed as JSON.
pub fn vectors_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&read_vectors(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}
