//! Scale-out exactness: a chain verified as N ranges (N = 1..8, shards
//! balanced by signatures) and stitched from their summaries gives exactly
//! the single run's report: every invalid block with its failures in order,
//! every malformed block, the totals. Chains carry every kind of fault,
//! densely enough that shards start and end on faulty blocks (links and
//! nonces across boundaries included), malformed blocks ending files, and an
//! empty file.

use std::path::{Path, PathBuf};
use vigil_datasets::{Fault, GenConfig, generate};
use vigil_engine::report::Rule;
use vigil_engine::shard::{self, Event, Range, StitchError};
use vigil_engine::{IoMode, Summary, Verifier, VerifyOptions, expand_paths};

/// (file, offset, position, height, hash, tx_count, failures) of an invalid
/// block, or (file, offset, detail) of a malformed one.
#[derive(Debug, PartialEq)]
enum Line {
    Block(String, u64, u64, u64, [u8; 32], u32, Vec<(Rule, Option<u32>, String)>),
    Malformed(String, u64, String),
}

fn single_run(files: &[PathBuf]) -> (Vec<Line>, Summary) {
    struct Lines(Vec<Line>);
    impl vigil_engine::ReportSink for Lines {
        fn block(&mut self, r: &vigil_engine::BlockReport) {
            if !r.valid() {
                let failures = r.failures.iter().map(|f| (f.rule, f.tx, f.detail.clone())).collect();
                self.0.push(Line::Block(
                    r.file.display().to_string(),
                    r.offset,
                    r.position,
                    r.height,
                    r.hash,
                    r.tx_count,
                    failures,
                ));
            }
        }
        fn malformed(&mut self, m: &vigil_engine::MalformedReport) {
            self.0.push(Line::Malformed(m.file.display().to_string(), m.offset, m.reason.to_string()));
        }
    }
    let mut lines = Lines(Vec::new());
    let summary = Verifier::new(VerifyOptions::default()).verify_files(files, &mut lines).unwrap();
    (lines.0, summary)
}

fn stitched_lines(events: &[Event]) -> Vec<Line> {
    events
        .iter()
        .map(|e| match e {
            Event::Block(r) => Line::Block(
                r.file.display().to_string(),
                r.offset,
                r.position,
                r.height,
                r.hash,
                r.tx_count,
                r.failures.iter().map(|f| (f.rule, f.tx, f.detail.clone())).collect(),
            ),
            Event::Malformed { file, offset, detail } => {
                Line::Malformed(file.display().to_string(), *offset, detail.clone())
            }
        })
        .collect()
}

fn without_time(s: &Summary) -> Summary {
    Summary { seconds: 0.0, ..s.clone() }
}

/// A chain with a fault every `every` blocks, cycling through every rule,
/// in small segment files, with an empty file among them.
fn chain(dir: &Path, seed: u64, blocks: u64, every: u64) -> Vec<PathBuf> {
    let rules = [
        "tx_signature",
        "nonce",
        "prev_hash",
        "height",
        "timestamp",
        "tx_root",
        "block_signature",
        "tx_timestamp",
        "chain_id",
        "malformed",
        "nonce",
    ];
    let faults: Vec<Fault> = (1..blocks)
        .filter(|h| h % every == 0)
        .enumerate()
        .map(|(i, h)| format!("{}@{h}", rules[i % rules.len()]).parse().unwrap())
        .collect();
    let cfg =
        GenConfig { seed, blocks, txs_per_block: 0..=10, senders: 7, payload: 8..=40, segment_size: 6 << 10, faults };
    generate(dir, &cfg, &|_| {}).unwrap();
    std::fs::write(dir.join("000001a.vblk"), b"").unwrap();
    expand_paths(&[dir.to_path_buf()]).unwrap()
}

