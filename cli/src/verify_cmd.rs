//! `vigil verify`: progress, human report or NDJSON, exit code.

use crate::lines::Lines;
use crate::metrics;
use crate::{EXIT_INVALID, Fatal, args};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use notify::Watcher;
use serde::Serialize;
use serde_json::json;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::collections::HashSet;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vigil_engine::checkpoint::{Checkpoint, CheckpointError, Resume, ResumeSource};
use vigil_engine::follow::Follower;
use vigil_engine::input::ChainInput;
use vigil_engine::shard::{self, Range};
use vigil_engine::sig::SignerStats;
use vigil_engine::{
    BlockRef, BlockReport, Discontinuity, Failure, Flow, IoMode, MalformedReport, ReportSink, RuleSet, Summary,
    Verifier, VerifyOptions, expand_files, expand_inputs,
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
    /// Write the chain state after the last verified block to FILE (atomically):
    /// at the end, every --checkpoint-every seconds, and on SIGINT/SIGTERM.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["range", "shard"])]
    state: Option<PathBuf>,
    /// Verify only what comes after the checkpoint in FILE (appended blocks, new
    /// segment files), then update FILE (or write --state).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["range", "shard"])]
    resume: Option<PathBuf>,
    /// With --state or --resume: also write the state every SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = args::interval)]
    checkpoint_every: Option<f64>,
    /// Progress on stderr: a bar on a terminal, else a line every --progress-every
    /// seconds (auto); text lines, NDJSON events (json), or none.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Seconds between progress lines off a terminal (and json events).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = args::interval)]
    progress_every: f64,
    /// Print the verdict alone (the summary's first line): no block lines, no
    /// progress, no notes.
    #[arg(long, short)]
    quiet: bool,
    /// Follow a chain directory: verify what is there, then each block as it is
    /// appended (to the last file or in new *.vblk files), every block reported,
    /// until SIGINT/SIGTERM.
    #[arg(long, conflicts_with_all = ["range", "shard", "quiet"])]
    follow: bool,
    /// With --follow: seconds a block cut short at the end of the last file is
    /// waited for after the file stops changing, before it is reported malformed
    /// (a new segment file ends the wait at once).
    #[arg(long, value_name = "SECS", default_value = "5", requires = "follow", value_parser = args::settle)]
    settle: f64,
    /// With --follow: serve Prometheus metrics on http://ADDR/metrics (loopback
    /// only unless --allow-remote).
    #[arg(long, value_name = "HOST:PORT", requires = "follow")]
    metrics: Option<std::net::SocketAddr>,
    /// Serve --metrics on a non-loopback address.
    #[arg(long, requires = "metrics")]
    allow_remote: bool,
}

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal; text lines otherwise.
    Auto,
    /// A text line every --progress-every seconds.
    Text,
    /// An NDJSON event every --progress-every seconds.
    Json,
    /// Nothing.
    None,
}

