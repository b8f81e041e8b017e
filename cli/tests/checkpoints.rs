//! `vigil verify --state / --resume / --checkpoint-every`, signals, and
//! progress for operators: a chain verified in pieces as it grows reports
//! exactly what one run over the whole chain reports.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::*;

/// Makes `dir` hold the first `n` bytes of the chain, file by file (the
/// file holding byte `n` cut there, later files absent), as a writer that
/// appends would leave it.
fn grow_to(files: &[PathBuf], dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut left = n;
    for f in files {
        let bytes = std::fs::read(f).unwrap();
        let take = left.min(bytes.len() as u64) as usize;
        std::fs::write(dir.join(f.file_name().unwrap()), &bytes[..take]).unwrap();
        left -= take as u64;
        if left == 0 {
            break;
        }
    }
}

/// The report's events (blocks, malformed blocks, discontinuities), with
/// the chain directory's name taken out of file names.
fn events(stdout: &[u8], dir: &Path) -> Vec<Value> {
    let prefix = format!("{}/", dir.display());
    ndjson_lines(stdout)
        .into_iter()
        .filter(|v| v["type"] != "summary")
        .map(|mut v| {
            for key in ["file", "previous_file"] {
                if let Some(f) = v[key].as_str() {
                    v[key] = Value::from(f.trim_start_matches(&prefix));
                }
            }
            v
        })
        .collect()
}

fn state(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Where a checkpoint resumes: the last file's name and its length.
fn position(state: &Value) -> (String, u64) {
    let last = state["files"].as_array().unwrap().last().unwrap();
    let name = Path::new(last["path"].as_str().unwrap()).file_name().unwrap().to_str().unwrap().to_owned();
    (name, last["length"].as_u64().unwrap())
}

/// A chain verified in steps as it grows (cut mid-block, at file
/// boundaries, around the malformed block), each step resuming the last:
/// together the steps report exactly the blocks a full run reports, each
/// step's exit code is that of its own blocks, and the last resume is "up
/// to date".
#[test]
fn resumed_runs_report_exactly_what_a_full_run_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    let files = segments(&chain);
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let full = vigil(&["verify", s(&chain), "--json", "--all"]);
    assert_eq!(code(&full), 1, "{}", stderr(&full));
    let expected = events(&full.stdout, &chain);
    assert!(expected.iter().any(|e| e["type"] == "malformed"), "the chain has a malformed block");

    // File boundaries, a cut inside a block, and the end of each file but
    // the first, in several schedules of steps.
    let mut ends = vec![0u64];
    for f in &files {
        ends.push(ends.last().unwrap() + std::fs::metadata(f).unwrap().len());
    }
    let schedules: Vec<Vec<u64>> = vec![
        vec![total / 3, total],
        vec![ends[2], ends[5] + 100, total * 2 / 3 + 7, total],
        vec![301, ends[1] + 1, total - 1, total],
        (1..=9).map(|i| total * i / 9).collect(),
    ];
    for (k, schedule) in schedules.iter().enumerate() {
        let dir = tmp.path().join(format!("grow{k}"));
        let st = tmp.path().join(format!("state{k}.json"));
        let mut got: Vec<Value> = Vec::new();
        for (step, &n) in schedule.iter().enumerate() {
            grow_to(&files, &dir, n);
            let flag = if step == 0 { "--state" } else { "--resume" };
            let o = vigil(&["verify", s(&dir), flag, s(&st), "--json", "--all"]);
            let mine = events(&o.stdout, &dir);
            let invalid = mine.iter().any(|e| e["valid"] == false || e["type"] == "malformed");
            assert_eq!(code(&o), if invalid { 1 } else { 0 }, "schedule {k} step {step}: {}", stderr(&o));
            // A block cut short at the end is reported malformed by this
            // step; the next step reads it again, whole.
            let (file, offset) = position(&state(&st));
            got.extend(
                mine.into_iter().filter(|e| !(e["type"] == "malformed" && e["file"] == file && e["offset"] == offset)),
            );
        }
        // What is left unexplained at the end is the chain's own malformed
        // block, which the full run reports too.
        assert_eq!(got, expected, "schedule {k}: {schedule:?}");
        let again = vigil(&["verify", s(&dir), "--resume", s(&st)]);
        assert_eq!(code(&again), 0, "{}", stderr(&again));
        let text = String::from_utf8_lossy(&again.stdout);
        assert!(text.starts_with("up to date: 36 blocks verified, tip height"), "{text}");
    }
}

