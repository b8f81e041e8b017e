//! `vigil verify`: progress, human report or NDJSON, exit code.

use crate::lines::Lines;
use crate::{EXIT_INVALID, Fatal, args};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use std::collections::HashSet;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use vigil_engine::input::ChainInput;
use vigil_engine::shard::{self, Range};
use vigil_engine::{
    BlockRef, BlockReport, Discontinuity, Failure, IoMode, MalformedReport, ReportSink, RuleSet, Summary, Verifier,
    VerifyOptions, expand_files, expand_inputs,
};

#[derive(Args)]
pub struct VerifyArgs {
    /// Segment files, directories of *.vblk files (read in byte order of
    /// name), or streams: `-` (standard input), pipes, FIFOs.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = args::threads)]
    threads: Option<usize>,
    /// NDJSON on stdout: invalid blocks, malformed blocks, then a summary.
    #[arg(long)]
    json: bool,
    /// Report every block, valid or not.
    #[arg(long)]
    all: bool,
    /// File of authority public keys (hex, one a line): enables the proposer check.
    #[arg(long, value_name = "FILE")]
    authorities: Option<PathBuf>,
    /// Pin the chain id (64 hex digits) instead of taking the first block's.
    #[arg(long, value_name = "HEX", value_parser = args::hex32)]
    chain_id: Option<[u8; 32]>,
    /// Read files with plain reads instead of mapping them (safe for files that may change).
    #[arg(long)]
    no_mmap: bool,
    /// Signature rules: zip215 (format v1's rule) or strict (an audit: ed25519-dalek verify_strict).
    #[arg(long, default_value = "zip215")]
    rules: RuleSet,
    /// Fix the signature batch size instead of learning the fastest one.
    #[arg(long, value_parser = args::batch_size)]
    batch_size: Option<usize>,
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: args::Backend,
    /// Verify only the blocks at chain positions A <= p < B (A.. runs to the
    /// end, ..B starts at 0); checks that need the blocks before are left to
    /// `vigil stitch`.
    #[arg(long, value_name = "A..B", value_parser = args::position_range, conflicts_with = "shard")]
    range: Option<(u64, Option<u64>)>,
    /// Verify the I-th of N parts of the chain (I from 0), balanced by signatures;
    /// `auto`: N from VIGIL_SHARDS, I from JOB_COMPLETION_INDEX (Kubernetes
    /// Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array numbered from 0).
    #[arg(long, value_name = "I/N|auto", value_parser = args::shard_spec)]
    shard: Option<args::ShardSpec>,
    /// With --range or --shard: write the range's boundary summary here (for
    /// `vigil stitch`) and exit 0 once it is written (its failures are in it).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Redo a range whose summary already exists and matches its input.
    #[arg(long, requires = "summary")]
    force: bool,
    /// With --range or --shard: find blocks from this index (`vigil index`)
    /// instead of walking the chain before the range.
    #[arg(long, value_name = "FILE")]
    index: Option<PathBuf>,
}

pub fn run(a: VerifyArgs) -> Result<u8, Fatal> {
    if a.range.is_some() || a.shard.is_some() {
        return run_range(a);
    }
    if a.summary.is_some() || a.index.is_some() || a.force {
        return Err(Fatal("--summary, --index and --force need --range or --shard".into()));
    }
    let inputs = expand_inputs(&a.paths)?;
    let stdin_twice = a.authorities.as_ref().is_some_and(|p| p.as_os_str() == "-")
        && inputs.iter().any(|i| i.path().as_os_str() == "-");
    if stdin_twice {
        return Err(Fatal("--authorities - and a chain on - cannot both read standard input".into()));
    }
    let total_bytes: u64 = inputs.iter().filter_map(ChainInput::size).sum();
    let opts = options(&a)?;

    let bar = progress_bar(total_bytes);
    let mut sink = Printer::new(a.json, a.all, bar.clone());
    let summary = Verifier::new(opts).verify_inputs(&inputs, &mut sink)?;
    bar.finish_and_clear();
    if summary.blocks == 0 && summary.malformed == 0 {
        let streams = inputs.iter().filter(|i| matches!(i, ChainInput::Stream(_))).count();
        let what = if streams > 0 { format!(" ({streams} of them streams)") } else { String::new() };
        return Err(Fatal(format!(
            "nothing verified: the input holds no block ({} files{what}, {} bytes)",
            summary.files, summary.bytes
        )));
    }
    sink.finish(&summary)
}

