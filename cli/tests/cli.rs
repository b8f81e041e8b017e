//! The `vigil` binary as a user runs it: exit codes, NDJSON schema, human
//! output, fault injection round trips, the bundled sample.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use common::*;

fn ndjson(o: &Output) -> Vec<Value> {
    ndjson_lines(&o.stdout)
}

#[test]
fn verify_valid_chain_json_and_human() {
    let dir = conformance().join("valid");
    let o = vigil(&["verify", s(&dir), "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let lines = ndjson(&o);
    assert_eq!(lines.len(), 1, "only the summary for a valid chain without --all");
    let sum = &lines[0];
    assert_eq!(sum["type"], "summary");
    assert_eq!(sum["verdict"], "valid");
    assert_eq!(sum["blocks"], 60);
    assert_eq!(sum["invalid_blocks"], 0);
    assert_eq!(sum["transactions"], 1892);
    assert_eq!(sum["signatures"], 1892 + 60);
    assert_eq!(sum["bytes"], 544325);
    assert!(sum["seconds"].as_f64().unwrap() >= 0.0);

    let o = vigil(&["verify", s(&dir), "--json", "--all", "--threads", "1", "--no-mmap"]);
    assert_eq!(code(&o), 0);
    let lines = ndjson(&o);
    assert_eq!(lines.len(), 61);
    assert_eq!(lines[0]["type"], "block");
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["height"], 0);
    assert_eq!(lines[0]["offset"], 0);
    assert_eq!(lines[0]["hash"], "a14e16c68d9cf1274be311757012bdf3d5a5a9e33f69636054f5b782d3b53438");
    assert!(lines[0]["file"].as_str().unwrap().ends_with("000.vblk"));
    assert_eq!(lines[0]["failures"], Value::Array(vec![]));

    let o = vigil(&["verify", s(&dir)]);
    assert_eq!(code(&o), 0);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with("VALID: 60 blocks (0 invalid), 1892 transactions"), "{out}");
}

#[test]
fn verify_reports_invalid_blocks_with_rule_and_tx() {
    let file = conformance().join("faults/tx_signature-4.vblk");
    let o = vigil(&["verify", s(&file), "--json"]);
    assert_eq!(code(&o), 1);
    let lines = ndjson(&o);
    assert_eq!(lines.len(), 2);
    let block = &lines[0];
    assert_eq!(block["type"], "block");
    assert_eq!(block["valid"], false);
    assert_eq!(block["height"], 3);
    let failures = block["failures"].as_array().unwrap();
    let got: Vec<(String, u64)> =
        failures.iter().map(|f| (f["rule"].as_str().unwrap().to_owned(), f["tx"].as_u64().unwrap())).collect();
    assert_eq!(got, [("tx_signature".to_owned(), 1), ("tx_signature".to_owned(), 3)]);
    assert!(failures[0]["detail"].as_str().unwrap().contains("does not verify"));
    assert_eq!(lines[1]["verdict"], "invalid");
    assert_eq!(lines[1]["invalid_blocks"], 1);

    // Block-level rules carry no "tx".
    let o = vigil(&["verify", s(&conformance().join("faults/prev_hash-1.vblk")), "--json"]);
    let f = &ndjson(&o)[0]["failures"][0];
    assert_eq!(f["rule"], "prev_hash");
    assert!(f.get("tx").is_none());

    let o = vigil(&["verify", s(&file)]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("INVALID block at height 3"), "{out}");
    assert!(out.contains("tx_signature (tx 1)"), "{out}");
    assert!(out.contains("INVALID: 5 blocks (1 invalid)"), "{out}");
}

#[test]
fn malformed_block_names_file_and_offset_and_verification_goes_on() {
    let faults = conformance().join("faults");
    let bad = faults.join("malformed-1.vblk");
    let good = conformance().join("valid/000.vblk");
    let o = vigil(&["verify", s(&bad), s(&good), "--json"]);
    assert_eq!(code(&o), 1);
    let lines = ndjson(&o);
    let m = lines.iter().find(|l| l["type"] == "malformed").expect("a malformed line");
    assert_eq!(m["offset"], 1467);
    assert_eq!(m["file"], s(&bad));
    assert!(m["detail"].as_str().unwrap().contains("magic"));
    let sum = lines.last().unwrap();
    // 2 blocks before the malformed one, then 21 from the next file.
    assert_eq!(sum["blocks"], 2 + 21);
    assert_eq!(sum["malformed"], 1);
}