pub fn run(a: VerifyArgs) -> Result<u8, Fatal> {
    if a.range.is_some() || a.shard.is_some() {
        return run_range(a);
    }
    if a.summary.is_some() || a.index.is_some() || a.force {
        return Err(Fatal("--summary, --index and --force need --range or --shard".into()));
    }
    if a.follow {
        return run_follow(a);
    }
    if a.state.is_some() || a.resume.is_some() {
        return run_checkpointed(a);
    }
    if a.checkpoint_every.is_some() {
        return Err(Fatal("--checkpoint-every needs --state or --resume".into()));
    }
    let inputs = expand_inputs(&a.paths)?;
    let stdin_twice = a.authorities.as_ref().is_some_and(|p| p.as_os_str() == "-")
        && inputs.iter().any(|i| i.path().as_os_str() == "-");
    if stdin_twice {
        return Err(Fatal("--authorities - and a chain on - cannot both read standard input".into()));
    }
    let total_bytes: u64 = inputs.iter().filter_map(ChainInput::size).sum();
    let opts = options(&a)?;

    let mut sink = Printer::for_run(&a, total_bytes);
    let mut verifier = Verifier::new(opts);
    let summary = verifier.verify_inputs(&inputs, &mut sink)?;
    sink.gpu = gpu_stats(&verifier);
    sink.bar.finish_and_clear();
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

/// `--state` / `--resume`: a whole chain of files, from its start or from a
/// checkpoint, with the state written at the end, every
/// `--checkpoint-every` seconds and when a signal stops the run.
fn run_checkpointed(a: VerifyArgs) -> Result<u8, Fatal> {
    let files = expand_files(&a.paths, "--state/--resume (a checkpoint points into files)")?;
    let state_path = a.state.clone().or_else(|| a.resume.clone()).expect("--state or --resume");
    let opts = options(&a)?;
    let (mut verifier, sources, total_bytes, before) = match &a.resume {
        None => {
            let total = files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
            let sources = files.iter().map(|f| ResumeSource::File(f.clone())).collect();
            (Verifier::new(opts), sources, total, None)
        }
        Some(path) => {
            let cp = Checkpoint::read(path)?;
            let plan =
                Resume::plan(&cp, &files, opts.rules, opts.authorities.as_ref(), opts.chain_id.as_ref(), opts.io)
                    .map_err(|e| Fatal(format!("--resume {}: {e}", path.display())))?;
            if plan.new_bytes == 0 {
                return up_to_date(&a, &cp, path);
            }
            (Verifier::resume(opts, &cp, &files), plan.sources, plan.new_bytes, Some(cp))
        }
    };
    if let (Some(cp), false) = (&before, a.quiet) {
        let (file, offset) = cp.position();
        tracing::info!(
            "resuming after {} blocks ({}), at {} @ {offset}: {total_bytes} new bytes",
            cp.blocks,
            tip_text(cp),
            file.display()
        );
    }
    let stop = stop_on_signals()?;
    let mut sink = Printer::for_run(&a, total_bytes);
    sink.saver = Some(Saver {
        path: state_path.clone(),
        every: a.checkpoint_every.map(Duration::from_secs_f64),
        last: Instant::now(),
        stop: stop.clone(),
    });
    let sources: Vec<_> = sources.iter().map(ResumeSource::source).collect();
    let result = verifier.run_sources(&sources, &mut sink);
    sink.gpu = gpu_stats(&verifier);
    sink.bar.finish_and_clear();
    // The state of what was verified, even when an I/O error stopped the
    // run (a later --resume starts where it failed).
    let written = verifier.checkpoint().and_then(|cp| cp.write(&state_path).map(|()| cp));
    let summary = result?;
    let cp = written.map_err(|e| Fatal(format!("--state {}: {e}", state_path.display())))?;
    let (file, offset) = cp.position();
    if verifier.stopped() {
        let signal = stop.load(Ordering::Relaxed) as i32;
        let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
        tracing::info!(
            "{name}: stopped after {} blocks ({}), at {} @ {offset}; state written to {} (--resume it)",
            cp.blocks,
            tip_text(&cp),
            file.display(),
            state_path.display()
        );
        sink.finish(&summary)?;
        return Ok(128 + signal as u8);
    }
    if !a.quiet {
        tracing::info!(
            "state after {} blocks ({}), at {} @ {offset}, written to {}",
            cp.blocks,
            tip_text(&cp),
            file.display(),
            state_path.display()
        );
    }
    sink.finish(&summary)
}

/// SIGINT and SIGTERM set the flag returned (to the signal's number), for
/// the run to stop at its next batch; a second one ends the process at once
/// (exit 1), as without this.
fn stop_on_signals() -> Result<Arc<AtomicUsize>, Fatal> {
    let stop = Arc::new(AtomicUsize::new(0));
    let pressed = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, pressed.clone())?;
        signal_hook::flag::register(signal, pressed.clone())?;
        signal_hook::flag::register_usize(signal, stop.clone(), signal as usize)?;
    }
    Ok(stop)
}