fn run_shards(files: &[PathBuf], n: u32, out: &Path) -> Vec<PathBuf> {
    let walk = shard::walk(files, IoMode::Mmap).unwrap();
    let bounds = walk.shard_bounds(n);
    assert_eq!((bounds[0], *bounds.last().unwrap()), (0, walk.blocks()));
    (0..n)
        .map(|i| {
            let range = Range { start: bounds[i as usize], end: Some(bounds[i as usize + 1]) };
            let s = shard::run_range(&walk, range, Some((i, n)), VerifyOptions::default(), None).unwrap();
            let path = out.join(format!("shard-{i}-of-{n}.json"));
            shard::write_summary(&path, &s).unwrap();
            path
        })
        .collect()
}

#[test]
fn stitched_shards_equal_the_single_run_for_1_to_8_shards() {
    let mut boundary_faults = 0;
    for (seed, blocks, every) in [(11, 60, 2), (12, 45, 1), (13, 30, 7)] {
        let dir = tempfile::tempdir().unwrap();
        let files = chain(dir.path(), seed, blocks, every);
        let (want, want_summary) = single_run(&files);
        assert!(want.len() > 3, "{want:?}");
        assert!(every > 2 || want.iter().any(|l| matches!(l, Line::Malformed(..))), "{want:?}");
        let out = tempfile::tempdir().unwrap();
        for n in 1..=8 {
            let mut summaries = run_shards(&files, n, out.path());
            // Any order.
            summaries.reverse();
            let stitched = shard::stitch(&summaries).unwrap();
            assert_eq!(stitched_lines(&stitched.events), want, "seed {seed}, {n} shards");
            assert_eq!(without_time(&stitched.summary), without_time(&want_summary), "seed {seed}, {n} shards");
            // Count the failures the stitch decided at boundaries.
            for p in &summaries {
                let s = shard::read_summary(p).unwrap();
                if s.range.start > 0
                    && let Some(first) = &s.first
                {
                    let failing =
                        want.iter().any(|l| matches!(l, Line::Block(_, _, pos, ..) if *pos == first.position));
                    boundary_faults += usize::from(failing);
                }
            }
        }
    }
    eprintln!("{boundary_faults} shard-first blocks were invalid in the single run");
    assert!(boundary_faults > 20, "faults must land on shard boundaries");
}

#[test]
fn nonce_faults_on_a_senders_first_transaction_in_a_shard_are_found_by_the_stitch() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 21, 40, 1);
    let walk = shard::walk(&files, IoMode::Mmap).unwrap();
    let (want, _) = single_run(&files);
    let out = tempfile::tempdir().unwrap();
    let mut found = 0;
    for n in 2..=8 {
        let summaries = run_shards(&files, n, out.path());
        for p in &summaries {
            let s = shard::read_summary(p).unwrap();
            for sender in &s.senders {
                // The first range decides its senders' first nonces itself.
                let (Some((position, tx, _)), true) = (sender.first, s.range.start > 0) else { continue };
                let nonce_fails = want.iter().any(|l| {
                    matches!(l, Line::Block(_, _, pos, _, _, _, f) if *pos == position && f.iter().any(|(r, t, _)| *r == Rule::Nonce && *t == Some(tx)))
                });
                // The shard left it open: not in its own failures.
                let own = s.blocks.iter().any(|b| {
                    b.position == position && b.failures.iter().any(|f| f.rule == "nonce" && f.tx == Some(tx))
                });
                assert!(!own, "a first nonce was decided inside the shard");
                found += usize::from(nonce_fails);
            }
        }
        assert_eq!(stitched_lines(&shard::stitch(&summaries).unwrap().events), want, "{n} shards");
    }
    assert!(walk.blocks() > 30);
    assert!(found > 0, "some sender's first transaction in a shard had a wrong nonce");
}