#[test]
fn usage_and_io_errors_exit_2_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.vblk");
    let o = vigil(&["verify", s(&missing)]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains(s(&missing)) && err.lines().count() == 1, "{err}");

    let empty_dir = tempfile::tempdir().unwrap();
    std::fs::write(empty_dir.path().join("notes.txt"), "x").unwrap();
    let o = vigil(&["verify", s(empty_dir.path())]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8(o.stderr).unwrap().contains(s(empty_dir.path())));

    assert_eq!(code(&vigil(&["verify"])), 2, "no path is a usage error");
    assert_eq!(code(&vigil(&["verify", "--bogus", "x"])), 2);
    let valid = conformance().join("valid");
    assert_eq!(code(&vigil(&["verify", s(&valid), "--chain-id", "zz"])), 2);
    assert_eq!(code(&vigil(&["verify", s(&valid), "--threads", "0"])), 2);

    let auth = tmp.path().join("auth.txt");
    std::fs::write(&auth, "# authorities\nnot-hex\n").unwrap();
    let o = vigil(&["verify", s(&valid), "--authorities", s(&auth)]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8(o.stderr).unwrap().contains(&format!("{}:2", s(&auth))));

    // An empty file holds no blocks: nothing was verified, which is not
    // VALID (tests/hostile_input.rs has the other ways to verify nothing).
    let empty = tmp.path().join("empty.vblk");
    std::fs::write(&empty, b"").unwrap();
    let o = vigil(&["verify", s(&empty), "--json"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8(o.stderr).unwrap().contains("nothing verified"));
    assert!(o.stdout.is_empty());
}

#[test]
fn authorities_and_chain_id() {
    let valid = conformance().join("valid");
    let tmp = tempfile::tempdir().unwrap();
    let auth = tmp.path().join("auth.txt");
    std::fs::write(&auth, "c0f6d6d2762a55958349d6998df9fe19a86ad136a2fd5f1ec2779955d4712ad4\n").unwrap();
    assert_eq!(code(&vigil(&["verify", s(&valid), "--authorities", s(&auth)])), 0);
    std::fs::write(&auth, format!("{}\n", "11".repeat(32))).unwrap();
    let o = vigil(&["verify", s(&valid), "--authorities", s(&auth), "--json"]);
    assert_eq!(code(&o), 1);
    let lines = ndjson(&o);
    assert_eq!(lines.len(), 61);
    assert!(lines[0]["failures"][0]["detail"].as_str().unwrap().contains("not an authority"));

    let id = "b581a57bc2f4d79777425a67dd0b5783e78bb779c081de1382f79c7cdea78b3c";
    assert_eq!(code(&vigil(&["verify", s(&valid), "--chain-id", id])), 0);
    assert_eq!(code(&vigil(&["verify", s(&valid), "--chain-id", &"00".repeat(32)])), 1);
}

/// `vigil gen --fault RULE@H` then `vigil verify`: exactly that rule, at
/// that block (and transaction), and nothing else.
#[test]
fn every_injected_fault_is_reported_exactly() {
    let rules = [
        "malformed",
        "chain_id",
        "height",
        "prev_hash",
        "timestamp",
        "tx_root",
        "block_signature",
        "tx_signature",
        "tx_timestamp",
        "nonce",
    ];
    for rule in rules {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("chain");
        let fault = format!("{rule}@5");
        let o = vigil(&[
            "gen",
            s(&out),
            "--seed",
            "3",
            "--blocks",
            "9",
            "--txs-per-block",
            "0..6",
            "--senders",
            "4",
            "--payload",
            "0..200",
            "--segment-size",
            "4KiB",
            "--fault",
            &fault,
            "--json",
        ]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let info = &ndjson(&o)[0];
        let injected = &info["faults"][0];
        assert_eq!(injected["rule"], rule);

        let o = vigil(&["verify", s(&out), "--json"]);
        assert_eq!(code(&o), 1, "{rule}");
        let lines = ndjson(&o);
        let (summary, reports) = lines.split_last().unwrap();
        assert_eq!(reports.len(), 1, "{rule}: {reports:?}");
        let r = &reports[0];
        assert_eq!(r["file"], injected["file"], "{rule}");
        assert_eq!(r["offset"], injected["offset"], "{rule}");
        if rule == "malformed" {
            assert_eq!(r["type"], "malformed");
            assert_eq!(summary["invalid_blocks"], 0);
        } else {
            let failures = r["failures"].as_array().unwrap();
            assert_eq!(failures.len(), 1, "{rule}: {failures:?}");
            assert_eq!(failures[0]["rule"], rule);
            assert_eq!(failures[0].get("tx"), injected.get("tx").filter(|t| !t.is_null()), "{rule}");
            assert_eq!(summary["malformed"], 0);
        }
    }
}

/// The exact command the README gives for the bundled sample.
const SAMPLE_ARGS: &[&str] = &[
    "--seed",
    "2026",
    "--blocks",
    "64",
    "--txs-per-block",
    "0..40",
    "--senders",
    "12",
    "--payload",
    "16..512",
    "--segment-size",
    "128KiB",
];

#[test]
fn the_bundled_sample_regenerates_byte_for_byte_and_is_valid() {
    let sample = workspace().join("datasets/sample");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sample");
    let mut args = vec!["gen", s(&out)];
    args.extend_from_slice(SAMPLE_ARGS);
    let o = vigil(&args);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let names = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.retain(|n| n.to_str().unwrap().ends_with(".vblk"));
        v.sort();
        v
    };
    assert_eq!(names(&sample), names(&out));
    for name in names(&out) {
        assert!(std::fs::read(sample.join(&name)).unwrap() == std::fs::read(out.join(&name)).unwrap(), "{name:?}");
    }
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    assert!(readme.contains(&SAMPLE_ARGS.join(" ")), "README shows the sample's gen command");
    assert_eq!(code(&vigil(&["verify", s(&sample)])), 0);
}

