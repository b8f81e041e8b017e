//! `vigil verify`: progress, human report or NDJSON, exit code.

use crate::{EXIT_INVALID, Fatal, args};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use vigil_engine::shard::{self, Range};
use vigil_engine::{
    BlockReport, IoMode, MalformedReport, ReportSink, RuleSet, Summary, Verifier, VerifyOptions, expand_paths,
};

#[derive(Args)]
pub struct VerifyArgs {
    /// Segment files, or directories of *.vblk files (read in byte order of name).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
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
    #[arg(long)]
    batch_size: Option<usize>,
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: args::Backend,
    /// Verify only the blocks at chain positions A <= p < B (A.. runs to the end);
    /// checks that need the blocks before are left to `vigil stitch`.
    #[arg(long, value_name = "A..B", value_parser = args::position_range, conflicts_with = "shard")]
    range: Option<(u64, Option<u64>)>,
    /// Verify the I-th of N parts of the chain (I from 0), balanced by signatures;
    /// `auto` takes I and N from a Kubernetes Indexed Job or a Slurm array.
    #[arg(long, value_name = "I/N|auto", value_parser = args::shard_spec)]
    shard: Option<args::ShardSpec>,
    /// With --range or --shard: write the range's boundary summary here (for
    /// `vigil stitch`) and exit 0 once it is written (its failures are in it).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Redo a range whose summary already exists and matches its input.
    #[arg(long)]
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
    if a.summary.is_some() || a.index.is_some() {
        return Err(Fatal("--summary and --index need --range or --shard".into()));
    }
    let files = expand_paths(&a.paths)?;
    let total_bytes: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let opts = options(&a)?;

    let bar = progress_bar(total_bytes);
    let mut sink = Printer::new(a.json, a.all, bar.clone());
    let summary = Verifier::new(opts).verify_files(&files, &mut sink)?;
    bar.finish_and_clear();
    sink.finish(&summary)
}

fn options(a: &VerifyArgs) -> Result<VerifyOptions, Fatal> {
    if a.threads == Some(0) {
        return Err(Fatal("--threads must be at least 1".into()));
    }
    let authorities = a.authorities.as_deref().map(read_authorities).transpose()?;
    let backend = args::open_backend(a.backend)?;
    Ok(VerifyOptions {
        chain_id: a.chain_id,
        authorities,
        io: if a.no_mmap { IoMode::Read } else { IoMode::Mmap },
        rules: a.rules,
        batch_size: a.batch_size,
        threads: a.threads,
        gpu: backend.gpu,
        gpu_mode: backend.mode,
        ..Default::default()
    })
}

/// `--range` / `--shard`: one part of the chain, optionally into a summary.
fn run_range(a: VerifyArgs) -> Result<u8, Fatal> {
    let files = expand_paths(&a.paths)?;
    let shard = match a.shard {
        Some(spec) => Some(spec.resolve()?),
        None => None,
    };
    // Bounded before anything is read: N up to shard::MAX_SHARDS.
    if let Some((i, n)) = shard {
        shard::check_shard(i, n).map_err(|e| Fatal(format!("--shard {i}/{n}: {e}")))?;
    }
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
            eprintln!(
                "vigil: {what} of {} blocks; the first block's links and each sender's first nonce are checked only by `vigil stitch`",
                walk.blocks()
            );
            let printer = Printer::new(a.json, a.all, ProgressBar::hidden());
            let t = &summary.totals;
            let invalid = summary.blocks.iter().filter(|b| !b.failures.is_empty()).count() as u64;
            printer.finish(&Summary {
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
        let files = expand_paths(chain)?;
        shard::stitch_with_chain(paths, Some((&files, IoMode::Mmap)))?
    };
    let mut printer = Printer::new(json, false, ProgressBar::hidden());
    for event in &stitched.events {
        match event {
            shard::Event::Block(r) => printer.block(r),
            shard::Event::Malformed { file, offset, detail } => printer.malformed_line(file, *offset, detail),
        }
    }
    printer.finish(&stitched.summary)
}

pub fn read_authorities(path: &Path) -> Result<HashSet<[u8; 32]>, Fatal> {
    let text = std::fs::read_to_string(path).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
    let mut keys = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = args::hex32(line).map_err(|e| Fatal(format!("{}:{}: {e}", path.display(), i + 1)))?;
        keys.insert(key);
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
    out: std::io::Stdout,
    error: Option<std::io::Error>,
}

impl Printer {
    fn new(json: bool, all: bool, bar: ProgressBar) -> Printer {
        Printer { json, all, bar, out: std::io::stdout(), error: None }
    }

    /// Prints the summary; the exit code.
    fn finish(mut self, summary: &Summary) -> Result<u8, Fatal> {
        self.summary(summary);
        self.out.flush().ok();
        match self.error {
            // A reader that stops early (`| head`) is not an error.
            Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Fatal(format!("writing the report: {e}")));
            }
            _ => {}
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
        if self.error.is_some() {
            return;
        }
        let out = &mut self.out;
        if let Err(e) = self.bar.suspend(|| writeln!(out, "{text}")) {
            self.error = Some(e);
        }
    }

    fn summary(&mut self, s: &Summary) {
        let verdict = if s.valid() { "valid" } else { "invalid" };
        if self.json {
            let line = json!({
                "type": "summary", "verdict": verdict, "files": s.files, "blocks": s.blocks,
                "invalid_blocks": s.invalid_blocks, "malformed": s.malformed, "transactions": s.transactions,
                "signatures": s.signatures, "bytes": s.bytes, "seconds": s.seconds,
            });
            self.emit(&line.to_string());
        } else {
            let secs = s.seconds.max(1e-9);
            let mut problems = format!("{} invalid", s.invalid_blocks);
            if s.malformed > 0 {
                problems += &format!(", {} malformed", s.malformed);
            }
            self.emit(&format!(
                "{}: {} blocks ({problems}), {} transactions, {} signatures, {} bytes in {} files, {:.2} s ({:.0} tx/s, {:.1} MB/s)",
                verdict.to_uppercase(),
                s.blocks,
                s.transactions,
                s.signatures,
                s.bytes,
                s.files,
                s.seconds,
                s.transactions as f64 / secs,
                s.bytes as f64 / secs / 1e6,
            ));
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
            let failures: Vec<Value> = r
                .failures
                .iter()
                .map(|f| match f.tx {
                    Some(tx) => json!({"rule": f.rule.name(), "tx": tx, "detail": f.detail}),
                    None => json!({"rule": f.rule.name(), "detail": f.detail}),
                })
                .collect();
            let line = json!({
                "type": "block", "file": file_name(&r.file), "offset": r.offset, "height": r.height,
                "hash": hex::encode(r.hash), "valid": r.valid(), "failures": failures,
            });
            self.emit(&line.to_string());
        } else {
            let state = if r.valid() { "valid" } else { "INVALID" };
            let mut text = format!(
                "{state} block at height {} ({} @ {}, hash {})",
                r.height,
                file_name(&r.file),
                r.offset,
                hex::encode(r.hash)
            );
            for f in &r.failures {
                match f.tx {
                    Some(tx) => text += &format!("\n  {} (tx {tx}): {}", f.rule, f.detail),
                    None => text += &format!("\n  {}: {}", f.rule, f.detail),
                }
            }
            self.emit(&text);
        }
    }

    fn malformed(&mut self, m: &MalformedReport) {
        self.malformed_line(&m.file, m.offset, &m.reason.to_string());
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
    let files = expand_paths(paths)?;
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
