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

/// The conformance chains, each a list of files: the valid chain, then each
/// of the 46 fault files alone (sorted).
pub fn conformance_chains() -> Vec<Vec<PathBuf>> {
    let dir = shared("datasets/conformance");
    let mut chains = vec![vigil_engine::expand_paths(&[dir.join("valid")]).unwrap()];
    let mut faults: Vec<PathBuf> = std::fs::read_dir(dir.join("faults"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "vblk"))
        .collect();
    faults.sort();
    assert_eq!(faults.len(), 46);
    chains.extend(faults.into_iter().map(|f| vec![f]));
    chains
}
