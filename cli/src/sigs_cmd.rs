//! `vigil sigs`: checks raw ed25519 signatures from any chain, one JSON
//! object a line: `{"pubkey":hex,"msg":hex,"sig":hex}`.

use crate::lines::Lines;
use crate::{EXIT_INVALID, Fatal, args, init_threads};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use vigil_engine::sig::{RuleSet, SigItem, SigLine, Signer, parse_sig_line};

/// Signatures read, verified and printed at a time (memory stays bounded).
const CHUNK: usize = 16 * 1024;
/// Longest input line: a message of up to 1 MiB (2 MiB of hex) with its
/// key, signature and JSON around it. A longer line is an error naming it,
/// so a stream without newlines (`/dev/zero`) cannot grow memory.
const MAX_LINE: usize = (2 << 20) + 4096;

#[derive(Args)]
pub struct SigsArgs {
    /// File of JSON lines, or a stream: - (standard input), a pipe, a FIFO.
    input: PathBuf,
    /// Rule set: zip215 (ZIP-215, cofactored) or strict (ed25519-dalek verify_strict).
    #[arg(long, default_value = "zip215")]
    rules: RuleSet,
    /// One {"index":i,"valid":bool} line per signature, in input order, then a summary line.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = args::threads)]
    threads: Option<usize>,
    /// Fix the zip215 batch size instead of learning it.
    #[arg(long, value_parser = args::batch_size)]
    batch_size: Option<usize>,
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: args::Backend,
}

pub fn run(a: SigsArgs) -> Result<u8, Fatal> {
    init_threads(a.threads)?;
    let backend = args::open_backend(a.backend)?.with_batch_size(a.batch_size);
    // `--backend gpu` fails loudly rather than falling back: the signer
    // redoes a failed GPU call on the CPU and counts it, and the first
    // failure ends the run with its error.
    let gpu_or_nothing = backend.gpu_only();
    let mut signer = Signer::new(backend);
    let mut lines = Lines::open(&a.input, "signatures", MAX_LINE)?;
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let (mut total, mut invalid) = (0u64, Vec::new());
    let mut chunk: Vec<SigLine> = Vec::with_capacity(CHUNK);
    let mut verdicts = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        while let Some(line) = lines.next_line()? {
            if line.trim().is_empty() {
                continue;
            }
            chunk.push(parse_sig_line(line).map_err(|e| lines.error(e))?);
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        let items: Vec<SigItem<'_>> = chunk
            .iter()
            .map(|p| SigItem { public_key: &p.public_key, message: &p.message, signature: &p.signature })
            .collect();
        verdicts.clear();
        verdicts.extend(signer.verify(a.rules, &items));
        if gpu_or_nothing && let Some(failure) = signer.last_gpu_failure() {
            return Err(Fatal(failure.to_string()));
        }
        for &valid in &verdicts {
            if a.json {
                writeln!(out, "{}", json!({"index": total, "valid": valid}))?;
            }
            if !valid {
                invalid.push(total);
            }
            total += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        let line = json!({
            "type": "summary", "verdict": if invalid.is_empty() { "valid" } else { "invalid" },
            "rules": a.rules.name(), "signatures": total, "valid": total - invalid.len() as u64,
            "invalid": invalid.len(), "seconds": seconds,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "{}: {total} signatures under {}, {} valid, {} invalid, {seconds:.2} s ({:.0} signatures/s)",
            if invalid.is_empty() { "VALID" } else { "INVALID" },
            a.rules,
            total - invalid.len() as u64,
            invalid.len(),
            total as f64 / seconds.max(1e-9)
        )?;
        if !invalid.is_empty() {
            let list: Vec<String> = invalid.iter().map(u64::to_string).collect();
            writeln!(out, "invalid indices: {}", list.join(", "))?;
        }
    }
    Ok(if invalid.is_empty() { 0 } else { EXIT_INVALID })
}