#[test]
fn gen_is_deterministic_across_thread_counts_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let common = ["--seed", "9", "--blocks", "20", "--txs-per-block", "3..30", "--segment-size", "16KiB"];
    let run = |dir: &Path, threads: &str| {
        let mut args = vec!["gen", s(dir), "--threads", threads];
        args.extend_from_slice(&common);
        code(&vigil(&args))
    };
    assert_eq!(run(&a, "1"), 0);
    assert_eq!(run(&b, "2"), 0);
    for entry in std::fs::read_dir(&a).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap());
    }
    assert_eq!(run(&a, "1"), 2, "a directory that already holds a chain is not overwritten");
    assert_eq!(code(&vigil(&["gen", s(&tmp.path().join("c")), "--fault", "nonsense@1"])), 2);
}

#[test]
fn inspect_lists_headers_and_transactions() {
    let file = conformance().join("valid/000.vblk");
    let o = vigil(&["inspect", s(&file), "--json"]);
    assert_eq!(code(&o), 0);
    let lines = ndjson(&o);
    assert_eq!(lines.len(), 21);
    assert_eq!(lines[1]["height"], 1);
    assert_eq!(lines[1]["tx_count"], 3);
    assert_eq!(lines[1]["hash"], "8d4b47d2b64985972c06e044a3df91989f226183ce941ecbe9003435166a37f3");
    assert!(lines[1].get("transactions").is_none());

    let o = vigil(&["inspect", s(&file), "--json", "--height", "1", "-v"]);
    let lines = ndjson(&o);
    assert_eq!(lines.len(), 1);
    let txs = lines[0]["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 3);
    assert_eq!(txs[0]["tx_id"], "b26d8d247976d61a6ace3ab19863ae454df1633973bcba2164be68783d74a600");

    let o = vigil(&["inspect", s(&file), "-v"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("8d4b47d2b64985972c06e044a3df91989f226183ce941ecbe9003435166a37f3"));
    assert!(out.contains("b26d8d247976d61a6ace3ab19863ae454df1633973bcba2164be68783d74a600"));

    let o = vigil(&["inspect", s(&conformance().join("faults/malformed-1.vblk"))]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8(o.stdout).unwrap().contains("MALFORMED"));
    assert_eq!(code(&vigil(&["inspect", s(&file), "--height", "999"])), 1);
}

/// The public ed25519 vectors, kept in the repository (`datasets/vectors`).
fn vectors() -> PathBuf {
    let dir = workspace().join("datasets/vectors");
    assert!(dir.is_dir(), "vectors missing at {}", dir.display());
    dir
}

/// The RFC 8032 signatures as `vigil sigs` input lines.
fn rfc_lines() -> Vec<String> {
    std::fs::read_to_string(vectors().join("rfc8032-sign.input"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            format!(r#"{{"pubkey":"{}","msg":"{}","sig":"{}"}}"#, f[1], f[2], &f[3][..128])
        })
        .collect()
}

#[test]
fn sigs_checks_raw_signatures_under_both_rule_sets() {
    let mut lines = rfc_lines();
    assert_eq!(lines.len(), 1024);
    for rules in ["zip215", "strict"] {
        let o = vigil_stdin(&["sigs", "-", "--rules", rules, "--json"], lines.join("\n"));
        assert_eq!(code(&o), 0, "{rules}: {}", String::from_utf8_lossy(&o.stderr));
        let out = ndjson(&o);
        assert_eq!(out.len(), 1025);
        for (i, v) in out[..1024].iter().enumerate() {
            assert_eq!(v["index"], i as u64);
            assert_eq!(v["valid"], true);
        }
        assert_eq!(out[1024]["type"], "summary");
        assert_eq!(out[1024]["signatures"], 1024);
        assert_eq!(out[1024]["rules"], rules);
    }

    // Tamper with two signatures' S (one byte in the middle of S).
    for i in [3usize, 700] {
        let pos = lines[i].rfind("\"}").unwrap() - 40;
        let flipped = if &lines[i][pos..pos + 1] == "0" { "1" } else { "0" };
        lines[i].replace_range(pos..pos + 1, flipped);
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sigs.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n\n").unwrap();
    let o = vigil(&["sigs", s(&file), "--batch-size", "64"]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("1022 valid, 2 invalid") && out.contains("invalid indices: 3, 700"), "{out}");

    // speccheck case 0 (small-order key and R): zip215 accepts, strict rejects.
    let cases: Value = serde_json::from_slice(&std::fs::read(vectors().join("speccheck-cases.json")).unwrap()).unwrap();
    let c = &cases[0];
    let line = format!(
        r#"{{"pubkey":"{}","msg":"{}","sig":"{}"}}"#,
        c["pub_key"].as_str().unwrap(),
        c["message"].as_str().unwrap(),
        c["signature"].as_str().unwrap()
    );
    assert_eq!(code(&vigil_stdin(&["sigs", "-"], &line)), 0);
    assert_eq!(code(&vigil_stdin(&["sigs", "-", "--rules", "strict"], &line)), 1);

    // Input that cannot be parsed: exit 2 naming the line.
    let bad = format!("{}\n{}\n{{\"pubkey\":\"00\",\"msg\":\"\",\"sig\":\"00\"}}\n", lines[0], lines[1]);
    let o = vigil_stdin(&["sigs", "-"], &bad);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("-:3:") && err.contains("pubkey is 1 bytes"), "{err}");
    assert_eq!(code(&vigil_stdin(&["sigs", "-"], "not json\n")), 2);
    assert_eq!(code(&vigil(&["sigs", s(&tmp.path().join("missing"))])), 2);
    assert_eq!(code(&vigil_stdin(&["sigs", "-", "--rules", "lax"], "")), 2);
}

#[test]
fn bench_reports_every_stage_as_json_and_draws_the_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let plot = tmp.path().join("bench.svg");
    let o = vigil(&["bench", "--txs", "2000", "--seconds", "0.01", "--json", "--plot", s(&plot)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let r = &ndjson(&o)[0];
    assert_eq!(r["chain_transactions"], 2000);
    let stages: Vec<&str> = r["rows"].as_array().unwrap().iter().map(|row| row["stage"].as_str().unwrap()).collect();
    assert_eq!(stages.len(), 8, "{stages:?}");
    for stage in ["signatures, strict (1 core)", "signatures, zip215, 1% invalid (1 core)"] {
        assert!(stages.contains(&stage), "{stage}: {stages:?}");
    }
    for row in r["rows"].as_array().unwrap() {
        assert!(row["ours_per_s"].as_f64().unwrap() > 0.0 && row["ratio"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert!(!r["threads_curve"].as_array().unwrap().is_empty());
    assert_eq!(r["batch_curve"].as_array().unwrap().len(), 7);
    assert!(["serial", "avx2", "avx512ifma"].contains(&r["curve_backend"].as_str().unwrap()));
    assert!(["none", "avx2", "avx512ifma"].contains(&r["sig_lanes"].as_str().unwrap()), "{}", r["sig_lanes"]);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("batch size"));
}

#[test]
fn bench_serve_reports_latency_and_throughput_per_setting() {
    let o = vigil(&[
        "bench",
        "--serve",
        "--seconds",
        "0.2",
        "--settings",
        "64/100,4096/3000",
        "--loads",
        "1/1,4/2",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let r = &ndjson(&o)[0];
    assert!(r["direct_signatures_per_second"].as_f64().unwrap() > 0.0);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(row["requests"].as_u64().unwrap() > 0, "{row}");
        let (p50, p99) = (row["p50_us"].as_f64().unwrap(), row["p99_us"].as_f64().unwrap());
        assert!(p50 > 0.0 && p99 >= p50, "{row}");
        assert!(row["signatures_per_second"].as_f64().unwrap() > 0.0, "{row}");
    }
    // A lone request waits out max_delay (3 ms) when it cannot fill the batch.
    let lone_long_delay = rows.iter().find(|r| r["clients"] == 1 && r["max_delay_us"] == 3000).unwrap();
    assert!(lone_long_delay["p50_us"].as_f64().unwrap() >= 3000.0, "{lone_long_delay}");
    let o = vigil(&["bench", "--serve", "--settings", "0/5"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn devices_lists_adapters() {
    let o = vigil(&["devices", "--json"]);
    assert_eq!(code(&o), 0);
    let adapters = ndjson(&o);
    if adapters.is_empty() {
        assert!(
            std::env::var("VIGIL_REQUIRE_GPU").map_or(true, |v| v != "1"),
            "VIGIL_REQUIRE_GPU=1 but `vigil devices` lists no adapter"
        );
        eprintln!("SKIPPING adapter checks: no GPU adapter here");
        return;
    }
    for a in &adapters {
        assert!(!a["name"].as_str().unwrap().is_empty());
        assert!(["Vulkan", "Metal", "Dx12"].contains(&a["backend"].as_str().unwrap()), "{a}");
        assert!(a["shader_int64"].is_boolean());
    }
    let o = vigil(&["devices"]);
    assert!(String::from_utf8(o.stdout).unwrap().contains("features used"));
}

/// `--backend gpu` gives the CPU's report; `auto` falls back to the CPU and
/// says so when the only adapter is software or there is none, and with
/// `VIGIL_HYBRID=1` splits batches with any adapter (same report).
#[test]
fn gpu_backend_matches_cpu_and_auto_falls_back() {
    let file = conformance().join("faults/tx_signature-4.vblk");
    let strip = |o: &Output| {
        let mut lines = ndjson(o);
        if let Some(last) = lines.last_mut() {
            last.as_object_mut().unwrap().remove("seconds");
            // Where the signatures went (present when a GPU took part).
            last.as_object_mut().unwrap().remove("gpu");
        }
        lines
    };
    let cpu = vigil(&["verify", s(&file), "--json", "--all"]);
    let gpu = vigil(&["verify", s(&file), "--json", "--all", "--backend", "gpu"]);
    if code(&gpu) == 2 {
        let err = String::from_utf8_lossy(&gpu.stderr);
        assert!(err.contains("--backend gpu"), "{err}");
        assert!(
            std::env::var("VIGIL_REQUIRE_GPU").map_or(true, |v| v != "1"),
            "VIGIL_REQUIRE_GPU=1 but --backend gpu failed: {err}"
        );
        eprintln!("SKIPPING --backend gpu checks: {err}");
    } else {
        assert_eq!(code(&gpu), code(&cpu));
        assert_eq!(strip(&gpu), strip(&cpu));
    }
    let auto = vigil(&["verify", s(&file), "--json", "--all", "--backend", "auto"]);
    assert_eq!(strip(&auto), strip(&cpu));
    if code(&gpu) != 2 {
        // VIGIL_HYBRID=1: auto splits batches between CPU and GPU even
        // with a software adapter.
        let args = ["verify", s(&file), "--json", "--all", "--backend", "auto"];
        let hybrid = Command::new(VIGIL).args(args).env("VIGIL_HYBRID", "1").output().expect("run vigil");
        assert_eq!(code(&hybrid), code(&cpu));
        assert_eq!(strip(&hybrid), strip(&cpu));
        let err = String::from_utf8_lossy(&hybrid.stderr);
        assert!(!err.contains("using the CPU"), "{err}");
    }
    assert_eq!(code(&vigil(&["verify", s(&file), "--backend", "quantum"])), 2);
}

/// `vigil serve` as a node would run it: the bundled sample chain's blocks
/// and the RFC 8032 vectors over a unix socket, pipelined; SIGTERM with
/// requests in flight answers them all, removes the socket and exits 0.
#[test]
fn serve_answers_blocks_and_signatures_and_stops_cleanly_on_sigterm() {
    use vigil_client::{Client, Outcome, Request, Response, Rules, Signature};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vigil.sock");
    let mut child = Command::new(VIGIL)
        .args(["serve", "--listen", &format!("unix:{}", s(&sock)), "--max-delay-us", "300000"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut client = loop {
        match Client::connect(&format!("unix:{}", s(&sock))) {
            Ok(c) => break c,
            Err(e) => {
                assert!(started.elapsed().as_secs() < 30, "server did not come up: {e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    // The sample chain, a block a request: all valid, positions in order.
    let files = segments(&workspace().join("datasets/sample"));
    let mut sent = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for (offset, b) in vigil_engine::format::blocks(&data) {
            let block = data[offset as usize..offset as usize + b.unwrap().len()].to_vec();
            client.send(&Request::SubmitBlock(block)).unwrap();
            sent += 1;
        }
    }
    assert_eq!(sent, 64);
    for position in 0..sent {
        let (id, Response::BlockVerdict(v)) = client.recv().unwrap() else { panic!() };
        assert_eq!((id, v.outcome, v.position), (position + 1, Outcome::Valid, position), "{:?}", v.failures);
    }
    // RFC 8032 lines, each with a flipped copy, pipelined, then SIGTERM
    // while they wait out the 300 ms batching delay.
    let mut signatures = Vec::new();
    for line in rfc_lines().iter().take(40) {
        let v: Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
        let public_key: [u8; 32] = field("pubkey").try_into().unwrap();
        let message = field("msg");
        let signature: [u8; 64] = field("sig").try_into().unwrap();
        let mut flipped = signature;
        flipped[10] ^= 4;
        signatures.push(Signature { public_key, signature, message: message.clone() });
        signatures.push(Signature { public_key, signature: flipped, message });
    }
    let (mut tx, mut rx) = client.split();
    let ids: Vec<u64> = signatures
        .chunks(8)
        .map(|c| tx.send(&Request::VerifySignatures { rules: Rules::Zip215, signatures: c.to_vec() }).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    for (i, id) in ids.iter().enumerate() {
        let (got, r) = rx.recv().unwrap();
        assert_eq!(got, *id);
        let want: Vec<bool> = (0..r_len(&r)).map(|j| j % 2 == 0).collect();
        assert_eq!(r, Response::SignatureVerdicts(want), "batch {i}");
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped:") && stderr.contains("64 blocks"), "{stderr}");
    assert!(!sock.exists(), "the socket file is removed");
}

fn r_len(r: &vigil_client::Response) -> usize {
    match r {
        vigil_client::Response::SignatureVerdicts(v) => v.len(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn serve_refuses_remote_addresses_without_allow_remote() {
    let o = vigil(&["serve", "--listen", "tcp:0.0.0.0:0"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--allow-remote"), "{err}");
    let o = vigil(&["serve", "--listen", "udp:1"]);
    assert_eq!(code(&o), 2);
}

/// The NDJSON lines without the timing fields (a stitch's adds its shards'),
/// and the human report without the timing tail of its summary line.
fn comparable(o: &Output, json: bool) -> Vec<String> {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    text.lines()
        .map(|l| {
            if json {
                let mut v: Value = serde_json::from_str(l).unwrap();
                for k in ["seconds", "shards", "longest_shard_seconds"] {
                    v.as_object_mut().unwrap().remove(k);
                }
                v.to_string()
            } else {
                l.split(" files, ").next().unwrap().to_owned()
            }
        })
        .collect()
}

/// N processes with a scheduler's environment, then `vigil stitch`: the
/// same output (human and NDJSON, timing aside) and exit code as one
/// `vigil verify`, for both conventions; shards exit 0.
#[test]
fn shards_under_kubernetes_and_slurm_environments_stitch_to_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    for json in [true, false] {
        let mut args = vec!["verify", s(&chain)];
        if json {
            args.push("--json");
        }
        let single = vigil(&args);
        assert_eq!(code(&single), 1);
        for (name, n) in [("k8s", 3u32), ("slurm", 4)] {
            let dir = tmp.path().join(format!("{name}-{json}"));
            std::fs::create_dir(&dir).unwrap();
            let mut summaries = Vec::new();
            for i in 0..n {
                let summary = dir.join(format!("part-{i}.json"));
                let mut cmd = Command::new(VIGIL);
                cmd.args(["verify", s(&chain), "--shard", "auto", "--summary", s(&summary)]);
                without_scheduler(&mut cmd);
                if name == "k8s" {
                    cmd.env("JOB_COMPLETION_INDEX", i.to_string()).env("VIGIL_SHARDS", n.to_string());
                } else {
                    // --array=0-3 with VIGIL_SHARDS=4 (submit.sh); shard 2
                    // as a one-index re-run gets it: --array=2 alone.
                    let (min, count) = if i == 2 { (i, 1) } else { (0, n) };
                    cmd.env("SLURM_ARRAY_TASK_ID", i.to_string())
                        .env("SLURM_ARRAY_TASK_MIN", min.to_string())
                        .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
                        .env("VIGIL_SHARDS", n.to_string());
                }
                let o = cmd.output().unwrap();
                assert_eq!(code(&o), 0, "{name} shard {i}: {}", String::from_utf8_lossy(&o.stderr));
                assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("shard {i}/{n}")));
                summaries.push(summary);
            }
            let mut args = vec!["stitch".to_owned()];
            args.extend(summaries.iter().rev().map(|p| s(p).to_owned()));
            if json {
                args.push("--json".into());
            }
            let stitched = Command::new(VIGIL).args(&args).output().unwrap();
            assert_eq!(code(&stitched), code(&single), "{}", String::from_utf8_lossy(&stitched.stderr));
            assert_eq!(comparable(&stitched, json), comparable(&single, json), "{name}, json {json}");
        }
    }
}

#[test]
fn shard_auto_needs_a_scheduler_and_stitch_names_missing_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    let run = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(VIGIL);
        cmd.args(["verify", s(&chain)]).args(extra);
        without_scheduler(&mut cmd);
        cmd.envs(envs.iter().copied()).output().unwrap()
    };
    let o = run(&[], &["--shard", "auto"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither JOB_COMPLETION_INDEX"), "{o:?}");
    let o = run(&[("JOB_COMPLETION_INDEX", "1")], &["--shard", "auto"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("VIGIL_SHARDS"), "{o:?}");
    let o = run(&[("JOB_COMPLETION_INDEX", "4"), ("VIGIL_SHARDS", "4")], &["--shard", "auto"]);
    assert_eq!(code(&o), 2);
    // A Slurm task without VIGIL_SHARDS (its array may be one re-run index).
    let o = run(
        &[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "1")],
        &["--shard", "auto"],
    );
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("VIGIL_SHARDS is not"), "{o:?}");
    let o = run(&[], &["--shard", "5/5"]);
    assert_eq!(code(&o), 2);
    // Two of three shards: stitch names the missing one and exits 2.
    let (a, b) = (tmp.path().join("a.json"), tmp.path().join("c.json"));
    assert_eq!(code(&run(&[], &["--shard", "0/3", "--summary", s(&a)])), 0);
    assert_eq!(code(&run(&[], &["--shard", "2/3", "--summary", s(&b)])), 0);
    let o = vigil(&["stitch", s(&a), s(&b)]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1/3"), "{}", String::from_utf8_lossy(&o.stderr));
    // Resumable: the same shard again is skipped while its input is
    // unchanged; --force redoes it.
    let before = std::fs::metadata(&a).unwrap().modified().unwrap();
    let o = run(&[], &["--shard", "0/3", "--summary", s(&a)]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("up to date"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&a).unwrap().modified().unwrap(), before);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = run(&[], &["--shard", "0/3", "--summary", s(&a), "--force"]);
    assert_eq!(code(&o), 0);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("up to date"));
    assert_ne!(std::fs::metadata(&a).unwrap().modified().unwrap(), before);
    // --range: the same range is skipped, another is redone.
    let r = tmp.path().join("r.json");
    assert_eq!(code(&run(&[], &["--range", "3..", "--summary", s(&r)])), 0);
    let o = run(&[], &["--range", "3..1000", "--summary", s(&r)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("up to date"), "an end past the chain is the open end");
    let o = run(&[], &["--range", "3..10", "--summary", s(&r)]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("up to date"), "{}", String::from_utf8_lossy(&o.stderr));
    // --summary alone is a usage error.
    assert_eq!(code(&vigil(&["verify", s(&chain), "--summary", s(&a)])), 2);
}

/// `vigil index` once, then shards that read it instead of walking the
/// chain: the same stitched report; a stale index is refused (exit 2).
#[test]
fn shards_from_an_index_stitch_to_the_single_run_and_a_stale_index_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = faulty_chain(tmp.path());
    let index = tmp.path().join("chain.idx");
    let o = vigil(&["index", s(&chain), "-o", s(&index)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("indexed 36 blocks"), "{}", String::from_utf8_lossy(&o.stderr));
    let mut summaries = Vec::new();
    for i in 0..3 {
        let summary = tmp.path().join(format!("i{i}.json"));
        let shard = format!("{i}/3");
        let o = vigil(&["verify", s(&chain), "--shard", &shard, "--index", s(&index), "--summary", s(&summary)]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        summaries.push(summary);
    }
    let mut args = vec!["stitch", "--json"];
    args.extend(summaries.iter().map(|p| s(p)));
    let stitched = vigil(&args);
    let single = vigil(&["verify", "--json", s(&chain)]);
    assert_eq!(code(&stitched), code(&single));
    assert_eq!(comparable(&stitched, true), comparable(&single, true));
    // --index without a range; an index for another chain.
    assert_eq!(code(&vigil(&["verify", s(&chain), "--index", s(&index)])), 2);
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(chain.join("000000.vblk"), other.join("000000.vblk")).unwrap();
    let o = vigil(&["verify", s(&other), "--shard", "0/2", "--index", s(&index)]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("vigil index"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A GPU that fails or is lost mid-run (injected with `VIGIL_GPU_FAULT`)
/// changes no verdict: the report is the CPU's, and the summary counts what
/// was redone. A GPU that gets its self-test wrong is refused: `--backend
/// gpu` exits 2 naming adapter and driver, `auto` uses the CPU and says
/// why, `vigil devices` shows it.
#[test]
fn gpu_failures_change_no_report_and_a_miscomputing_gpu_is_refused() {
    if !gpu_adapter_or_skip("the GPU failure tests") {
        return;
    }
    let with_fault = |fault: &str, args: &[&str]| {
        let mut cmd = Command::new(VIGIL);
        cmd.args(args).env("VIGIL_GPU_FAULT", fault).env_remove("VIGIL_HYBRID");
        cmd.output().expect("run vigil")
    };
    let file = conformance().join("faults/tx_signature-4.vblk");
    let strip = |o: &Output| {
        let mut lines = ndjson(o);
        let last = lines.last_mut().unwrap().as_object_mut().unwrap();
        last.remove("seconds");
        let gpu = last.remove("gpu");
        (lines, gpu)
    };
    let cpu = vigil(&["verify", s(&file), "--json", "--all"]);
    assert_eq!(code(&cpu), 1);
    let args = ["verify", s(&file), "--json", "--all", "--backend", "gpu"];
    for (fault, lost) in [("fail:0", false), ("lost:0", true)] {
        let o = with_fault(fault, &args);
        assert_eq!(code(&o), code(&cpu), "{fault}: {}", stderr(&o));
        let (report, gpu) = strip(&o);
        assert_eq!(report, strip(&cpu).0, "{fault}");
        let gpu = gpu.expect("a gpu object in the summary");
        assert_eq!(gpu["failures"], 1, "{fault}: {gpu}");
        assert_eq!(gpu["lost"], lost, "{fault}: {gpu}");
        assert_eq!(gpu["fallback_signatures"], gpu["cpu_signatures"], "{fault}: {gpu}");
        assert!(gpu["fallback_signatures"].as_u64() > Some(0), "{fault}: {gpu}");
        assert!(stderr(&o).contains(if lost { "the GPU device was lost" } else { "injected failure of call 0" }));
    }
    // The text summary says it too.
    let o = with_fault("lost:0", &["verify", s(&file), "--backend", "gpu"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("gpu: 0 signatures in 1 calls") && out.contains("(the device was lost)"), "{out}");

    // A miscomputing adapter.
    let o = with_fault("wrong", &args);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("--backend gpu: the GPU adapter \"") && err.contains("failed its self-test"), "{err}");
    let devices = ndjson(&vigil(&["devices", "--json"]));
    let adapter = &devices[0];
    for field in ["name", "driver"] {
        assert!(err.contains(adapter[field].as_str().unwrap()), "{field} not in {err}");
    }
    assert_eq!(adapter["self_test"]["passed"], true, "{adapter}");
    let auto = {
        let mut cmd = Command::new(VIGIL);
        cmd.args(["verify", s(&file), "--json", "--all", "--backend", "auto"]);
        cmd.env("VIGIL_GPU_FAULT", "wrong").env("VIGIL_HYBRID", "1").output().unwrap()
    };
    assert_eq!(code(&auto), code(&cpu));
    assert_eq!(strip(&auto), (strip(&cpu).0, None));
    assert!(stderr(&auto).contains("failed its self-test") && stderr(&auto).contains("using the CPU"));
    let shown = String::from_utf8(with_fault("wrong", &["devices"]).stdout).unwrap();
    assert!(shown.contains("self-test: the GPU adapter") && shown.contains("REFUSED"), "{shown}");
    let shown = String::from_utf8(vigil(&["devices"]).stdout).unwrap();
    assert!(shown.contains("self-test: passed: "), "{shown}");
}
