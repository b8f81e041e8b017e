//! `vigil gen`: a deterministic synthetic chain, with a progress bar.

use crate::{Fatal, args, init_threads};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use vigil_datasets::{Fault, GenConfig, generate};

#[derive(Args)]
pub struct GenArgs {
    /// Directory to write the segment files into (created if missing; must hold no *.vblk yet).
    out_dir: PathBuf,
    /// Seed: the same arguments and seed give the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of blocks (at most 10^9).
    #[arg(long, default_value_t = 100, value_parser = args::count::<1, 1_000_000_000>)]
    blocks: usize,
    /// Transactions per block: a number or an inclusive range A..B.
    #[arg(long, default_value = "0..64", value_parser = args::range_u32)]
    txs_per_block: RangeInclusive<u32>,
    /// Number of devices (senders).
    #[arg(long, default_value_t = 16)]
    senders: u32,
    /// Payload bytes per transaction, inclusive range MIN..MAX (at most 65536).
    #[arg(long, default_value = "16..512", value_parser = args::range_u32)]
    payload: RangeInclusive<u32>,
    /// Start a new segment file before one would pass this size (e.g. 64MiB).
    #[arg(long, default_value = "64MiB", value_parser = args::byte_size)]
    segment_size: u64,
    /// Inject one violation of RULE at chain position HEIGHT (repeatable), e.g. tx_signature@5.
    #[arg(long = "fault", value_name = "RULE@HEIGHT")]
    faults: Vec<Fault>,
    /// Worker threads (default: all cores); the output does not depend on it.
    #[arg(long, value_parser = args::threads)]
    threads: Option<usize>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(a: GenArgs) -> Result<u8, Fatal> {
    let cfg = GenConfig {
        seed: a.seed,
        blocks: a.blocks as u64,
        txs_per_block: a.txs_per_block,
        senders: a.senders,
        payload: a.payload,
        segment_size: a.segment_size,
        faults: a.faults,
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(cfg.blocks), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} blocks {per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress = |done: u64| bar.set_position(done);
    init_threads(a.threads)?;
    let manifest = generate(&a.out_dir, &cfg, &progress)?;
    bar.finish_and_clear();

    let faults: Vec<_> = manifest
        .faults
        .iter()
        .map(|f| {
            json!({"rule": f.rule.name(), "height": f.height, "file": manifest.files[f.file].display().to_string(),
                   "offset": f.offset, "tx": f.tx})
        })
        .collect();
    if a.json {
        let line = json!({
            "dir": a.out_dir.display().to_string(), "files": manifest.files.len(), "blocks": manifest.blocks.len(),
            "transactions": manifest.transactions, "bytes": manifest.bytes,
            "chain_id": hex::encode(manifest.chain_id), "proposer": hex::encode(manifest.proposer), "faults": faults,
        });
        println!("{line}");
    } else {
        println!(
            "wrote {} blocks, {} transactions, {} bytes in {} files to {}",
            manifest.blocks.len(),
            manifest.transactions,
            manifest.bytes,
            manifest.files.len(),
            a.out_dir.display()
        );
        println!("chain_id  {}", hex::encode(manifest.chain_id));
        println!("proposer  {}  (the only authority)", hex::encode(manifest.proposer));
        for f in &faults {
            println!("fault     {f}");
        }
    }
    Ok(0)
}