/// How often `--follow` looks at its directory when no file event came
/// (inotify wakes it sooner; without inotify this is the polling period).
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// `--follow DIR`: the blocks there, then each block as it lands, until a
/// signal; the state written as with `--state` (at the end, every
/// `--checkpoint-every` seconds).
fn run_follow(a: VerifyArgs) -> Result<u8, Fatal> {
    let [dir] = a.paths.as_slice() else {
        return Err(Fatal("--follow takes one directory (its *.vblk files are the chain)".into()));
    };
    if !std::fs::metadata(dir).map_err(|e| Fatal(format!("{}: {e}", dir.display())))?.is_dir() {
        return Err(Fatal(format!("{}: --follow takes a directory (its *.vblk files are the chain)", dir.display())));
    }
    let opts = options(&a)?;
    let state_path = a.state.clone().or_else(|| a.resume.clone());
    if a.checkpoint_every.is_some() && state_path.is_none() {
        return Err(Fatal("--checkpoint-every needs --state or --resume".into()));
    }
    let verifier = match &a.resume {
        None => Verifier::new(opts),
        Some(path) => {
            let cp = Checkpoint::read(path)?;
            let files = expand_files(std::slice::from_ref(dir), "--follow")?;
            Resume::plan(&cp, &files, opts.rules, opts.authorities.as_ref(), opts.chain_id.as_ref(), opts.io)
                .map_err(|e| Fatal(format!("--resume {}: {e}", path.display())))?;
            tracing::info!("resuming after {} blocks ({})", cp.blocks, tip_text(&cp));
            Verifier::resume(opts, &cp, &files)
        }
    };
    let stop = stop_on_signals()?;
    let mut sink = Printer::for_run(&a, 0);
    sink.all = true;
    if let Some(path) = &state_path {
        sink.saver = Some(Saver {
            path: path.clone(),
            every: a.checkpoint_every.map(Duration::from_secs_f64),
            last: Instant::now(),
            stop: stop.clone(),
        });
    }
    // File events wake the loop at once; without them it polls.
    let (wake, woken) = std::sync::mpsc::channel();
    let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = wake.send(());
    })
    .and_then(|mut w| w.watch(dir, notify::RecursiveMode::NonRecursive).map(|()| w));
    if let Err(e) = &watcher {
        tracing::warn!("{}: no file events ({e}); polling every {} ms", dir.display(), FOLLOW_POLL.as_millis());
    }
    let mut follower = Follower::new(dir.clone(), verifier, Duration::from_secs_f64(a.settle));
    let exported = Arc::new(std::sync::Mutex::new(metrics::FollowState::default()));
    let _metrics = a
        .metrics
        .map(|addr| metrics::serve(addr, a.allow_remote, metrics::follow_export(Arc::clone(&exported))))
        .transpose()?;
    let mut failed = None;
    while stop.load(Ordering::Relaxed) == 0 {
        let step = follower.step(&mut sink);
        {
            let verifier = follower.verifier();
            let mut e = exported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            e.summary = verifier.summary();
            e.signer = verifier.signer_stats();
            e.waiting = step.as_ref().is_ok_and(|s| s.waiting);
        }
        if let Err(e) = step {
            failed = Some(e);
            break;
        }
        if let Some(saver) = &sink.saver
            && saver.due()
        {
            let state = follower.verifier().checkpoint();
            sink.checkpoint(state);
        }
        // Wait for an event or the poll period, then take every event that came.
        let _ = woken.recv_timeout(FOLLOW_POLL);
        while woken.try_recv().is_ok() {}
    }
    drop(watcher);
    let summary = follower.verifier().summary();
    sink.gpu = gpu_stats(follower.verifier());
    if let Some(path) = &state_path {
        let state = follower.verifier().checkpoint();
        match state.and_then(|cp| cp.write(path).map(|()| cp)) {
            Ok(cp) => {
                let (file, offset) = cp.position();
                tracing::info!(
                    "state after {} blocks ({}), at {} @ {offset}, written to {}",
                    cp.blocks,
                    tip_text(&cp),
                    file.display(),
                    path.display()
                );
            }
            // Nothing read yet: no state to write.
            Err(CheckpointError::Files(why)) => tracing::info!("no state written: {why}"),
            Err(e) => return Err(Fatal(format!("--state {}: {e}", path.display()))),
        }
    }
    if let Some(e) = failed {
        return Err(Fatal(e.to_string()));
    }
    let signal = stop.load(Ordering::Relaxed) as i32;
    let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
    tracing::info!("{name}: stopped following {}", dir.display());
    sink.finish(&summary)
}

fn tip_text(cp: &Checkpoint) -> String {
    cp.tip.as_ref().map_or_else(|| "no block yet".into(), |t| format!("tip height {}, hash {}", t.height, t.hash))
}