#[test]
fn ranges_of_any_size_and_an_open_end_stitch_too() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 31, 25, 3);
    let walk = shard::walk(&files, IoMode::Read).unwrap();
    let (want, want_summary) = single_run(&files);
    let out = tempfile::tempdir().unwrap();
    // Uneven cuts, an empty range, and an end far past the chain.
    let cuts = [(0, Some(1)), (1, Some(1)), (1, Some(9)), (9, Some(24)), (24, Some(1000))];
    let paths: Vec<PathBuf> = cuts
        .iter()
        .enumerate()
        .map(|(i, &(start, end))| {
            // Plain reads for the parts of files, as --no-mmap does.
            let mut opts = VerifyOptions::default();
            opts.io = IoMode::Read;
            let s = shard::run_range(&walk, Range { start, end }, None, opts, None).unwrap();
            let p = out.path().join(format!("r{i}.json"));
            shard::write_summary(&p, &s).unwrap();
            p
        })
        .collect();
    let stitched = shard::stitch(&paths).unwrap();
    assert_eq!(stitched_lines(&stitched.events), want);
    assert_eq!(without_time(&stitched.summary), without_time(&want_summary));
}

#[test]
fn missing_overlapping_duplicate_and_foreign_summaries_are_errors_naming_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 41, 20, 5);
    let out = tempfile::tempdir().unwrap();
    let four = run_shards(&files, 4, out.path());
    // Missing: names the shards to re-run.
    let err = shard::stitch(&[four[0].clone(), four[2].clone(), four[3].clone()]).unwrap_err();
    assert!(matches!(&err, StitchError::Missing(m) if m.to_string().contains("1/4")), "{err}");
    let err = shard::stitch(&four[..3]).unwrap_err();
    assert!(matches!(&err, StitchError::Missing(m) if m.to_string().contains("3/4")), "{err}");
    // Duplicate and overlapping.
    let err = shard::stitch(&[four[0].clone(), four[1].clone(), four[1].clone(), four[2].clone(), four[3].clone()])
        .unwrap_err();
    assert!(matches!(err, StitchError::Overlap { .. }), "{err}");
    let two = run_shards(&files, 2, out.path());
    let err = shard::stitch(&[two[0].clone(), four[1].clone(), four[2].clone(), four[3].clone()]).unwrap_err();
    assert!(matches!(err, StitchError::Overlap { .. }), "{err}");
    // Foreign: another chain's summary.
    let other_dir = tempfile::tempdir().unwrap();
    let other = chain(other_dir.path(), 42, 20, 5);
    let other_out = tempfile::tempdir().unwrap();
    let theirs = run_shards(&other, 4, other_out.path());
    let err = shard::stitch(&[four[0].clone(), four[1].clone(), theirs[2].clone(), four[3].clone()]).unwrap_err();
    assert!(matches!(&err, StitchError::Foreign { path, .. } if *path == theirs[2]), "{err}");
    // Not a summary at all.
    let junk = out.path().join("junk.json");
    std::fs::write(&junk, b"{\"hello\": 1}").unwrap();
    let err = shard::stitch(std::slice::from_ref(&junk)).unwrap_err();
    assert!(err.to_string().contains("junk.json"), "{err}");
    assert!(matches!(shard::stitch(&[]), Err(StitchError::Empty)));
    // A file given twice cannot be cut into ranges by position.
    let twice = [files.clone(), files[..1].to_vec()].concat();
    let err = shard::walk(&twice, IoMode::Mmap).unwrap_err();
    assert!(matches!(err, vigil_engine::InputError::Duplicate { .. }), "{err}");
}

