//! Embedding vigil's validation coprocessor, [`Validator`], in a Rust
//! program: start one, submit the blocks of a chain in order, print each
//! block's verdict and the chain's.
//!
//! ```sh
//! cargo run -p vigil-example-embed               # a small generated chain
//! cargo run -p vigil-example-embed -- CHAIN      # a directory of .vblk files, or one file
//! ```
//!
//! Exit status: 0 when every block is valid, 1 when one is not, 2 on an
//! error (a file that cannot be read, say).

use std::collections::VecDeque;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use vigil_datasets::GenConfig;
use vigil_engine::format::blocks;
use vigil_engine::{BlockVerdict, Pending, Request, RuleSet, Validator, ValidatorConfig, Verdict};

/// Blocks submitted but not yet answered: enough for the validator to batch
/// the signatures of several blocks together, few enough to bound memory.
const IN_FLIGHT: usize = 64;

fn main() -> ExitCode {
    match run(std::env::args_os().nth(1).map(PathBuf::from)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vigil-example-embed: {e}");
            ExitCode::from(2)
        }
    }
}

/// Checks the chain at `path` (or a generated one); `Ok(true)`: all valid.
fn run(path: Option<PathBuf>) -> Result<bool, Box<dyn Error>> {
    // The chain's segment files, in order. Without a path, generate a small
    // chain (8 blocks) into a temporary directory that lives until we return.
    let demo;
    let files = match path {
        Some(path) => segment_files(&path)?,
        None => {
            demo = tempfile::tempdir()?;
            let config = GenConfig { seed: 1, blocks: 8, txs_per_block: 1..=16, ..GenConfig::default() };
            vigil_datasets::generate(demo.path(), &config, &|_| {})?.files
        }
    };

    // 1. Configure and start the validator. It runs one worker thread, which
    //    verifies the signatures of everything queued as one batch. Set what
    //    you need and take the defaults for the rest.
    //    (`ValidatorConfig` may gain fields: start from its default.)
    let mut config = ValidatorConfig::default();
    // Signature rules for blocks: ZIP215 (the default) or RFC 8032 strict.
    config.rules = RuleSet::Zip215;
    // How long a lone request waits for others to share its batch.
    config.max_delay = Duration::from_millis(2);
    let validator = Validator::new(config);

    // 2. Submit every block in chain order: the validator keeps each chain's
    //    state (tip, heights, nonces) from one block to the next. `submit`
    //    queues the block and returns at once (waiting only while the queue
    //    is full); the answer comes through the `Pending` it returns.
    let mut in_flight: VecDeque<(String, Pending)> = VecDeque::new();
    let (mut checked, mut failed) = (0u64, 0u64);
    let mut take = |name: String, pending: Pending| {
        checked += 1;
        if !report(&name, pending) {
            failed += 1;
        }
    };
    for file in &files {
        let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let file_name = file.file_name().unwrap_or(file.as_os_str()).to_string_lossy();
        // A segment file is blocks back to back. Where one cannot be framed,
        // submit the rest of the file: the validator says what is wrong.
        for (offset, block) in blocks(&data) {
            let end = block.map_or(data.len(), |b| offset as usize + b.len());
            let bytes = data[offset as usize..end].to_vec();
            in_flight.push_back((format!("{file_name}@{offset}"), validator.submit(Request::Block(bytes))?));
            // 3. Take the verdicts in order, the oldest first.
            if in_flight.len() >= IN_FLIGHT {
                let (name, pending) = in_flight.pop_front().expect("not empty");
                take(name, pending);
            }
        }
    }
    for (name, pending) in in_flight {
        take(name, pending);
    }

    // 4. Shut down: answers anything still queued and joins the worker
    //    (dropping the validator does the same).
    validator.shutdown();
    if failed == 0 {
        println!("chain: VALID, {checked} blocks");
    } else {
        println!("chain: INVALID, {failed} of {checked} blocks");
    }
    Ok(failed == 0)
}

/// Waits for a block's verdict and prints it; `true` when the block is valid.
fn report(name: &str, pending: Pending) -> bool {
    // A block request is always answered with a block verdict.
    let Verdict::Block(verdict) = pending.wait() else { unreachable!("a block request gets a block verdict") };
    match &verdict {
        BlockVerdict::Checked(report) if report.valid() => {
            println!("{name}: VALID height {} ({} transactions)", report.height, report.tx_count)
        }
        BlockVerdict::Checked(report) => {
            println!("{name}: INVALID height {}", report.height);
            // Every rule the block breaks, with the transaction where it is one.
            for failure in &report.failures {
                match failure.tx {
                    Some(tx) => println!("  {} (tx {tx}): {}", failure.rule, failure.detail),
                    None => println!("  {}: {}", failure.rule, failure.detail),
                }
            }
        }
        BlockVerdict::Malformed { reason, .. } => println!("{name}: MALFORMED {reason}"),
        // Not reached here: each submission is exactly one block, and the
        // default `max_chains` (1024) is far more than one chain needs.
        BlockVerdict::ExtraBytes { block_len, total } => {
            println!("{name}: REFUSED a {block_len}-byte block in a {total}-byte submission")
        }
        BlockVerdict::TooManyChains { .. } => println!("{name}: REFUSED one chain more than max_chains"),
    }
    verdict.valid()
}

/// `path` itself when it is a file, else its `*.vblk` files in name order.
fn segment_files(path: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
        let file = entry?.path();
        if file.extension().is_some_and(|e| e == "vblk") {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no .vblk files", path.display()).into());
    }
    Ok(files)
}
