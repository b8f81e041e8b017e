//! The `vigil` binary given what an attacker or a careless pipeline gives
//! it: streams, FIFOs, devices, odd directory entries, files out of order
//! or twice, files that shrink while mapped, closed output pipes, huge
//! blocks and absurd flags. Each case ran before its fix and got VALID for
//! nothing, a hang, a bare "Bus error", a panic or gigabytes of memory.

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::*;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/sample")
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    ndjson_lines(bytes)
}

/// Waits for `child` at most `limit`, killing it (and failing) past that.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: a valid C string; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

fn concat(files: &[PathBuf]) -> Vec<u8> {
    files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect()
}

/// Report lines without what names the input (file names, byte counts of
/// what was read, timings), to compare a stream's run with a file's.
fn comparable(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let mut l = l.clone();
            let o = l.as_object_mut().unwrap();
            for key in ["file", "previous_file", "seconds", "bytes", "files"] {
                o.remove(key);
            }
            l
        })
        .collect()
}

#[test]
fn streams_are_verified_exactly_as_the_same_bytes_in_a_file() {
    let valid = segments(&conformance().join("valid"));
    let whole = concat(&valid);
    let tmp = tempfile::tempdir().unwrap();

    // The whole chain, from `-`, /dev/stdin (a pipe) and a process's pipe,
    // mapped or read: the file's verdicts and summary, never "0 blocks".
    let file = tmp.path().join("chain.vblk");
    std::fs::write(&file, &whole).unwrap();
    let by_file = vigil(&["verify", s(&file), "--json", "--all"]);
    assert_eq!(code(&by_file), 0, "{}", stderr(&by_file));
    let expected = ndjson(&by_file.stdout);
    assert_eq!(expected.last().unwrap()["blocks"], 60);
    for args in [&["verify", "-", "--json", "--all"][..], &["verify", "/dev/stdin", "--json", "--all", "--no-mmap"]] {
        let o = vigil_stdin(args, whole.clone());
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        let got = ndjson(&o.stdout);
        assert_eq!(comparable(&got), comparable(&expected), "{args:?}");
        assert_eq!(got.last().unwrap()["bytes"], whole.len() as u64);
    }

    // Cut and mutated: every stream verdict (malformed details included)
    // equals that of a file holding the same bytes.
    let faults = conformance().join("faults");
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for cut in [0, 1, 223, 224, 225, 5000, whole.len() / 2, whole.len() - 1] {
        cases.push(whole[..cut].to_vec());
    }
    let mut flipped = whole.clone();
    flipped[300] ^= 0x40; // a transaction field of the first block
    cases.push(flipped);
    let mut huge_body = whole.clone();
    huge_body[124..128].copy_from_slice(&u32::MAX.to_le_bytes()); // body_len beyond everything
    cases.push(huge_body);
    for f in segments(&faults).into_iter().take(6) {
        cases.push(std::fs::read(f).unwrap());
    }
    for (i, bytes) in cases.into_iter().enumerate() {
        let file = tmp.path().join(format!("case{i}.vblk"));
        std::fs::write(&file, &bytes).unwrap();
        let by_file = vigil(&["verify", s(&file), "--json", "--all"]);
        let by_stream = vigil_stdin(&["verify", "-", "--json", "--all"], bytes.clone());
        assert_eq!(code(&by_stream), code(&by_file), "case {i}: {}", stderr(&by_stream));
        if code(&by_file) == 2 {
            // Nothing verified (an empty input) either way.
            assert!(stderr(&by_stream).contains("nothing verified"), "case {i}");
            continue;
        }
        assert_eq!(
            comparable(&ndjson(&by_stream.stdout)),
            comparable(&ndjson(&by_file.stdout)),
            "case {i} ({} bytes)",
            bytes.len()
        );
    }

    // A stream cannot be walked twice: ranges, shards and the index refuse it.
    for args in [&["index", "-", "-o"][..], &["verify", "-", "--range", "0..5"]] {
        let mut args = args.to_vec();
        let out = tmp.path().join("out.idx");
        if args[0] == "index" {
            args.push(s(&out));
        }
        let o = vigil_stdin(&args, whole.clone());
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains("-: standard input"), "{args:?}: {}", stderr(&o));
    }
    // inspect reads a stream as it reads the file.
    let by_file = vigil(&["inspect", s(&valid[0]), "--json", "-v"]);
    let by_stream = vigil_stdin(&["inspect", "-", "--json", "-v"], std::fs::read(&valid[0]).unwrap());
    assert_eq!(code(&by_file), 0);
    assert_eq!(by_stream.stdout, by_file.stdout);
}