/// An index written once gives the shards the same layout as the walk (so
/// the same summaries); a changed or damaged index is refused.
#[test]
fn the_sidecar_index_replaces_the_walk_and_refuses_stale_or_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 51, 30, 3);
    let walk = shard::walk(&files, IoMode::Mmap).unwrap();
    let out = tempfile::tempdir().unwrap();
    let index = out.path().join("chain.idx");
    walk.write_index(&index, IoMode::Mmap).unwrap();
    let read = shard::Walk::read_index(&index, &files).unwrap();
    assert_eq!(
        (read.blocks(), read.transactions(), read.chain_id),
        (walk.blocks(), walk.transactions(), walk.chain_id)
    );
    for n in [1, 3, 5] {
        assert_eq!(read.shard_bounds(n), walk.shard_bounds(n));
        let bounds = walk.shard_bounds(n);
        for i in 0..n as usize {
            let range = Range { start: bounds[i], end: Some(bounds[i + 1]) };
            let by_walk = shard::run_range(&walk, range, None, VerifyOptions::default(), None).unwrap();
            let by_index = shard::run_range(&read, range, None, VerifyOptions::default(), None).unwrap();
            assert_eq!(
                shard::ShardSummary { seconds: 0.0, ..by_index },
                shard::ShardSummary { seconds: 0.0, ..by_walk },
                "{n} shards, shard {i}"
            );
        }
    }
    // Damaged: any flipped byte, or a cut.
    let bytes = std::fs::read(&index).unwrap();
    for at in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        std::fs::write(&index, &bad).unwrap();
        let err = shard::Walk::read_index(&index, &files).unwrap_err();
        assert!(matches!(err, shard::IndexError::Invalid { .. }), "flip at {at}: {err}");
    }
    std::fs::write(&index, &bytes[..bytes.len() - 7]).unwrap();
    assert!(matches!(shard::Walk::read_index(&index, &files), Err(shard::IndexError::Invalid { .. })));
    // Stale: another file list, or a file touched since.
    std::fs::write(&index, &bytes).unwrap();
    assert!(matches!(shard::Walk::read_index(&index, &files[1..]), Err(shard::IndexError::Stale { .. })));
    let f = std::fs::OpenOptions::new().append(true).open(&files[0]).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    let err = shard::Walk::read_index(&index, &files).unwrap_err();
    assert!(
        matches!(&err, shard::IndexError::Stale { problem, .. } if problem.to_string().contains("000000")),
        "{err}"
    );
}

/// Two shards' summaries of `files`, by the walk.
fn two_summaries(files: &[PathBuf], out: &Path) -> Vec<PathBuf> {
    run_shards(files, 2, out)
}

/// Issue 15 (18): shards run on copies of the chain with the same names and
/// sizes but other bytes stitch only without the chain; given the chain,
/// the stitch re-hashes it and names the summary and the file.
#[test]
fn summaries_made_from_other_bytes_are_refused_when_the_chain_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 61, 30, 1000);
    let out = tempfile::tempdir().unwrap();
    let summaries = two_summaries(&files, out.path());
    let copy = tempfile::tempdir().unwrap();
    let copies: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            let to = copy.path().join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    // The copies as given are the chain: accepted.
    let ok = shard::stitch_with_chain(&summaries, Some((&copies, IoMode::Mmap))).unwrap();
    assert!(ok.summary.valid());
    // One byte of the last non-empty file differs: the shard covering it is named.
    let last = copies.iter().rposition(|f| std::fs::metadata(f).unwrap().len() > 0).unwrap();
    let mut bytes = std::fs::read(&copies[last]).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&copies[last], &bytes).unwrap();
    assert!(shard::stitch(&summaries).unwrap().summary.valid(), "without the chain nothing is read");
    for io in [IoMode::Mmap, IoMode::Read] {
        let err = shard::stitch_with_chain(&summaries, Some((&copies, io))).unwrap_err();
        assert!(
            matches!(&err, StitchError::Bytes { path, file, .. } if *path == summaries[1] && *file == copies[last]),
            "{err}"
        );
        assert!(err.to_string().contains("shard-1-of-2.json"), "{err}");
    }
    // Another number of files, or another size.
    let err = shard::stitch_with_chain(&summaries, Some((&copies[1..], IoMode::Mmap))).unwrap_err();
    assert!(matches!(err, StitchError::Chain(_)), "{err}");
    bytes.push(0);
    std::fs::write(&copies[last], &bytes).unwrap();
    let err = shard::stitch_with_chain(&summaries, Some((&copies, IoMode::Mmap))).unwrap_err();
    assert!(matches!(err, StitchError::Chain(_)), "{err}");
}

