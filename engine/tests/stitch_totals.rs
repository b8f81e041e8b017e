//! `vigil stitch` reads summaries it did not write: totals that overflow
//! when summed are refused, naming the total (they panicked in debug builds
//! and wrapped silently in release ones).

use std::path::PathBuf;
use vigil_engine::shard::{self, Range, StitchError};
use vigil_engine::{IoMode, VerifyOptions, expand_paths};

#[test]
fn totals_that_overflow_when_summed_are_inconsistent() {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/sample");
    let files = expand_paths(&[sample]).unwrap();
    let walk = shard::walk(&files, IoMode::Read).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, range) in [Range { start: 0, end: Some(2) }, Range { start: 2, end: None }].into_iter().enumerate() {
        let mut summary = shard::run_range(&walk, range, None, VerifyOptions::default(), None).unwrap();
        summary.totals.files = u64::MAX - 1;
        let path = dir.path().join(format!("{i}.json"));
        shard::write_summary(&path, &summary).unwrap();
        paths.push(path);
    }
    let err = shard::stitch(&paths).unwrap_err();
    assert!(matches!(&err, StitchError::Overflow { what: "files", .. }), "{err}");
}
