//! The test data kept in the repository under `datasets/`: the conformance
//! chains of an independent implementation of the format
//! (`datasets/conformance/`) and public ed25519 test vectors
//! (`datasets/vectors/`), read in place. A missing directory fails the test
//! loudly.

use std::path::{Path, PathBuf};

/// `datasets/<sub>` in the workspace, which must exist.
pub fn datasets(sub: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets").join(sub);
    assert!(dir.is_dir(), "test data datasets/{sub} missing at {}", dir.display());
    dir
}

/// `datasets/conformance/`: the valid chain (`valid/`) and the fault files
/// (`faults/`), each with its `expected.json`.
pub fn conformance() -> PathBuf {
    datasets("conformance")
}

/// `datasets/vectors/`: the public ed25519 vectors.
pub fn vectors() -> PathBuf {
    datasets("vectors")
}

/// The bytes of `datasets/vectors/<name>`.
pub fn read_vectors(name: &str) -> Vec<u8> {
    let path = vectors().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read test vectors {}: {e}", path.display()))
}

/// `datasets/vectors/<name>` parsed as JSON.
pub fn vectors_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&read_vectors(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

/// The conformance chains, each a list of files: the valid chain, then each
/// of the 46 fault files alone (sorted).
pub fn conformance_chains() -> Vec<Vec<PathBuf>> {
    let dir = conformance();
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