/// Issue 15 (18): an edited summary (failures removed) is refused by its
/// checksum; an older version by name; spans that leave bytes out, and
/// totals that overflow (20), are errors naming the summary.
#[test]
fn edited_old_untiled_and_overflowing_summaries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 62, 30, 4);
    let out = tempfile::tempdir().unwrap();
    let summaries = two_summaries(&files, out.path());
    assert!(!shard::stitch(&summaries).unwrap().summary.valid());
    let original = std::fs::read_to_string(&summaries[1]).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    let failing =
        v["blocks"].as_array().unwrap().iter().filter(|b| !b["failures"].as_array().unwrap().is_empty()).count();
    assert!(failing > 0);
    for b in v["blocks"].as_array_mut().unwrap() {
        b["failures"] = serde_json::json!([]);
    }
    std::fs::write(&summaries[1], serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let err = shard::stitch(&summaries).unwrap_err();
    assert!(err.to_string().contains("checksum") && err.to_string().contains("shard-1-of-2.json"), "{err}");
    // Version 1 (no digests): refused by name.
    v["version"] = 1.into();
    std::fs::write(&summaries[1], serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let err = shard::stitch(&summaries).unwrap_err();
    assert!(err.to_string().contains("version 1") && err.to_string().contains("version 2"), "{err}");
    std::fs::write(&summaries[1], &original).unwrap();
    assert!(shard::stitch(&summaries).is_ok());

    // Summaries rewritten through the API (so their checksums are right).
    let edit = |path: &Path, f: &dyn Fn(&mut shard::ShardSummary)| {
        let mut s = shard::read_summary(path).unwrap();
        f(&mut s);
        shard::write_summary(path, &s).unwrap();
    };
    // A span left out: the bytes are in no summary.
    edit(&summaries[1], &|s| {
        s.spans.pop();
    });
    let err = shard::stitch(&summaries).unwrap_err();
    assert!(matches!(err, StitchError::Untiled(_)), "{err}");
    std::fs::write(&summaries[1], &original).unwrap();
    // Totals that overflow: an error naming the summary, not a wrapped sum.
    for what in ["blocks", "bytes", "signatures"] {
        edit(&summaries[1], &|s| match what {
            "blocks" => s.totals.blocks = u64::MAX,
            "bytes" => s.totals.bytes = u64::MAX - 1,
            _ => s.totals.signatures = u64::MAX,
        });
        let err = shard::stitch(&summaries).unwrap_err();
        assert!(
            matches!(&err, StitchError::Overflow { path, what: w, .. } if *path == summaries[1] && *w == what),
            "{err}"
        );
        std::fs::write(&summaries[1], &original).unwrap();
    }
    // Totals that do not add up to the input's.
    edit(&summaries[1], &|s| s.totals.blocks -= 1);
    assert!(matches!(shard::stitch(&summaries), Err(StitchError::Counts(_))));
}

/// The index's records as a test rewrites them: (file, offset, len, txs)
/// blocks and (file, offset, anchor) in-between items, re-checksummed.
fn rewrite_index(index: &Path, f: impl FnOnce(&mut Vec<(u32, u64, u64, u32)>, &mut Vec<(u32, u64, u64)>)) {
    let bytes = std::fs::read(index).unwrap();
    let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + json_len]).unwrap();
    let (nb, nt) = (header["blocks"].as_u64().unwrap() as usize, header["between"].as_u64().unwrap() as usize);
    let mut at = 16 + json_len;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let mut blocks = Vec::new();
    for _ in 0..nb {
        blocks.push((u32_at(at), u64_at(at + 4), u64_at(at + 12), u32_at(at + 20)));
        at += 24;
    }
    let mut between = Vec::new();
    for _ in 0..nt {
        between.push((u32_at(at), u64_at(at + 4), u64_at(at + 12)));
        at += 20;
    }
    let anchors = bytes[at..bytes.len() - 32].to_vec();
    f(&mut blocks, &mut between);
    header["blocks"] = blocks.len().into();
    header["between"] = between.len().into();
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    for b in &blocks {
        out.extend_from_slice(&b.0.to_le_bytes());
        out.extend_from_slice(&b.1.to_le_bytes());
        out.extend_from_slice(&b.2.to_le_bytes());
        out.extend_from_slice(&b.3.to_le_bytes());
    }
    for t in &between {
        out.extend_from_slice(&t.0.to_le_bytes());
        out.extend_from_slice(&t.1.to_le_bytes());
        out.extend_from_slice(&t.2.to_le_bytes());
    }
    out.extend_from_slice(&anchors);
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    std::fs::write(index, out).unwrap();
}