/// `--resume` with nothing new to verify: exit 0.
fn up_to_date(a: &VerifyArgs, cp: &Checkpoint, path: &Path) -> Result<u8, Fatal> {
    let (file, offset) = cp.position();
    let line = if a.json {
        json!({
            "type": "up_to_date", "blocks": cp.blocks, "transactions": cp.transactions,
            "chain_id": cp.chain_id, "tip": cp.tip.as_ref().map(|t| json!({"height": t.height, "hash": t.hash})),
            "file": file_name(file), "offset": offset,
        })
        .to_string()
    } else {
        format!(
            "up to date: {} blocks verified, {}; nothing after {} @ {offset} (checkpoint {})",
            cp.blocks,
            tip_text(cp),
            file.display(),
            path.display()
        )
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| Fatal(format!("writing the report: {e}")))?;
    Ok(0)
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
            let mut printer = Printer::new(a.json, a.all, ProgressBar::hidden());
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
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:24}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta_precise}  {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Progress lines off a terminal (`--progress text|json`, or `auto` off a
/// terminal): one every `every`.
struct ProgressLines {
    json: bool,
    every: Duration,
    last: Instant,
    /// Bytes the run will read, when known (files only).
    total_bytes: Option<u64>,
}

impl ProgressLines {
    fn line(&self, t: &Summary) -> String {
        let secs = t.seconds.max(1e-9);
        let rate = t.transactions as f64 / secs;
        let percent = self.total_bytes.filter(|&n| n > 0).map(|n| (t.bytes as f64 / n as f64 * 100.0).min(100.0));
        // What is left at the rate so far.
        let eta =
            self.total_bytes.filter(|_| t.bytes > 0).map(|n| n.saturating_sub(t.bytes) as f64 * secs / t.bytes as f64);
        if self.json {
            return json!({
                "type": "progress", "blocks": t.blocks, "transactions": t.transactions, "tx_per_s": rate.round(),
                "bytes": t.bytes, "total_bytes": self.total_bytes, "percent": percent.map(|p| (p * 10.0).round() / 10.0),
                "eta_seconds": eta.map(f64::round), "seconds": (secs * 10.0).round() / 10.0,
            })
            .to_string();
        }
        let mut line = format!(
            "vigil: progress: {} blocks, {} transactions ({rate:.0} tx/s), {} bytes",
            t.blocks, t.transactions, t.bytes
        );
        if let (Some(total), Some(p)) = (self.total_bytes, percent) {
            line += &format!(" of {total} ({p:.1}%)");
        }
        if let Some(eta) = eta {
            line += &format!(", ETA {}", clock(eta));
        }
        line + &format!(", {} elapsed", clock(secs))
    }
}

/// `h:mm:ss`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Where and when checkpoints are written, and the signal that stops a
/// run (`--state`, `--resume`).
struct Saver {
    path: PathBuf,
    every: Option<Duration>,
    last: Instant,
    /// The signal received (0: none).
    stop: Arc<AtomicUsize>,
}

impl Saver {
    /// Whether `--checkpoint-every` says a checkpoint is due.
    fn due(&self) -> bool {
        self.every.is_some_and(|every| self.last.elapsed() >= every)
    }
}

struct Printer {
    json: bool,
    all: bool,
    quiet: bool,
    bar: ProgressBar,
    lines: Option<ProgressLines>,
    saver: Option<Saver>,
    out: BufWriter<std::io::Stdout>,
    error: Option<std::io::Error>,
    /// `vigil stitch`: the summary's seconds are its shards' summed.
    shards: Option<ShardTime>,
    /// Where the signatures went, when a GPU took part.
    gpu: Option<SignerStats>,
}

/// The verifier's signer counters, when a GPU takes part (for the summary).
fn gpu_stats(verifier: &Verifier) -> Option<SignerStats> {
    let signer = verifier.signer().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    signer.config().has_gpu().then(|| signer.stats())
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
        Printer {
            json,
            all,
            quiet: false,
            bar,
            lines: None,
            saver: None,
            out: BufWriter::new(std::io::stdout()),
            error: None,
            shards: None,
            gpu: None,
        }
    }

    /// The printer of a whole-chain run, its progress as `--progress`,
    /// `--progress-every` and `--quiet` say (`total_bytes`: 0 when unknown).
    fn for_run(a: &VerifyArgs, total_bytes: u64) -> Printer {
        let terminal = std::io::stderr().is_terminal();
        let lines = |json| ProgressLines {
            json,
            every: Duration::from_secs_f64(a.progress_every),
            last: Instant::now(),
            total_bytes: (total_bytes > 0).then_some(total_bytes),
        };
        let (bar, lines) = match a.progress {
            _ if a.quiet => (ProgressBar::hidden(), None),
            ProgressMode::None => (ProgressBar::hidden(), None),
            ProgressMode::Auto if terminal => (progress_bar(total_bytes), None),
            ProgressMode::Auto | ProgressMode::Text => (ProgressBar::hidden(), Some(lines(false))),
            ProgressMode::Json => (ProgressBar::hidden(), Some(lines(true))),
        };
        let mut printer = Printer::new(a.json, a.all, bar);
        printer.quiet = a.quiet;
        printer.lines = lines;
        printer
    }

    /// Prints the summary; the exit code.
    fn finish(&mut self, summary: &Summary) -> Result<u8, Fatal> {
        self.summary(summary);
        if let Some(e) = &self.error {
            return Err(Fatal(format!("writing the report: {e}")));
        }
        Ok(if summary.valid() { 0 } else { EXIT_INVALID })
    }

    fn malformed_line(&mut self, file: &Path, offset: u64, detail: &str) {
        if self.quiet {
            return;
        }
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
            if let Some(g) = self.gpu {
                line["gpu"] = json!({
                    "calls": g.gpu_calls, "signatures": g.gpu_signatures, "cpu_signatures": g.cpu_signatures,
                    "failures": g.gpu_failures, "fallback_signatures": g.fallback_signatures, "lost": g.gpu_lost,
                });
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
            if let (Some(first), Some(last), false) = (s.first, s.last, self.quiet) {
                let chain = s.chain_id.map_or_else(|| "?".into(), hex::encode);
                self.emit(&format!(
                    "chain {chain}: from height {} (hash {}) to height {} (hash {})",
                    first.height,
                    hex::encode(first.hash),
                    last.height,
                    hex::encode(last.hash)
                ));
            }
            if let (Some(g), false) = (self.gpu, self.quiet) {
                self.emit(&gpu_line(&g));
            }
        }
    }
}

/// The summary's line on the GPU's share, and its failures if any.
fn gpu_line(g: &SignerStats) -> String {
    let mut line =
        format!("gpu: {} signatures in {} calls, {} on the CPU", g.gpu_signatures, g.gpu_calls, g.cpu_signatures);
    if g.gpu_failures > 0 || g.gpu_lost {
        line += &format!(
            "; {} calls failed{}, and {} signatures meant for the GPU were verified on the CPU instead",
            g.gpu_failures,
            if g.gpu_lost { " (the device was lost)" } else { "" },
            g.fallback_signatures
        );
    }
    line
}

fn file_name(path: &Path) -> String {
    path.display().to_string()
}

impl ReportSink for Printer {
    fn block(&mut self, r: &BlockReport) {
        if (r.valid() && !self.all) || self.quiet {
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
        if self.quiet {
            return;
        }
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
        if let Some(lines) = &mut self.lines
            && lines.last.elapsed() >= lines.every
        {
            lines.last = Instant::now();
            eprintln!("{}", lines.line(t));
        }
        self.bar.set_position(t.bytes);
        let secs = t.seconds.max(1e-9);
        self.bar.set_message(format!(
            "{} blocks, {} tx, {:.0} tx/s",
            t.blocks,
            t.transactions,
            t.transactions as f64 / secs
        ));
    }

    fn after_batch(&mut self) -> Flow {
        let Some(saver) = &self.saver else { return Flow::Continue };
        if saver.stop.load(Ordering::Relaxed) != 0 {
            Flow::Stop
        } else if saver.due() {
            Flow::Checkpoint
        } else {
            Flow::Continue
        }
    }

    fn checkpoint(&mut self, state: Result<Checkpoint, CheckpointError>) {
        let Some(saver) = &mut self.saver else { return };
        saver.last = Instant::now();
        // A checkpoint that cannot be written does not stop the run; the
        // one at the end must be.
        match state.and_then(|cp| cp.write(&saver.path).map(|()| cp)) {
            Ok(cp) => tracing::debug!("checkpoint after {} blocks written to {}", cp.blocks, saver.path.display()),
            Err(e) => tracing::warn!("checkpoint not written: {e}"),
        }
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
