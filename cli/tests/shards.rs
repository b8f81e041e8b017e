//! Issue 15, shards: the `vigil` binary refuses summaries and indexes that
//! do not describe the chain's bytes, bounds its numeric flags, leaves no
//! temporary file behind, and stitches only totals that fit. Real processes
//! on small generated chains.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use vigil_engine::shard;

use crate::common;
use common::*;

/// A chain of 24 blocks in several files, `faults` injected.
fn generate(dir: &Path, name: &str, faults: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "gen",
        s(&out),
        "--seed",
        "5",
        "--blocks",
        "24",
        "--txs-per-block",
        "1..6",
        "--senders",
        "4",
        "--payload",
        "0..40",
        "--segment-size",
        "3KiB",
    ];
    for f in faults {
        args.extend(["--fault", f]);
    }
    let o = vigil(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out
}

/// Runs shards `0/n..n-1/n` of `chain` into summaries under `dir`.
fn shards(chain: &Path, n: u32, dir: &Path, extra: &[&str]) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let summary = dir.join(format!("s{i}.json"));
            let spec = format!("{i}/{n}");
            let mut args = vec!["verify", s(chain), "--shard", &spec, "--summary", s(&summary)];
            args.extend(extra);
            let o = vigil(&args);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            summary
        })
        .collect()
}

fn stitch(summaries: &[PathBuf], extra: &[&str]) -> Output {
    let mut args = vec!["stitch"];
    args.extend(summaries.iter().map(|p| s(p)));
    args.extend(extra);
    vigil(&args)
}

