//! The test data in the repository (`datasets/vectors/`,
//! `datasets/conformance/`) is a copy of the data the project was specified
//! with, kept in `../shared/` beside the checkout on the developers' machines
//! (`$VIGIL_SHARED` names another place). Where that directory exists, the
//! copy must not drift from it: the same files, byte for byte, neither side
//! with a file the other lacks. Where it does not (a clone on its own, CI),
//! there is nothing to compare with and the test passes without a word.
//! Only this test looks at `../shared`: every other test reads the
//! repository's copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The directory pairs compared: the original under the shared root, the
/// copy under the workspace.
const PAIRS: [(&str, &str); 2] = [("vectors", "datasets/vectors"), ("datasets/conformance", "datasets/conformance")];

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the engine is a member of the workspace")
}

/// The shared root to compare with: `$VIGIL_SHARED` (which must exist: it
/// was asked for), else `../shared` beside the workspace when it exists.
fn shared_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VIGIL_SHARED") {
        let dir = PathBuf::from(dir);
        assert!(dir.is_dir(), "VIGIL_SHARED={} is not a directory", dir.display());
        return Some(dir);
    }
    let dir = workspace().join("../shared");
    dir.is_dir().then_some(dir)
}

/// Every file under `dir` (following links), by its path relative to `dir`
/// with `/` separators, with its bytes. A missing directory is empty.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path.strip_prefix(root).unwrap();
                let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                out.insert(name, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out
}

/// What differs between `original` and `copy`, one line each (empty when
/// they agree).
fn drift(original: &Path, copy: &Path) -> Vec<String> {
    let (a, b) = (files(original), files(copy));
    let mut out = Vec::new();
    if a.is_empty() {
        out.push(format!("{}: no files", original.display()));
    }
    for (name, bytes) in &a {
        match b.get(name) {
            None => out.push(format!("{name}: in {} but not in {}", original.display(), copy.display())),
            Some(other) if other != bytes => out.push(match bytes.iter().zip(other).position(|(x, y)| x != y) {
                Some(at) => format!("{name}: differs at byte {at} in {}", copy.display()),
                None => format!(
                    "{name}: {} bytes in {}, {} in {}",
                    bytes.len(),
                    original.display(),
                    other.len(),
                    copy.display()
                ),
            }),
            Some(_) => {}
        }
    }
    for name in b.keys().filter(|name| !a.contains_key(*name)) {
        out.push(format!("{name}: in {} but not in {}", copy.display(), original.display()));
    }
    out
}

#[test]
fn repository_data_equals_the_shared_originals() {
    let Some(shared) = shared_root() else { return };
    let mut problems = Vec::new();
    for (original, copy) in PAIRS {
        problems.extend(drift(&shared.join(original), &workspace().join(copy)));
    }
    assert!(
        problems.is_empty(),
        "the repository's test data has drifted from {} (copy the originals again, byte for byte):\n{}",
        shared.display(),
        problems.join("\n")
    );
}

/// The comparison itself finds each kind of drift, on a scratch copy: a
/// changed byte, a file missing on either side, a different length.
#[test]
fn drift_finds_a_changed_byte_and_a_missing_or_extra_file() {
    let original = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    for dir in [original.path(), copy.path()] {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.json"), b"{\"x\": 1}").unwrap();
        std::fs::write(dir.join("sub/b.vblk"), [0u8, 1, 2, 3]).unwrap();
    }
    assert_eq!(drift(original.path(), copy.path()), Vec::<String>::new());

    std::fs::write(copy.path().join("sub/b.vblk"), [0u8, 1, 9, 3]).unwrap();
    let found = drift(original.path(), copy.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("sub/b.vblk: differs at byte 2"), "{found:?}");

    std::fs::write(copy.path().join("sub/b.vblk"), [0u8, 1, 2]).unwrap();
    let found = drift(original.path(), copy.path());
    assert!(found.len() == 1 && found[0].starts_with("sub/b.vblk: 4 bytes in"), "{found:?}");

    std::fs::write(copy.path().join("sub/b.vblk"), [0u8, 1, 2, 3]).unwrap();
    std::fs::write(copy.path().join("extra.txt"), b"").unwrap();
    std::fs::remove_file(copy.path().join("a.json")).unwrap();
    let found = drift(original.path(), copy.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("a.json: in ") && found[0].ends_with(&format!("not in {}", copy.path().display())));
    assert!(
        found[1].starts_with("extra.txt: in ") && found[1].ends_with(&format!("not in {}", original.path().display()))
    );

    let empty = tempfile::tempdir().unwrap();
    assert!(drift(&empty.path().join("none"), copy.path())[0].ends_with("no files"));
}