#[test]
fn a_fifo_is_waited_for_never_blocking_in_open() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("p.vblk");
    mkfifo(&fifo);
    let chain = concat(&segments(&sample()));

    // The writer comes late: vigil says it waits, then verifies it all.
    let mut child = Command::new(VIGIL)
        .args(["verify", s(&fifo), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "vigil ended before any writer came");
    std::fs::OpenOptions::new().write(true).open(&fifo).unwrap().write_all(&chain).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60), "verify FIFO");
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("a FIFO with no writer yet; waiting for one"), "{err}");
    assert_eq!(ndjson(&out)[0]["blocks"], 64);

    // A writer that opens and closes without writing: nothing to verify.
    let mut child =
        Command::new(VIGIL).args(["verify", s(&fifo)]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    let status = wait_bounded(&mut child, Duration::from_secs(30), "verify empty FIFO");
    assert_eq!(status.code(), Some(2));

    // --authorities from a FIFO.
    let proposer = ndjson(&vigil(&["inspect", s(&segments(&sample())[0]), "--json"]).stdout)[0]["proposer"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut child = Command::new(VIGIL)
        .args(["verify", s(&sample()), "--authorities", s(&fifo)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    writeln!(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(), "# the sample's proposer\n{proposer}")
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60), "authorities FIFO");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn directory_entries_that_are_not_segment_files_are_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    std::fs::create_dir(&dir).unwrap();
    for f in segments(&sample()) {
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    assert_eq!(code(&vigil(&["verify", s(&dir)])), 0);
    let odd = dir.join("999999.vblk");
    let cases: [(&str, &dyn Fn()); 3] = [
        ("dangling symbolic link", &|| std::os::unix::fs::symlink(tmp.path().join("gone.vblk"), &odd).unwrap()),
        ("a directory, not a regular file", &|| std::fs::create_dir(&odd).unwrap()),
        ("a FIFO, not a regular file", &|| mkfifo(&odd)),
    ];
    for (message, make) in cases {
        make();
        for command in ["verify", "index"] {
            let mut args = vec![command, s(&dir)];
            let idx = tmp.path().join("x.idx");
            if command == "index" {
                args.extend(["-o", s(&idx)]);
            }
            let o = vigil(&args);
            assert_eq!(code(&o), 2, "{command} with {message}");
            let err = stderr(&o);
            assert!(err.contains(s(&odd)) && err.contains(message), "{command}: {err}");
        }
        if odd.is_dir() {
            std::fs::remove_dir(&odd).unwrap();
        } else {
            std::fs::remove_file(&odd).unwrap();
        }
    }
}

#[test]
fn endless_or_huge_streams_are_refused_in_bounded_time_and_memory() {
    // Each of these read /dev/zero to the end (2 GB+, or an abort).
    let valid = conformance().join("valid");
    let cases: [(&[&str], i32, &str); 5] = [
        (&["verify", "/dev/zero"], 1, ""),
        (&["verify", "/dev/zero", "--no-mmap"], 1, ""),
        (&["inspect", "/dev/zero"], 1, ""),
        (&["sigs", "/dev/zero"], 2, "/dev/zero:1: line longer than"),
        (&["verify", s(&valid), "--authorities", "/dev/zero"], 2, "/dev/zero:1: line longer than 4096 bytes"),
    ];
    for (args, expected, message) in cases {
        let mut child = Command::new(VIGIL).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(30), &format!("{args:?}"));
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(expected), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // A malformed /dev/zero block is reported as a file's would be.
    let o = vigil(&["verify", "/dev/zero", "--json"]);
    let lines = ndjson(&o.stdout);
    assert_eq!(lines[0]["type"], "malformed");
    assert_eq!(lines[0]["detail"], "bad magic 00000000");

    // A stream's block that claims more than a stream block may hold, and
    // whose stream goes on past that bound: refused, never held whole.
    // (One whose stream ends first is malformed, as in a file: above.)
    let mut header = std::fs::read(&segments(&sample())[0]).unwrap()[..224].to_vec();
    header[124..128].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut child = Command::new(VIGIL)
        .args(["verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&header)?;
        let zeros = vec![0u8; 1 << 20];
        loop {
            stdin.write_all(&zeros)?; // until vigil stops reading
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let status = wait_bounded(&mut child, Duration::from_secs(120), "huge stream block");
    assert!(writer.join().unwrap().is_err(), "vigil stopped reading");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(
        err.contains(
            "-: the block at offset 0 is 4294967519 bytes; a block read from a stream may be at most 1024 MiB"
        ),
        "{err}"
    );
}

#[test]
fn a_run_that_verified_nothing_is_not_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = sample();
    let nothing = |args: &[&str], why: &str| {
        let o = vigil(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
        assert!(!String::from_utf8_lossy(&o.stdout).contains("VALID"), "{args:?}");
    };
    let empties = tmp.path().join("empties");
    std::fs::create_dir(&empties).unwrap();
    for name in ["a.vblk", "b.vblk"] {
        std::fs::write(empties.join(name), b"").unwrap();
    }
    nothing(&["verify", s(&empties)], "nothing verified: the input holds no block (2 files, 0 bytes)");
    nothing(&["verify", "/dev/null"], "nothing verified");
    nothing(
        &["verify", s(&sample), "--range", "300..400"],
        "the range starts at position 300, past the chain's 64 blocks",
    );
    nothing(
        &["verify", s(&sample), "--range", "64.."],
        "nothing verified: positions 64.. hold no block (the chain has 64 blocks",
    );
    nothing(&["verify", s(&sample), "--range", "10..10"], "an empty range");
    // A shard writing a summary may be empty: the stitch decides.
    let summary = tmp.path().join("s.json");
    let o = vigil(&["verify", s(&sample), "--range", "64..", "--summary", s(&summary)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // `..B` starts at 0, and a range from 0 checks its links itself: no
    // warning that stitch must.
    let o = vigil(&["verify", s(&sample), "--range", "..10", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(ndjson(&o.stdout).last().unwrap()["blocks"], 10);
    assert!(!stderr(&o).contains("stitch"), "{}", stderr(&o));
    let o = vigil(&["verify", s(&sample), "--range", "5..10"]);
    assert!(stderr(&o).contains("checked only by `vigil stitch`"), "{}", stderr(&o));
}

#[test]
fn files_out_of_order_are_named_and_a_file_twice_is_refused() {
    let files = segments(&conformance().join("valid"));
    // 001 before 000: one diagnostic naming both files and what was
    // expected; the rule failures are FORMAT.md's as before.
    let o = vigil(&["verify", s(&files[1]), s(&files[0]), "--json"]);
    assert_eq!(code(&o), 1);
    let lines = ndjson(&o.stdout);
    let notes: Vec<&Value> = lines.iter().filter(|l| l["type"] == "discontinuity").collect();
    assert_eq!(notes.len(), 1, "{lines:?}");
    assert!(notes[0]["file"].as_str().unwrap().ends_with("000.vblk"));
    assert!(notes[0]["previous_file"].as_str().unwrap().ends_with("001.vblk"));
    assert_eq!(notes[0]["height"], 0);
    let next = lines.iter().skip_while(|l| l["type"] != "discontinuity").nth(1).unwrap();
    let rules: Vec<&str> = next["failures"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["height", "prev_hash", "timestamp"]);
    let human = vigil(&["verify", s(&files[1]), s(&files[0])]);
    let out = String::from_utf8_lossy(&human.stdout);
    assert!(out.contains(&format!("NOTE: {} does not continue {}", s(&files[0]), s(&files[1]))), "{out}");
    // In order: no note.
    let o = vigil(&["verify", s(&files[0]), s(&files[1]), "--json"]);
    assert!(ndjson(&o.stdout).iter().all(|l| l["type"] != "discontinuity"));

    // The same file or directory twice, by any path.
    let dir = conformance().join("valid");
    let via_dot = dir.join(".").join(files[0].file_name().unwrap());
    for args in [vec![s(&dir), s(&dir)], vec![s(&files[0]), s(&via_dot)], vec!["-", "-"]] {
        let mut all = vec!["verify"];
        all.extend(args.iter().copied());
        let o = vigil_stdin(&all, Vec::new());
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains("given twice"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn the_summary_records_what_was_validated() {
    let dir = conformance().join("valid");
    let o = vigil(&["verify", s(&dir), "--json", "--all"]);
    let lines = ndjson(&o.stdout);
    let (first, last, summary) = (&lines[0], &lines[lines.len() - 2], lines.last().unwrap());
    assert_eq!(summary["first"]["height"], first["height"]);
    assert_eq!(summary["first"]["hash"], first["hash"]);
    assert_eq!(summary["last"]["height"], last["height"]);
    assert_eq!(summary["last"]["hash"], last["hash"]);
    // The independent implementation's record of this chain.
    let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let chain_id = expected["chain_id"].clone();
    assert_eq!(summary["chain_id"], chain_id);
    let blocks = expected["blocks"].as_array().unwrap();
    assert_eq!(summary["first"]["hash"], blocks[0]["block_hash"]);
    assert_eq!(summary["last"]["hash"], blocks[blocks.len() - 1]["block_hash"]);
    assert_eq!(summary["last"]["height"], blocks[blocks.len() - 1]["height"]);
    assert_eq!((summary["files"].as_u64(), summary["bytes"].as_u64()), (Some(3), Some(544325)));
    let human = String::from_utf8(vigil(&["verify", s(&dir)]).stdout).unwrap();
    let expected = format!(
        "chain {}: from height 0 (hash {}) to height {} (hash {})",
        chain_id.as_str().unwrap(),
        first["hash"].as_str().unwrap(),
        last["height"],
        last["hash"].as_str().unwrap()
    );
    assert!(human.contains(&expected), "{human}");
}

#[test]
fn absurd_flags_are_refused_with_a_clear_message() {
    let sample = sample();
    let sample = s(&sample);
    let cases: [(&[&str], &str); 10] = [
        (&["verify", sample, "--batch-size", "0"], "from 1 to"),
        (&["verify", sample, "--threads", "0"], "from 1 to"),
        (&["verify", sample, "--threads", "1000000"], "from 1 to 4096"),
        (&["verify", sample, "--force"], "--summary"),
        (&["verify", sample, "--range", "5..3"], "the end is before the start"),
        (&["verify", sample, "--range", "x..3"], "not a chain position"),
        (&["sigs", "-", "--batch-size", "0"], "from 1 to"),
        (&["gen", "/nonexistent/x", "--blocks", "18446744073709551615"], "from 1 to 1000000000"),
        (&["bench", "--seconds", "nan"], "from 0.01 to 3600"),
        (&["bench", "--txs", "0"], "from 1 to 1000000000"),
    ];
    for (args, message) in cases {
        let o = vigil(args);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

/// A chain big enough that its `--all` report fills a pipe (64 KiB) long
/// before the run ends.
fn many_blocks(dir: &Path) -> PathBuf {
    let out = dir.join("many");
    let o = vigil(&[
        "gen",
        s(&out),
        "--blocks",
        "3000",
        "--txs-per-block",
        "0..3",
        "--payload",
        "16..32",
        "--segment-size",
        "1GiB",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out
}

#[test]
fn a_mapped_file_that_shrinks_is_named_not_a_bus_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = many_blocks(tmp.path());
    let file = segments(&dir).remove(0);
    // The report blocks on a pipe nobody reads yet, with the file mapped;
    // then the file shrinks and the reading resumes. (`--no-mmap` would
    // have read this small file ahead before it shrank: a file that
    // changes size under its reads is an error naming it, engine tests.)
    {
        let expected = "changed while being verified (it shrank under its memory map); --no-mmap reads it safely";
        let copy = tmp.path().join("shrinks.vblk");
        std::fs::copy(&file, &copy).unwrap();
        let args = ["verify", s(&copy), "--json", "--all", "--threads", "1"];
        let mut child = Command::new(VIGIL).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 4096];
        stdout.read_exact(&mut first).unwrap();
        // Give the report time to fill the pipe and block.
        std::thread::sleep(Duration::from_millis(500));
        std::fs::OpenOptions::new().write(true).open(&copy).unwrap().set_len(4096).unwrap();
        let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let status = wait_bounded(&mut child, Duration::from_secs(60), "shrinking file");
        drain.join().unwrap().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(2), "signal {:?}: {err}", status.signal());
        assert!(err.contains(&format!("{}: {expected}", s(&copy))), "{err}");
    }
}

#[test]
fn a_closed_output_pipe_ends_the_run_promptly_and_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = many_blocks(tmp.path());
    // `vigil verify --all | head -1`: ended by SIGPIPE as other Unix tools
    // are, nothing on stderr, long before the chain's end.
    let mut child = Command::new(VIGIL)
        .args(["verify", s(&dir), "--all", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
    drop(child.stdout.take());
    let status = wait_bounded(&mut child, Duration::from_secs(30), "verify | head");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}: {err}");
    assert_eq!(err, "");

    // `vigil sigs … | head`, with stderr closed too: no panic, no message.
    let line = r#"{"pubkey":"00","msg":"","sig":"00"}"#; // parse error: written to stderr
    let mut input = String::new();
    let ok = ndjson(&vigil(&["inspect", s(&segments(&dir)[0]), "--json"]).stdout)[0].clone();
    let good = format!(
        r#"{{"pubkey":"{}","msg":"00","sig":"{}"}}"#,
        ok["proposer"].as_str().unwrap(),
        ok["proposer_sig"].as_str().unwrap()
    );
    for _ in 0..20_000 {
        input.push_str(&good);
        input.push('\n');
    }
    input.push_str(line);
    for closed_stderr in [false, true] {
        let mut child = Command::new(VIGIL)
            .args(["sigs", "-", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if closed_stderr { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .unwrap();
        if closed_stderr {
            drop(child.stderr.take());
        }
        let mut stdin = child.stdin.take().unwrap();
        let bytes = input.clone().into_bytes();
        let writer = std::thread::spawn(move || stdin.write_all(&bytes));
        let mut some = [0u8; 16];
        child.stdout.as_mut().unwrap().read_exact(&mut some).unwrap();
        drop(child.stdout.take());
        let status = wait_bounded(&mut child, Duration::from_secs(60), "sigs | head");
        writer.join().unwrap().ok();
        assert_ne!(status.code(), Some(101), "panicked");
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
    }
}

/// Peak resident memory of a finished child, in bytes (`wait4`'s rusage).
#[allow(clippy::zombie_processes)] // reaped by wait4, which std does not know of
fn run_measuring_peak(args: &[&str], stdout: Stdio) -> (i32, u64) {
    let child = Command::new(VIGIL).args(args).stdout(stdout).stderr(Stdio::null()).spawn().unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 on our own child's pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64 * 1024)
}

#[test]
fn json_reports_of_a_million_transaction_block_stay_under_512_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big");
    let o = vigil(&[
        "gen",
        s(&dir),
        "--blocks",
        "1",
        "--txs-per-block",
        "1048576",
        "--payload",
        "16..16",
        "--senders",
        "64",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Block timestamp 0: every transaction breaks tx_timestamp, so the
    // block's report holds 1,048,577 failures (cheaply: the signatures of
    // the transactions still verify).
    let file = segments(&dir).remove(0);
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(48)).unwrap();
    f.write_all(&[0; 8]).unwrap();
    drop(f);
    // Both measured before this process holds anything large: a child's
    // peak counts its parent's memory at the spawn.
    let report = tmp.path().join("report.json");
    let (verify_code, verify_peak) =
        run_measuring_peak(&["verify", s(&file), "--json"], Stdio::from(std::fs::File::create(&report).unwrap()));
    let listing = tmp.path().join("listing.json");
    let (inspect_code, inspect_peak) = run_measuring_peak(
        &["inspect", "-v", "--json", s(&file)],
        Stdio::from(std::fs::File::create(&listing).unwrap()),
    );
    assert_eq!((verify_code, inspect_code), (1, 0));
    assert!(verify_peak <= 512 << 20, "verify --json peaked at {} MiB", verify_peak >> 20);
    assert!(inspect_peak <= 512 << 20, "inspect -v --json peaked at {} MiB", inspect_peak >> 20);
    // And they said it all: every failure, every transaction.
    let text = std::fs::read_to_string(&report).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first.matches(r#""rule":"tx_timestamp""#).count(), 1_048_576);
    assert_eq!(first.matches(r#""rule":"block_signature""#).count(), 1);
    drop(text);
    let text = std::fs::read_to_string(&listing).unwrap();
    assert_eq!(text.matches(r#""tx_id":"#).count(), 1_048_576);
}