fn options(a: &VerifyArgs) -> Result<VerifyOptions, Fatal> {
    let authorities = a.authorities.as_deref().map(read_authorities).transpose()?;
    let backend = args::open_backend(a.backend)?;
    let mut opts = VerifyOptions::default();
    opts.chain_id = a.chain_id;
    opts.authorities = authorities;
    opts.io = if a.no_mmap { IoMode::Read } else { IoMode::Mmap };
    opts.rules = a.rules;
    opts.threads = a.threads;
    opts.signer = backend.with_batch_size(a.batch_size);
    Ok(opts)
}

/// `--range` / `--shard`: one part of the chain, optionally into a summary.
fn run_range(a: VerifyArgs) -> Result<u8, Fatal> {
    let files = expand_files(&a.paths, "--range/--shard (the chain is walked before the range is verified)")?;
    let shard = match a.shard {
        Some(spec) => Some(spec.resolve()?),
        None => None,
    };
    let opts = options(&a)?;
    if let (Some(path), false) = (&a.summary, a.force)
        && let Ok(old) = shard::read_summary(path)
        && old.input.matches_files(&files)
        && old.input.rules == opts.rules.to_string()
        && (shard.is_some() && old.shard == shard
            || a.range.is_some_and(|(s, e)| {
                // The range as it was run: an end at or past the chain's block count is open.
                old.range == Range { start: s, end: e.filter(|&e| e < old.input.blocks) }
            }))
    {
        eprintln!(
            "vigil: {} is up to date for positions {} of this input; not verifying again (--force to redo)",
            path.display(),
            old.range
        );
        return Ok(0);
    }
    let walk = match &a.index {
        Some(index) => shard::Walk::read_index(index, &files)?,
        None => shard::walk(&files, opts.io)?,
    };
    let range = match (a.range, shard) {
        (Some((start, end)), _) => Range { start, end },
        (None, Some((i, n))) => walk.shard_range(i, n)?,
        (None, None) => unreachable!("range or shard"),
    };
    let printing = a.summary.is_none();
    let bar = progress_bar(0);
    let forward: Option<Box<dyn ReportSink>> =
        printing.then(|| Box::new(Printer::new(a.json, a.all, bar.clone())) as Box<dyn ReportSink>);
    let summary = shard::run_range(&walk, range, shard, opts, forward)?;
    bar.finish_and_clear();
    let what = match shard {
        Some((i, n)) => format!("shard {i}/{n}, positions {}", summary.range),
        None => format!("positions {}", summary.range),
    };
    match &a.summary {
        Some(path) => {
            shard::write_summary(path, &summary).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
            eprintln!(
                "vigil: {what}: {} blocks, {} transactions, {} failing alone, {} malformed; summary written to {}",
                summary.totals.blocks,
                summary.totals.transactions,
                summary.blocks.iter().filter(|b| !b.failures.is_empty()).count(),
                summary.totals.malformed,
                path.display()
            );
            Ok(0)
        }
        None => {
            let t = &summary.totals;
            if t.blocks == 0 && t.malformed == 0 {
                let asked = match (a.range, shard) {
                    (Some((start, end)), _) => Range { start, end }.to_string(),
                    _ => summary.range.to_string(),
                };
                return Err(Fatal(format!(
                    "nothing verified: positions {asked} hold no block (the chain has {} blocks, positions 0..{})",
                    walk.blocks(),
                    walk.blocks()
                )));
            }
            if summary.range.start > 0 {
                eprintln!(
                    "vigil: {what} of {} blocks; the first block's links and each sender's first nonce are checked only by `vigil stitch`",
                    walk.blocks()
                );
            }
            let printer = Printer::new(a.json, a.all, ProgressBar::hidden());
            let invalid = summary.blocks.iter().filter(|b| !b.failures.is_empty()).count() as u64;
            let block_ref = |e: &Option<shard::Edge>| {
                e.as_ref().and_then(|e| Some(BlockRef { height: e.height, hash: args::hex32(&e.hash).ok()? }))
            };
            printer.finish(&Summary {
                chain_id: summary.input.chain_id.as_deref().and_then(|c| args::hex32(c).ok()),
                first: block_ref(&summary.first),
                last: block_ref(&summary.last),
                files: t.files,
                blocks: t.blocks,
                invalid_blocks: invalid,
                malformed: t.malformed,
                transactions: t.transactions,
                signatures: t.signatures,
                bytes: t.bytes,
                seconds: summary.seconds,
            })
        }
    }
}