/// Shards run on a copy with the same names and sizes but other bytes (a
/// valid chain) stitch to VALID while the chain is invalid; with --chain
/// the stitch re-hashes the chain and refuses, naming summary and file.
#[test]
fn stitch_with_the_chain_refuses_summaries_of_other_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &[]);
    let summaries = shards(&chain, 3, tmp.path(), &[]);
    let o = stitch(&summaries, &["--chain", s(&chain)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = stitch(&summaries, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("--chain"), "without the chain the stitch says so: {}", stderr(&o));

    // The chain the summaries claim to describe now holds other bytes: one
    // block's signature byte flipped, same names, sizes and (restored)
    // modification times.
    let last = std::fs::read_dir(&chain).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    let modified = std::fs::metadata(&last).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    *bytes.last_mut().unwrap() ^= 0x40;
    std::fs::write(&last, &bytes).unwrap();
    std::fs::File::options().write(true).open(&last).unwrap().set_modified(modified).unwrap();
    assert_eq!(code(&vigil(&["verify", s(&chain)])), 1, "the chain is invalid now");
    let o = stitch(&summaries, &["--chain", s(&chain)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("s2.json") && err.contains(last.file_name().unwrap().to_str().unwrap()), "{err}");
    assert!(err.contains("other bytes"), "{err}");
}

/// An edited summary (its failures removed) stitched to VALID; now its
/// checksum refuses it (exit 2, named), as does an older version.
#[test]
fn an_edited_summary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &["tx_signature@20", "nonce@6"]);
    let summaries = shards(&chain, 2, tmp.path(), &[]);
    assert_eq!(code(&stitch(&summaries, &[])), 1);
    let text = std::fs::read_to_string(&summaries[1]).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for b in v["blocks"].as_array_mut().unwrap() {
        b["failures"] = serde_json::json!([]);
    }
    std::fs::write(&summaries[1], serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let o = stitch(&summaries, &[]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(stderr(&o).contains("s1.json") && stderr(&o).contains("checksum"), "{}", stderr(&o));
    v["version"] = 1.into();
    std::fs::write(&summaries[1], serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let o = stitch(&summaries, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("version 1") && stderr(&o).contains("verify the range again"), "{}", stderr(&o));
}

/// A crafted index (its checksum recomputed) that leaves out the last,
/// invalid block: `verify --range 0.. --index` said VALID with one block
/// fewer; now the index is refused (exit 2).
#[test]
fn an_index_cannot_hide_the_last_block() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &["tx_signature@23"]);
    let index = tmp.path().join("chain.idx");
    let o = vigil(&["index", s(&chain), "-o", s(&index)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = vigil(&["verify", s(&chain), "--range", "0..", "--index", s(&index)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));

    // Drop the last block record; fix the counts and the checksum.
    let bytes = std::fs::read(&index).unwrap();
    let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + json_len]).unwrap();
    let blocks = header["blocks"].as_u64().unwrap() as usize;
    assert_eq!((blocks, header["between"].as_u64()), (24, Some(0)));
    header["blocks"] = (blocks - 1).into();
    let json = serde_json::to_vec(&header).unwrap();
    let records = 16 + json_len;
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[records..records + (blocks - 1) * 24]);
    out.extend_from_slice(&bytes[records + blocks * 24..bytes.len() - 32]);
    // BLAKE3 of the body, through the engine's hasher (of a file's bytes).
    std::fs::write(&index, &out).unwrap();
    let digest = shard::hash_span(&index, 0, out.len() as u64, vigil_engine::IoMode::Read).unwrap();
    out.extend_from_slice(&digest);
    std::fs::write(&index, &out).unwrap();

    let o = vigil(&["verify", s(&chain), "--range", "0..", "--index", s(&index)]);
    assert_eq!(code(&o), 2, "{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(stderr(&o).contains("chain.idx"), "{}", stderr(&o));
}

/// `--shard 0/4294967295` allocated 32 GiB and aborted; N is bounded now,
/// refused at once.
#[test]
fn shard_counts_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &[]);
    let started = Instant::now();
    for spec in ["0/4294967295", "0/65537", "7/7"] {
        let o = vigil(&["verify", s(&chain), "--shard", spec]);
        assert_eq!(code(&o), 2, "{spec}: {}", stderr(&o));
        assert!(stderr(&o).contains("--shard") || stderr(&o).contains("shard"), "{spec}: {}", stderr(&o));
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    // The largest N works, on a chain of fewer blocks (most shards empty).
    let summary = tmp.path().join("last.json");
    let o = vigil(&["verify", s(&chain), "--shard", "65535/65536", "--summary", s(&summary)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A range starting past the chain's end.
    let o = vigil(&["verify", s(&chain), "--range", "25.."]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("past the chain's 24 blocks"), "{}", stderr(&o));
}

/// A failed summary write (the target is a directory, so the rename
/// fails) exits 2 and leaves no `*.tmp.*` file.
#[test]
fn a_failed_summary_write_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &[]);
    let out = tmp.path().join("out");
    let target = out.join("s.json");
    std::fs::create_dir_all(target.join("in-the-way")).unwrap();
    let o = vigil(&["verify", s(&chain), "--shard", "0/2", "--summary", s(&target)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = vigil(&["index", s(&chain), "-o", s(&target)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let left: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["s.json"], "temporary files left behind");
}

/// Crafted summaries with huge totals: the stitch's sums wrapped quietly;
/// now an error (exit 2) names the summary.
#[test]
fn stitch_totals_that_overflow_are_an_error_naming_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &[]);
    let summaries = shards(&chain, 2, tmp.path(), &[]);
    // Rewritten through the engine, so the checksum is right.
    let mut s1 = shard::read_summary(&summaries[1]).unwrap();
    s1.totals.transactions = u64::MAX;
    shard::write_summary(&summaries[1], &s1).unwrap();
    let o = stitch(&summaries, &["--json"]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(stderr(&o).contains("s1.json") && stderr(&o).contains("overflows"), "{}", stderr(&o));
}

/// `vigil stitch` reports the shards' work: the summary's seconds are their
/// seconds summed (the human line says so, with the longest shard), and
/// `--json` keeps its fields and adds `shards` and `longest_shard_seconds`.
#[test]
fn the_stitch_summary_reports_the_shards_summed_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = generate(tmp.path(), "chain", &["nonce@9"]);
    let summaries = shards(&chain, 3, tmp.path(), &[]);
    for (p, seconds) in summaries.iter().zip([1.5, 4.0, 2.25]) {
        let s = shard::read_summary(p).unwrap();
        shard::write_summary(p, &shard::ShardSummary { seconds, ..s }).unwrap();
    }
    let o = stitch(&summaries, &["--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(line["type"], "summary");
    assert_eq!(line["seconds"], 7.75, "{line}");
    assert_eq!((&line["shards"], &line["longest_shard_seconds"]), (&3.into(), &4.0.into()), "{line}");
    let transactions = line["transactions"].as_u64().unwrap();
    assert!(transactions > 0 && line["verdict"] == "invalid" && line["blocks"] == 24, "{line}");

    let o = stitch(&summaries, &[]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8(o.stdout).unwrap();
    let summary = out.lines().find(|l| l.starts_with("INVALID: ")).unwrap_or_else(|| panic!("{out}"));
    let want = format!("7.75 s of shard time in 3 shards, longest 4.00 s ({:.0} tx/s,", transactions as f64 / 7.75);
    assert!(summary.contains(&want), "{summary}\nwant {want}");
    assert!(summary.ends_with("MB/s per shard-second)"), "{summary}");
}
