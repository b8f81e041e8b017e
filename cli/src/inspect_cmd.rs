//! `vigil inspect`: block headers (and transactions) as a table or NDJSON.

use crate::{EXIT_INVALID, Fatal};
use clap::Args;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use vigil_engine::format::blocks;
use vigil_engine::hash;
use vigil_engine::{BlockView, IoMode, Segment};

#[derive(Args)]
pub struct InspectArgs {
    /// A segment file.
    file: PathBuf,
    /// Only the block(s) with this stored height.
    #[arg(long)]
    height: Option<u64>,
    /// List each block's transactions too.
    #[arg(short, long)]
    verbose: bool,
    /// One JSON object a line instead of a table.
    #[arg(long)]
    json: bool,
    /// Read the file instead of mapping it.
    #[arg(long)]
    no_mmap: bool,
}

pub fn run(a: InspectArgs) -> Result<u8, Fatal> {
    let io = if a.no_mmap { IoMode::Read } else { IoMode::Mmap };
    let segment = Segment::open(&a.file, io)?;
    match print(&a, segment.bytes(), &mut std::io::stdout().lock()) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => Ok(other?),
    }
}

fn print(a: &InspectArgs, bytes: &[u8], out: &mut impl Write) -> std::io::Result<u8> {
    let mut shown = 0u64;
    let mut code = 0;
    if !a.json {
        writeln!(
            out,
            "{:>12} {:>10} {:>15} {:>8} {:>10}  {:<64}  {:<64}",
            "offset", "height", "timestamp_ms", "txs", "body_len", "block_hash", "prev_hash"
        )?;
    }
    for (offset, block) in blocks(bytes) {
        let block = match block {
            Ok(b) => b,
            Err(reason) => {
                if a.json {
                    let line = json!({"type": "malformed", "offset": offset, "detail": reason.to_string()});
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, "{:>12} MALFORMED: {reason}; the rest of the file is not read", offset)?;
                }
                code = EXIT_INVALID;
                break;
            }
        };
        if a.height.is_some_and(|h| h != block.header.height()) {
            continue;
        }
        shown += 1;
        if a.json {
            writeln!(out, "{}", block_json(offset, &block, a.verbose))?;
        } else {
            write_block_rows(out, offset, &block, a.verbose)?;
        }
    }
    if let Some(h) = a.height
        && shown == 0
    {
        eprintln!("vigil: no well-formed block at height {h} in {}", a.file.display());
        code = EXIT_INVALID;
    }
    Ok(code)
}

fn block_json(offset: u64, block: &BlockView<'_>, verbose: bool) -> Value {
    let h = block.header;
    let mut v = json!({
        "type": "block", "offset": offset, "height": h.height(), "hash": hex::encode(hash::block_hash(h)),
        "version": h.version(), "flags": h.flags(), "chain_id": hex::encode(h.chain_id),
        "timestamp_ms": h.timestamp_ms(), "prev_hash": hex::encode(h.prev_hash), "tx_root": hex::encode(h.tx_root),
        "tx_count": h.tx_count(), "body_len": h.body_len(), "proposer": hex::encode(h.proposer),
        "proposer_sig": hex::encode(h.proposer_sig),
    });
    if verbose {
        let txs: Vec<Value> = block
            .txs()
            .enumerate()
            .map(|(i, tx)| {
                let t = tx.header();
                json!({
                    "index": i, "tx_id": hex::encode(hash::tx_id(&h.chain_id, tx.signed_part())),
                    "sender": hex::encode(t.sender), "nonce": t.nonce(), "timestamp_ms": t.timestamp_ms(),
                    "kind": t.kind(), "payload_len": t.payload_len(), "signature": hex::encode(tx.signature()),
                })
            })
            .collect();
        v["transactions"] = Value::Array(txs);
    }
    v
}

fn write_block_rows(out: &mut impl Write, offset: u64, block: &BlockView<'_>, verbose: bool) -> std::io::Result<()> {
    let h = block.header;
    writeln!(
        out,
        "{:>12} {:>10} {:>15} {:>8} {:>10}  {}  {}",
        offset,
        h.height(),
        h.timestamp_ms(),
        h.tx_count(),
        h.body_len(),
        hex::encode(hash::block_hash(h)),
        hex::encode(h.prev_hash)
    )?;
    if verbose {
        for (i, tx) in block.txs().enumerate() {
            let t = tx.header();
            writeln!(
                out,
                "{:>12} tx {i:<6} sender {}  nonce {:<8} ts {:<15} kind {:<5} payload {:>5} B  tx_id {}",
                "",
                hex::encode(t.sender),
                t.nonce(),
                t.timestamp_ms(),
                t.kind(),
                t.payload_len(),
                hex::encode(hash::tx_id(&h.chain_id, tx.signed_part()))
            )?;
        }
    }
    Ok(())
}
