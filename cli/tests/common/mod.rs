//! Helpers the CLI's integration tests share: running the real `vigil`
//! binary and reading what it says.
#![allow(dead_code)] // each test crate uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// The variables `--shard auto` reads from a scheduler.
pub const SCHEDULER_VARS: [&str; 5] =
    ["JOB_COMPLETION_INDEX", "VIGIL_SHARDS", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The independent implementation's conformance chains, kept in the
/// repository (`datasets/conformance`).
pub fn conformance() -> PathBuf {
    let dir = workspace().join("datasets/conformance");
    assert!(dir.is_dir(), "conformance data missing at {}", dir.display());
    dir
}

/// A chain directory's `*.vblk` files, in chain order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vblk"))
        .collect();
    files.sort();
    files
}

/// Whether `vigil devices` sees a GPU adapter; without one, says that
/// `what` skips (and fails under `VIGIL_REQUIRE_GPU=1`, as CI runs).
pub fn gpu_adapter_or_skip(what: &str) -> bool {
    if !vigil(&["devices", "--json"]).stdout.is_empty() {
        return true;
    }
    assert!(std::env::var("VIGIL_REQUIRE_GPU").map_or(true, |v| v != "1"), "VIGIL_REQUIRE_GPU=1 but no adapter");
    eprintln!("SKIPPING {what}: no GPU adapter");
    false
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Clears the scheduler variables `--shard auto` reads, whatever the
/// environment the tests run in.
pub fn without_scheduler(cmd: &mut Command) {
    for k in SCHEDULER_VARS {
        cmd.env_remove(k);
    }
}

/// Runs `vigil` (outside any scheduler) and waits for it.
pub fn vigil(args: &[&str]) -> Output {
    let mut cmd = Command::new(VIGIL);
    without_scheduler(&mut cmd);
    cmd.args(args).output().expect("run vigil")
}

/// Runs `vigil` with `input` on its standard input, written from a thread
/// so that a large input cannot deadlock against a full output pipe
/// (vigil may stop reading early: a broken pipe there is fine).
pub fn vigil_stdin(args: &[&str], input: impl AsRef<[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(VIGIL);
    without_scheduler(&mut cmd);
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.as_ref().to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().ok();
    out
}

/// The exit code (a process ended by a signal fails the test, naming it).
pub fn code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status.code().unwrap_or_else(|| panic!("killed by signal {:?}", o.status.signal()))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// NDJSON lines as values.
pub fn ndjson_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// A faulty chain for the scale-out tests: several files, every rule broken
/// somewhere, a malformed block ending a file.
pub fn faulty_chain(dir: &Path) -> PathBuf {
    let out = dir.join("chain");
    let faults = [
        "tx_signature@3",
        "nonce@7",
        "prev_hash@9",
        "malformed@12",
        "height@14",
        "chain_id@17",
        "timestamp@20",
        "tx_root@23",
        "block_signature@25",
        "tx_timestamp@28",
        "nonce@31",
    ];
    let mut args = vec![
        "gen",
        s(&out),
        "--seed",
        "9",
        "--blocks",
        "36",
        "--txs-per-block",
        "0..9",
        "--senders",
        "5",
        "--payload",
        "0..64",
        "--segment-size",
        "4KiB",
    ];
    for f in &faults {
        args.extend(["--fault", f]);
    }
    let o = vigil(&args);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    out
}
