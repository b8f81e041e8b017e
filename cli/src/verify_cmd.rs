//! `vigil verify`: progress, human report or NDJSON, exit code.

use crate::{EXIT_INVALID, Fatal, args};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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
}

pub fn run(a: VerifyArgs) -> Result<u8, Fatal> {
    let files = expand_paths(&a.paths)?;
    let authorities = a.authorities.as_deref().map(read_authorities).transpose()?;
    let total_bytes: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let opts = VerifyOptions {
        chain_id: a.chain_id,
        authorities,
        io: if a.no_mmap { IoMode::Read } else { IoMode::Mmap },
        rules: a.rules,
        batch_size: a.batch_size,
        threads: a.threads,
        gpu: args::open_backend(a.backend)?,
        ..Default::default()
    };

    let bar = progress_bar(total_bytes);
    let mut sink = Printer { json: a.json, all: a.all, bar: bar.clone(), out: std::io::stdout().lock(), error: None };
    if a.threads == Some(0) {
        return Err(Fatal("--threads must be at least 1".into()));
    }
    let summary = Verifier::new(opts).verify_files(&files, &mut sink)?;
    bar.finish_and_clear();
    sink.summary(&summary);
    sink.out.flush().ok();
    match sink.error {
        // A reader that stops early (`| head`) is not an error.
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Fatal(format!("writing the report: {e}")));
        }
        _ => {}
    }
    Ok(if summary.valid() { 0 } else { EXIT_INVALID })
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

struct Printer<W: Write> {
    json: bool,
    all: bool,
    bar: ProgressBar,
    out: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Printer<W> {
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

impl<W: Write> ReportSink for Printer<W> {
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
        if self.json {
            let line = json!({
                "type": "malformed", "file": file_name(&m.file), "offset": m.offset, "detail": m.reason.to_string(),
            });
            self.emit(&line.to_string());
        } else {
            self.emit(&format!(
                "MALFORMED block ({} @ {}): {}; the rest of the file is not read",
                file_name(&m.file),
                m.offset,
                m.reason
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