/// `vigil stitch`: the whole chain's report from its ranges' summaries;
/// with `chain`, checked against the chain's bytes.
pub fn stitch(paths: &[PathBuf], json: bool, chain: &[PathBuf]) -> Result<u8, Fatal> {
    let stitched = if chain.is_empty() {
        eprintln!(
            "vigil: note: the summaries were not checked against the chain's bytes; give --chain PATH... to check them"
        );
        shard::stitch(paths)?
    } else {
        let files = expand_files(chain, "vigil stitch --chain (it re-hashes the files)")?;
        shard::stitch_with_chain(paths, Some((&files, IoMode::Mmap)))?
    };
    let mut printer = Printer::new(json, false, ProgressBar::hidden());
    printer.shards = Some(ShardTime { count: stitched.ranges, longest: stitched.longest_seconds });
    for event in &stitched.events {
        match event {
            shard::Event::Block(r) => printer.block(r),
            shard::Event::Malformed { file, offset, detail } => printer.malformed_line(file, *offset, detail),
        }
    }
    printer.finish(&stitched.summary)
}

/// Longest line of an authorities file (a key is 64 hex digits).
const AUTHORITY_LINE_MAX: usize = 4096;
/// Most keys an authorities file may hold.
const AUTHORITIES_MAX: usize = 1 << 20;

/// Reads an authorities file: hex public keys, one a line, `#` comments.
/// A stream (`-`, a pipe, a FIFO) is read as it comes; lines and keys are
/// bounded, so `/dev/zero` or an endless pipe is an error naming the line.
pub fn read_authorities(path: &Path) -> Result<HashSet<[u8; 32]>, Fatal> {
    let mut lines = Lines::open(path, "keys", AUTHORITY_LINE_MAX)?;
    let mut keys = HashSet::new();
    while let Some(line) = lines.next_line()? {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = args::hex32(line).map_err(|e| lines.error(e))?;
        keys.insert(key);
        if keys.len() > AUTHORITIES_MAX {
            return Err(lines.error(format!("more than {AUTHORITIES_MAX} keys")));
        }
    }
    Ok(keys)
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {bytes}/{total_bytes} {bytes_per_sec}  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

struct Printer {
    json: bool,
    all: bool,
    bar: ProgressBar,
    out: BufWriter<std::io::Stdout>,
    error: Option<std::io::Error>,
    /// `vigil stitch`: the summary's seconds are its shards' summed.
    shards: Option<ShardTime>,
}

/// The shards a stitched summary joins (`seconds` is their sum).
#[derive(Clone, Copy)]
struct ShardTime {
    count: usize,
    longest: f64,
}

/// A `block` line of the NDJSON report, written straight to the output (a
/// block's failures can number a million: no JSON value is built for
/// them). Fields in the order `json!` gives (sorted), so lines are as
/// before.
#[derive(Serialize)]
struct BlockLine<'a> {
    failures: Failures<'a>,
    file: String,
    hash: String,
    height: u64,
    offset: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    valid: bool,
}