/// A state that does not match the chain is refused with exit 2 naming
/// the file: bytes changed before the offset, an earlier file that grew,
/// files missing, other rules or authorities, a file that is not a state.
#[test]
fn a_state_that_does_not_match_the_chain_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    let files = segments(&chain);
    let st = tmp.path().join("state.json");
    let dir = tmp.path().join("grow");
    let half: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum::<u64>() / 2;
    grow_to(&files, &dir, half);
    let o = vigil(&["verify", s(&dir), "--state", s(&st)]);
    assert!([0, 1].contains(&code(&o)), "{}", stderr(&o));
    let saved = std::fs::read(&st).unwrap();
    let mine = segments(&dir);
    assert!(mine.len() >= 3);

    let refused = |args: &[&str], needle: &str| {
        let mut all = vec!["verify", s(&dir), "--resume", s(&st)];
        all.extend(args);
        let o = vigil(&all);
        assert_eq!(code(&o), 2, "{all:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{all:?}: {}", stderr(&o));
        std::fs::write(&st, &saved).unwrap();
    };
    refused(&["--rules", "strict"], "rules zip215");
    let keys = tmp.path().join("keys");
    std::fs::write(&keys, format!("{}\n", "11".repeat(32))).unwrap();
    refused(&["--authorities", s(&keys)], "authorities");

    // One byte of the first file flipped.
    let first = std::fs::read(&mine[0]).unwrap();
    let mut flipped = first.clone();
    flipped[100] ^= 1;
    std::fs::write(&mine[0], &flipped).unwrap();
    refused(&[], &format!("{}: its first", s(&mine[0])));
    std::fs::write(&mine[0], &first).unwrap();

    // The second file grew, though the third was verified after it.
    let second = std::fs::read(&mine[1]).unwrap();
    let mut grown = second.clone();
    grown.extend_from_slice(&[0; 10]);
    std::fs::write(&mine[1], &grown).unwrap();
    refused(&[], &format!("{}: it grew", s(&mine[1])));
    std::fs::write(&mine[1], &second).unwrap();

    // The last file shrank below its offset.
    let last = mine.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    std::fs::write(last, &bytes[..bytes.len() / 2]).unwrap();
    let (_, offset) = position(&state(&st));
    if offset > (bytes.len() / 2) as u64 {
        refused(&[], "fewer than the");
    }
    std::fs::write(last, &bytes).unwrap();

    // A file gone: the first, or the last.
    std::fs::rename(&mine[0], tmp.path().join("away")).unwrap();
    refused(&[], "file 1 of the chain is");
    std::fs::rename(tmp.path().join("away"), &mine[0]).unwrap();
    std::fs::rename(last, tmp.path().join("away")).unwrap();
    refused(&[], "is not among the chain's files");
    std::fs::rename(tmp.path().join("away"), last).unwrap();

    // A FIFO (opening it would block), a device.
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for path in [s(&fifo), "/dev/zero"] {
        let o = vigil(&["verify", s(&dir), "--resume", path]);
        assert_eq!(code(&o), 2);
        assert!(stderr(&o).contains(&format!("{path}: not a vigil checkpoint: not a regular file")), "{}", stderr(&o));
    }

    // Not a state; a state whose digest does not match its files.
    std::fs::write(&st, b"{\"vigil_checkpoint\": 1").unwrap();
    refused(&[], "not a vigil checkpoint");
    let mut forged = state(&st);
    forged["files"][0]["length"] = Value::from(3);
    std::fs::write(&st, forged.to_string()).unwrap();
    refused(&[], "its digest does not match its files");
    let o = vigil(&["verify", s(&dir), "--resume", s(&tmp.path().join("none.json"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("none.json"), "{}", stderr(&o));

    // Untouched, and grown to the whole chain, it resumes: later faults make it exit 1.
    grow_to(&files, &dir, u64::MAX);
    let o = vigil(&["verify", s(&dir), "--resume", s(&st)]);
    assert!(stderr(&o).contains("vigil: resuming after "), "{}", stderr(&o));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = vigil(&["verify", s(&dir), "--resume", s(&st)]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("up to date: 36 blocks"), "{}", stderr(&o));
    assert_eq!(code(&o), 0);
}

/// A chain big enough to take a few seconds on one thread.
fn slow_chain(dir: &Path) -> PathBuf {
    let out = dir.join("slow");
    let o = vigil(&[
        "gen",
        s(&out),
        "--seed",
        "4",
        "--blocks",
        "1200",
        "--txs-per-block",
        "40..80",
        "--senders",
        "64",
        "--payload",
        "0..16",
        "--segment-size",
        "1MiB",
        "--fault",
        "tx_signature@100",
        "--fault",
        "nonce@1100",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out
}

/// SIGINT or SIGTERM mid-run: the batch in hand is finished, the state
/// written (checkpoints were also written while it ran), where it stopped
/// printed, exit 128 + the signal; resuming then reports the rest, and
/// both together report what one run does.
#[test]
fn a_signal_stops_at_a_batch_with_the_state_written_and_resume_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = slow_chain(tmp.path());
    let full = vigil(&["verify", s(&chain), "--json", "--all"]);
    assert_eq!(code(&full), 1);
    let expected = events(&full.stdout, &chain);
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let st = tmp.path().join(format!("{name}.json"));
        let mut child = Command::new(VIGIL)
            .args(["verify", s(&chain), "--json", "--all", "--threads", "1", "--state", s(&st)])
            .args(["--checkpoint-every", "0.1", "--progress", "json", "--progress-every", "0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut bytes).map(|_| bytes)
        });
        // Progress events come while it runs; a checkpoint is written.
        let mut line = String::new();
        let started = Instant::now();
        loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "stderr ended before any progress");
            if line.contains("\"type\":\"progress\"") && st.exists() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60));
        }
        let progress: Value = serde_json::from_str(&line).unwrap();
        assert!(progress["blocks"].as_u64().unwrap() > 0 && progress["total_bytes"].as_u64().unwrap() > 0);
        let mid = state(&st);
        assert!(mid["blocks"].as_u64().unwrap() > 0, "{mid}");
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        let stdout = reader.join().unwrap().unwrap();
        assert_eq!(status.code(), Some(128 + signal), "{name}: {rest}");
        assert!(rest.contains(&format!("vigil: {name}: stopped after")), "{rest}");
        let stopped = state(&st);
        let blocks = stopped["blocks"].as_u64().unwrap();
        assert!(blocks > 0 && blocks < 1200, "{name}: stopped after {blocks} blocks: not mid-run");
        let mut got = events(&stdout, &chain);
        assert_eq!(got.len() as u64, blocks, "every block verified before the stop is reported");
        let resumed = vigil(&["verify", s(&chain), "--json", "--all", "--resume", s(&st)]);
        assert_eq!(code(&resumed), if blocks <= 1100 { 1 } else { 0 }, "{}", stderr(&resumed));
        got.extend(events(&resumed.stdout, &chain));
        assert_eq!(got, expected, "{name}");
    }
}