/// Issue 15 (18): a crafted index (its checksum recomputed) cannot hide the
/// chain's last block: left out, the index does not tile the files and is
/// refused; passed off as a malformed tail, the range reads a well-formed
/// block there and refuses the index. A file's bytes that differ from the
/// index's digest are refused by a range covering the whole file.
#[test]
fn a_crafted_index_cannot_hide_the_last_block() {
    let dir = tempfile::tempdir().unwrap();
    // No empty file here: the chain ends with its last block.
    let cfg = GenConfig {
        seed: 71,
        blocks: 20,
        txs_per_block: 1..=4,
        senders: 3,
        payload: 8..=20,
        segment_size: 2 << 10,
        faults: vec!["tx_signature@19".parse().unwrap()],
    };
    generate(dir.path(), &cfg, &|_| {}).unwrap();
    let files = expand_paths(&[dir.path().to_path_buf()]).unwrap();
    let walk = shard::walk(&files, IoMode::Mmap).unwrap();
    let out = tempfile::tempdir().unwrap();
    let index = out.path().join("chain.idx");
    walk.write_index(&index, IoMode::Mmap).unwrap();
    let bytes = std::fs::read(&index).unwrap();
    let all = Range { start: 0, end: None };

    rewrite_index(&index, |blocks, _| {
        blocks.pop();
    });
    let err = shard::Walk::read_index(&index, &files).unwrap_err();
    assert!(matches!(&err, shard::IndexError::Invalid { problem, .. } if problem.to_string().contains("end")), "{err}");

    std::fs::write(&index, &bytes).unwrap();
    rewrite_index(&index, |blocks, between| {
        let last = blocks.pop().unwrap();
        between.push((last.0, last.1, blocks.len() as u64));
    });
    let crafted = shard::Walk::read_index(&index, &files).unwrap();
    assert_eq!(crafted.blocks(), walk.blocks() - 1);
    let err = shard::run_range(&crafted, all, None, VerifyOptions::default(), None).unwrap_err();
    assert!(matches!(err, shard::ShardError::Mismatch(_)), "{err}");

    // The honest index gives the single run; a file changed under the same
    // size and modification time is caught by its digest.
    std::fs::write(&index, &bytes).unwrap();
    let honest = shard::Walk::read_index(&index, &files).unwrap();
    let s = shard::run_range(&honest, all, None, VerifyOptions::default(), None).unwrap();
    assert_eq!(s.totals.blocks, 20);
    assert!(s.blocks.iter().any(|b| !b.failures.is_empty()));
    let f = &files[0];
    let modified = std::fs::metadata(f).unwrap().modified().unwrap();
    let mut data = std::fs::read(f).unwrap();
    *data.last_mut().unwrap() ^= 1;
    std::fs::write(f, &data).unwrap();
    std::fs::File::options().write(true).open(f).unwrap().set_modified(modified).unwrap();
    let honest = shard::Walk::read_index(&index, &files).unwrap();
    let err = shard::run_range(&honest, all, None, VerifyOptions::default(), None).unwrap_err();
    assert!(matches!(&err, shard::ShardError::Mismatch(m) if m.to_string().contains("vigil index")), "{err}");
}