struct Failures<'a>(&'a [Failure]);

#[derive(Serialize)]
struct FailureLine<'a> {
    detail: &'a str,
    rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx: Option<u32>,
}

impl Serialize for Failures<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|f| FailureLine { detail: &f.detail, rule: f.rule.name(), tx: f.tx }))
    }
}

fn block_ref_json(b: &Option<BlockRef>) -> serde_json::Value {
    b.map_or(serde_json::Value::Null, |b| json!({"height": b.height, "hash": hex::encode(b.hash)}))
}

impl Printer {
    fn new(json: bool, all: bool, bar: ProgressBar) -> Printer {
        Printer { json, all, bar, out: BufWriter::new(std::io::stdout()), error: None, shards: None }
    }

    /// Prints the summary; the exit code.
    fn finish(mut self, summary: &Summary) -> Result<u8, Fatal> {
        self.summary(summary);
        if let Some(e) = self.error {
            return Err(Fatal(format!("writing the report: {e}")));
        }
        Ok(if summary.valid() { 0 } else { EXIT_INVALID })
    }

    fn malformed_line(&mut self, file: &Path, offset: u64, detail: &str) {
        if self.json {
            let line = json!({
                "type": "malformed", "file": file_name(file), "offset": offset, "detail": detail,
            });
            self.emit(&line.to_string());
        } else {
            self.emit(&format!(
                "MALFORMED block ({} @ {}): {}; the rest of the file is not read",
                file_name(file),
                offset,
                detail
            ));
        }
    }

    fn emit(&mut self, text: &str) {
        self.write(|out| writeln!(out, "{text}"));
    }

    /// Writes one event (a line, or a block's lines) and flushes it, with
    /// the progress bar out of the way. After an error nothing more is
    /// written; [`Printer::finish`] reports it. (A closed pipe ends the
    /// process with SIGPIPE first: see `main`.)
    fn write(&mut self, event: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        if self.error.is_some() {
            return;
        }
        let out = &mut self.out;
        if let Err(e) = self.bar.suspend(|| {
            event(out)?;
            out.flush()
        }) {
            self.error = Some(e);
        }
    }