/// Off a terminal: progress lines every --progress-every seconds (text
/// with percentage and ETA, or NDJSON); --quiet prints the verdict alone.
#[test]
fn progress_lines_off_a_terminal_and_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = slow_chain(tmp.path());
    let o = vigil(&["verify", s(&chain), "--threads", "1", "--progress-every", "0.1"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("vigil: progress: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(" blocks, ") && line.contains("%), ETA "), "{line}");

    let o = vigil(&["verify", s(&chain), "--threads", "1", "--progress", "json", "--progress-every", "0.1"]);
    let events: Vec<Value> = stderr(&o).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(events.len() >= 2, "{}", stderr(&o));
    for e in &events {
        assert_eq!(e["type"], "progress");
        let percent = e["percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&percent) && e["eta_seconds"].is_number(), "{e}");
    }
    assert!(events.windows(2).all(|w| w[0]["bytes"].as_u64() <= w[1]["bytes"].as_u64()));

    let quiet = vigil(&["verify", s(&chain), "--quiet", "--progress", "text", "--progress-every", "0.1"]);
    assert_eq!(code(&quiet), 1);
    let text = String::from_utf8_lossy(&quiet.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("INVALID: 1200 blocks (2 invalid)"), "{text}");
    assert_eq!(stderr(&quiet), "");
    let o = vigil(&["verify", s(&chain), "--progress", "none", "--progress-every", "0"]);
    assert_eq!(code(&o), 2, "an interval of 0 is refused");
}

/// `--log-format json`: diagnostics as JSON lines with levels, errors too.
#[test]
fn logs_as_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    let st = tmp.path().join("state.json");
    let o = vigil(&["--log-format", "json", "verify", s(&chain), "--state", s(&st), "--progress", "none"]);
    assert_eq!(code(&o), 1);
    let events: Vec<Value> =
        stderr(&o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect();
    let state = events
        .iter()
        .find(|e| e["fields"]["message"].as_str().is_some_and(|m| m.starts_with("state after 36 blocks")))
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(state["level"], "INFO");
    assert!(state["timestamp"].is_string() && state["target"].as_str().unwrap().starts_with("vigil"));
    let o = vigil(&["verify", s(&tmp.path().join("none")), "--log-format", "json"]);
    assert_eq!(code(&o), 2);
    let error: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(error["level"], "ERROR");
    assert!(error["fields"]["message"].as_str().unwrap().contains("none: no such file"), "{error}");
}