/// Issue 15 (20): a failed write leaves no temporary file behind.
#[test]
fn a_failed_summary_or_index_write_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 81, 10, 1000);
    let walk = shard::walk(&files, IoMode::Mmap).unwrap();
    let s = shard::run_range(&walk, Range { start: 0, end: None }, None, VerifyOptions::default(), None).unwrap();
    let out = tempfile::tempdir().unwrap();
    // The rename target is a directory: the rename fails.
    let target = out.path().join("summary.json");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"").unwrap();
    assert!(shard::write_summary(&target, &s).is_err());
    assert!(walk.write_index(&target, IoMode::Mmap).is_err());
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("summary.json")], "temporary files left behind");
}

/// Issue 15: N is bounded (a huge N allocated by N before) and cuts are the
/// same as the bounds; a range past the chain's end is an error.
#[test]
fn shard_counts_and_range_starts_are_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 91, 12, 1000);
    let walk = shard::walk(&files, IoMode::Mmap).unwrap();
    for (i, n) in [(0, u32::MAX), (5, 0), (3, 3), (0, shard::MAX_SHARDS + 1)] {
        assert!(matches!(walk.shard_range(i, n), Err(shard::ShardError::Range(_))), "{i}/{n}");
    }
    let r = walk.shard_range(shard::MAX_SHARDS - 1, shard::MAX_SHARDS).unwrap();
    assert_eq!(r.end, Some(walk.blocks()));
    for n in 1..=5 {
        let bounds = walk.shard_bounds(n);
        for i in 0..n {
            let r = walk.shard_range(i, n).unwrap();
            assert_eq!((r.start, r.end), (bounds[i as usize], Some(bounds[i as usize + 1])));
        }
    }
    let past = Range { start: walk.blocks() + 1, end: None };
    let err = shard::run_range(&walk, past, None, VerifyOptions::default(), None).unwrap_err();
    assert!(matches!(err, shard::ShardError::Range(_)), "{err}");
    assert!(
        shard::run_range(&walk, Range { start: walk.blocks(), end: None }, None, VerifyOptions::default(), None)
            .is_ok()
    );
}

/// The stitched summary's seconds are the shards' work summed (not the
/// longest shard's, nor the stitch's own time); the longest is kept apart.
#[test]
fn the_stitched_seconds_are_the_shards_seconds_summed() {
    let dir = tempfile::tempdir().unwrap();
    let files = chain(dir.path(), 21, 40, 9);
    let out = tempfile::tempdir().unwrap();
    let summaries = run_shards(&files, 3, out.path());
    // Times no run would give by chance; rewritten through the engine, so
    // the checksums are right.
    for (p, seconds) in summaries.iter().zip([1.5, 4.0, 2.25]) {
        let s = shard::read_summary(p).unwrap();
        shard::write_summary(p, &shard::ShardSummary { seconds, ..s }).unwrap();
    }
    let stitched = shard::stitch(&summaries).unwrap();
    assert_eq!(stitched.summary.seconds, 7.75);
    assert_eq!((stitched.ranges, stitched.longest_seconds), (3, 4.0));
    // A crafted negative time counts as none rather than hiding another's.
    let s = shard::read_summary(&summaries[1]).unwrap();
    shard::write_summary(&summaries[1], &shard::ShardSummary { seconds: -3.0, ..s }).unwrap();
    let stitched = shard::stitch(&summaries).unwrap();
    assert_eq!((stitched.summary.seconds, stitched.longest_seconds), (3.75, 2.25));
}