    fn summary(&mut self, s: &Summary) {
        let verdict = if s.valid() { "valid" } else { "invalid" };
        if self.json {
            let mut line = json!({
                "type": "summary", "verdict": verdict, "files": s.files, "blocks": s.blocks,
                "invalid_blocks": s.invalid_blocks, "malformed": s.malformed, "transactions": s.transactions,
                "signatures": s.signatures, "bytes": s.bytes, "seconds": s.seconds,
                "chain_id": s.chain_id.map(hex::encode), "first": block_ref_json(&s.first),
                "last": block_ref_json(&s.last),
            });
            if let Some(t) = self.shards {
                line["shards"] = json!(t.count);
                line["longest_shard_seconds"] = json!(t.longest);
            }
            self.emit(&line.to_string());
        } else {
            let secs = s.seconds.max(1e-9);
            let mut problems = format!("{} invalid", s.invalid_blocks);
            if s.malformed > 0 {
                problems += &format!(", {} malformed", s.malformed);
            }
            let (tx_s, mb_s) = (s.transactions as f64 / secs, s.bytes as f64 / secs / 1e6);
            let time = match self.shards {
                None => format!("{:.2} s ({tx_s:.0} tx/s, {mb_s:.1} MB/s)", s.seconds),
                Some(t) => format!(
                    "{:.2} s of shard time in {} shard{}, longest {:.2} s ({tx_s:.0} tx/s, {mb_s:.1} MB/s per shard-second)",
                    s.seconds,
                    t.count,
                    if t.count == 1 { "" } else { "s" },
                    t.longest
                ),
            };
            self.emit(&format!(
                "{}: {} blocks ({problems}), {} transactions, {} signatures, {} bytes in {} files, {time}",
                verdict.to_uppercase(),
                s.blocks,
                s.transactions,
                s.signatures,
                s.bytes,
                s.files,
            ));
            if let (Some(first), Some(last)) = (s.first, s.last) {
                let chain = s.chain_id.map_or_else(|| "?".into(), hex::encode);
                self.emit(&format!(
                    "chain {chain}: from height {} (hash {}) to height {} (hash {})",
                    first.height,
                    hex::encode(first.hash),
                    last.height,
                    hex::encode(last.hash)
                ));
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.display().to_string()
}

impl ReportSink for Printer {
    fn block(&mut self, r: &BlockReport) {
        if r.valid() && !self.all {
            return;
        }
        if self.json {
            let line = BlockLine {
                failures: Failures(&r.failures),
                file: file_name(&r.file),
                hash: hex::encode(r.hash),
                height: r.height,
                offset: r.offset,
                kind: "block",
                valid: r.valid(),
            };
            self.write(|out| {
                serde_json::to_writer(&mut *out, &line)?;
                writeln!(out)
            });
        } else {
            let state = if r.valid() { "valid" } else { "INVALID" };
            self.write(|out| {
                write!(
                    out,
                    "{state} block at height {} ({} @ {}, hash {})",
                    r.height,
                    file_name(&r.file),
                    r.offset,
                    hex::encode(r.hash)
                )?;
                for f in &r.failures {
                    match f.tx {
                        Some(tx) => write!(out, "\n  {} (tx {tx}): {}", f.rule, f.detail)?,
                        None => write!(out, "\n  {}: {}", f.rule, f.detail)?,
                    }
                }
                writeln!(out)
            });
        }
    }

    fn malformed(&mut self, m: &MalformedReport) {
        self.malformed_line(&m.file, m.offset, &m.reason.to_string());
    }

    fn discontinuity(&mut self, d: &Discontinuity) {
        if self.json {
            let line = json!({
                "type": "discontinuity", "file": file_name(&d.file), "offset": d.offset,
                "previous_file": file_name(&d.previous_file), "height": d.height,
                "prev_hash": hex::encode(d.prev_hash), "parent": block_ref_json(&Some(d.parent)),
            });
            self.emit(&line.to_string());
        } else {
            let expected = d.parent.height.checked_add(1).map_or_else(|| "none".into(), |h| h.to_string());
            self.emit(&format!(
                "NOTE: {} does not continue {}: its first block (@ {}) has height {} and prev_hash {}; \
                 the last block of {} has height {} and hash {}, so height {expected} and that prev_hash were expected \
                 (files out of order, or a segment missing?)",
                file_name(&d.file),
                file_name(&d.previous_file),
                d.offset,
                d.height,
                hex::encode(d.prev_hash),
                file_name(&d.previous_file),
                d.parent.height,
                hex::encode(d.parent.hash),
            ));
        }
    }

    fn progress(&mut self, t: &Summary) {
        self.bar.set_position(t.bytes);
        let secs = t.seconds.max(1e-9);
        self.bar.set_message(format!(
            "{} blocks, {} tx, {:.0} tx/s",
            t.blocks,
            t.transactions,
            t.transactions as f64 / secs
        ));
    }
}

/// `vigil index`: the chain's block layout, for shards to read instead of
/// walking the chain.
pub fn index(paths: &[PathBuf], output: &Path, no_mmap: bool) -> Result<u8, Fatal> {
    let files = expand_files(paths, "vigil index (its offsets point into files)")?;
    let walk = shard::walk(&files, if no_mmap { IoMode::Read } else { IoMode::Mmap })?;
    walk.write_index(output, if no_mmap { IoMode::Read } else { IoMode::Mmap })?;
    eprintln!(
        "vigil: indexed {} blocks ({} transactions) in {} files into {}",
        walk.blocks(),
        walk.transactions(),
        files.len(),
        output.display()
    );
    Ok(0)
}
