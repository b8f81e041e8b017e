//! `vigil verify --follow DIR`: a writer appends a chain in bursts (blocks
//! cut anywhere, across segment files); what is reported is what one run
//! over the whole chain reports, each block soon after its last byte lands;
//! a tail left cut short is waited for until `--settle`, garbage is reported
//! at once, and SIGTERM ends it with the state written.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::common;
use common::*;

/// Reads the follower's stdout lines on a thread, each with when it came.
fn lines_of(child: &mut Child) -> Receiver<(Instant, Value)> {
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines() {
            let line = line.unwrap();
            let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
            if tx.send((Instant::now(), value)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Takes lines until `n` have come in all (`got`), or `within` passes.
fn take(rx: &Receiver<(Instant, Value)>, got: &mut Vec<(Instant, Value)>, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while got.len() < n {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => got.push(line),
            Err(RecvTimeoutError::Timeout) => return,
            Err(e) => panic!("{e}"),
        }
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
}

/// Events without the directory's name in file names.
fn named(v: &Value, dir: &Path) -> Value {
    let mut v = v.clone();
    let prefix = format!("{}/", dir.display());
    for key in ["file", "previous_file"] {
        if let Some(f) = v[key].as_str() {
            v[key] = Value::from(f.trim_start_matches(&prefix));
        }
    }
    v
}

#[test]
fn follow_reports_a_growing_chain_as_one_run_does() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    let files = segments(&chain);
    let full = vigil(&["verify", s(&chain), "--json", "--all"]);
    assert_eq!(code(&full), 1);
    let expected: Vec<Value> =
        ndjson_lines(&full.stdout).iter().filter(|v| v["type"] != "summary").map(|v| named(v, &chain)).collect();

    let live = tmp.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let st = tmp.path().join("state.json");
    let mut child = Command::new(VIGIL)
        .args(["verify", "--follow", s(&live), "--json", "--settle", "1.5", "--state", s(&st)])
        .args(["--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let said = crate::metrics::announced(&mut err, &["vigil: metrics on http://"]);
    let metrics = said[0].strip_suffix("/metrics").unwrap().to_owned();
    let err = std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).map(|_| rest)
    });
    let mut got = Vec::new();

    // The chain written in bursts of 1 to 3000 bytes, 0 to 40 ms apart,
    // cutting blocks and headers anywhere, file after file.
    let mut seed = 7u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let target = live.join(f.file_name().unwrap());
        let mut at = 0;
        while at < bytes.len() {
            let n = (1 + next(3000) as usize).min(bytes.len() - at);
            append(&target, &bytes[at..at + n]);
            at += n;
            std::thread::sleep(Duration::from_millis(next(40)));
        }
    }
    let last_write = Instant::now();
    take(&rx, &mut got, expected.len(), Duration::from_secs(20));
    let events: Vec<Value> = got.iter().map(|(_, v)| named(v, &live)).collect();
    assert_eq!(events, expected, "what --follow reported, against one run");
    // The last block is reported within a second of its last byte.
    let (when, _) = got.last().unwrap();
    assert!(when.duration_since(last_write) < Duration::from_secs(1), "{:?}", when.duration_since(last_write));

    // Garbage appended to the last file (bytes that cannot start a block)
    // is reported at once; nothing after it in that file is read.
    let last = live.join(files.last().unwrap().file_name().unwrap());
    let garbage_at = std::fs::metadata(&last).unwrap().len();
    append(&last, &[0x55; 100]);
    let wrote = Instant::now();
    take(&rx, &mut got, expected.len() + 1, Duration::from_secs(5));
    let (when, garbage) = got.last().unwrap();
    assert_eq!(garbage["type"], "malformed", "{garbage}");
    assert_eq!((garbage["file"].as_str(), garbage["offset"].as_u64()), (Some(s(&last)), Some(garbage_at)));
    assert!(when.duration_since(wrote) < Duration::from_secs(1));

    // A block cut short in a new segment file: waited for (the metrics say
    // so), then reported malformed once the file has not changed for
    // --settle.
    let torn = live.join("zzz.vblk");
    append(&torn, &std::fs::read(&files[0]).unwrap()[..150]);
    let cut = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    let m = crate::metrics::samples(&crate::metrics::http_get(&metrics, "/metrics").2);
    assert_eq!(m["vigil_waiting_for_tail"], 1.0);
    take(&rx, &mut got, expected.len() + 2, Duration::from_secs(5));
    let (when, tail) = got.last().unwrap();
    assert_eq!(tail["type"], "malformed", "{tail}");
    assert_eq!((tail["file"].as_str(), tail["offset"].as_u64()), (Some(s(&torn)), Some(0)));
    let waited = when.duration_since(cut);
    assert!(waited >= Duration::from_millis(1400) && waited < Duration::from_secs(3), "{waited:?}");

    // Its metrics count what it reported.
    let count = |f: &dyn Fn(&Value) -> bool| got.iter().filter(|(_, v)| f(v)).count() as f64;
    // Updated after each step, just after its lines: scrape until they show.
    let started = Instant::now();
    let m = loop {
        let m = crate::metrics::samples(&crate::metrics::http_get(&metrics, "/metrics").2);
        let malformed = m["vigil_blocks_total{verdict=\"malformed\"}"];
        if malformed == count(&|v| v["type"] == "malformed") || started.elapsed() > Duration::from_secs(10) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(m["vigil_blocks_total{verdict=\"invalid\"}"], count(&|v| v["valid"] == false));
    assert_eq!(m["vigil_blocks_total{verdict=\"valid\"}"], count(&|v| v["valid"] == true));
    assert_eq!(m["vigil_blocks_total{verdict=\"malformed\"}"], count(&|v| v["type"] == "malformed"));
    assert_eq!(m["vigil_waiting_for_tail"], 0.0);
    assert!(m["vigil_tip_height"] >= 30.0 && m["vigil_signatures_verified_total{device=\"cpu\"}"] > 0.0, "{m:?}");

    // SIGTERM: the summary, the state written, the exit code of what it verified.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    take(&rx, &mut got, expected.len() + 3, Duration::from_secs(5));
    let summary = &got.last().unwrap().1;
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["blocks"], ndjson_lines(&full.stdout).last().unwrap()["blocks"]);
    assert_eq!(status.code(), Some(1));
    let err = err.join().unwrap().unwrap();
    assert!(err.contains("SIGTERM: stopped following"), "{err}");
    let state: Value = serde_json::from_slice(&std::fs::read(&st).unwrap()).unwrap();
    assert_eq!(state["blocks"], summary["blocks"]);
    // Resuming the followed directory: nothing new but the torn tail, read again.
    let o = vigil(&["verify", s(&live), "--resume", s(&st), "--json"]);
    let lines = ndjson_lines(&o.stdout);
    assert_eq!(lines[0]["type"], "malformed", "{lines:?}");
    assert_eq!(lines.last().unwrap()["blocks"], 0);
}
