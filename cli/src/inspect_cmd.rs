//! `vigil inspect`: block headers (and transactions) as a table or NDJSON.

use crate::{EXIT_INVALID, Fatal};
use clap::Args;
use serde::Serialize;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use vigil_engine::frame::{Batch, Limits, Source, frame_all};
use vigil_engine::hash;
use vigil_engine::input::{self, PathKind};
use vigil_engine::{BlockView, IoMode};

#[derive(Args)]
pub struct InspectArgs {
    /// A segment file, or a stream (`-` for standard input, a pipe, a FIFO).
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
    let source = match input::path_kind(&a.file)? {
        PathKind::File => Source::File(&a.file),
        PathKind::Stream => Source::Stream(&a.file),
        PathKind::Directory => {
            return Err(Fatal(format!("{}: a directory; inspect takes one segment file", a.file.display())));
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut shown = 0u64;
    let mut code = 0;
    let mut failed: Option<Fatal> = None;
    if !a.json {
        writeln!(
            out,
            "{:>12} {:>10} {:>15} {:>8} {:>10}  {:<64}  {:<64}",
            "offset", "height", "timestamp_ms", "txs", "body_len", "block_hash", "prev_hash"
        )?;
    }
    // Framed as `vigil verify` frames (bounded batches, a stream read block
    // by block), printed block by block: memory stays bounded by the
    // largest block, whatever the file or stream.
    let limits = Limits { txs: 32 << 10, bytes: 32 << 20 };
    frame_all(&[source], io, limits, None, |batch| {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                failed = Some(e.into());
                return false;
            }
        };
        let printed = print_batch(&a, &batch, &mut out, &mut shown);
        batch.release();
        match printed {
            Ok(()) => {}
            Err(e) => {
                failed = Some(e.into());
                return false;
            }
        }
        if let Some((offset, reason)) = &batch.malformed {
            code = EXIT_INVALID;
            let written = if a.json {
                let line = json!({"type": "malformed", "offset": offset, "detail": reason.to_string()});
                writeln!(out, "{line}")
            } else {
                writeln!(out, "{:>12} MALFORMED: {reason}; the rest of the file is not read", offset)
            };
            if let Err(e) = written {
                failed = Some(e.into());
                return false;
            }
        }
        true
    });
    out.flush()?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(h) = a.height
        && shown == 0
    {
        eprintln!("vigil: no well-formed block at height {h} in {}", a.file.display());
        code = EXIT_INVALID;
    }
    Ok(code)
}

fn print_batch(a: &InspectArgs, batch: &Batch<'_>, out: &mut impl Write, shown: &mut u64) -> std::io::Result<()> {
    for (block, framed) in batch.views().iter().zip(&batch.blocks) {
        if a.height.is_some_and(|h| h != block.header.height()) {
            continue;
        }
        *shown += 1;
        if a.json {
            serde_json::to_writer(&mut *out, &BlockJson::new(framed.offset, block, a.verbose))?;
            writeln!(out)?;
        } else {
            write_block_rows(out, framed.offset, block, a.verbose)?;
        }
    }
    Ok(())
}

/// A block as one JSON line, written straight to the output (with `-v` its
/// transactions are serialised one by one: a block may hold a million).
/// Fields in the order `json!` gives (sorted), so lines are as before.
#[derive(Serialize)]
struct BlockJson<'a> {
    body_len: u32,
    chain_id: String,
    flags: u16,
    hash: String,
    height: u64,
    offset: u64,
    prev_hash: String,
    proposer: String,
    proposer_sig: String,
    timestamp_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    transactions: Option<Transactions<'a>>,
    tx_count: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    version: u16,
}

impl<'a> BlockJson<'a> {
    fn new(offset: u64, block: &'a BlockView<'a>, verbose: bool) -> Self {
        let h = block.header;
        BlockJson {
            body_len: h.body_len(),
            chain_id: hex::encode(h.chain_id),
            flags: h.flags(),
            hash: hex::encode(hash::block_hash(h)),
            height: h.height(),
            offset,
            prev_hash: hex::encode(h.prev_hash),
            proposer: hex::encode(h.proposer),
            proposer_sig: hex::encode(h.proposer_sig),
            timestamp_ms: h.timestamp_ms(),
            transactions: verbose.then_some(Transactions(block)),
            tx_count: h.tx_count(),
            kind: "block",
            version: h.version(),
        }
    }
}

struct Transactions<'a>(&'a BlockView<'a>);

#[derive(Serialize)]
struct TxJson {
    index: usize,
    kind: u16,
    nonce: u64,
    payload_len: u32,
    sender: String,
    signature: String,
    timestamp_ms: u64,
    tx_id: String,
}

impl Serialize for Transactions<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let chain_id = &self.0.header.chain_id;
        s.collect_seq(self.0.txs().enumerate().map(|(index, tx)| {
            let t = tx.header();
            TxJson {
                index,
                kind: t.kind(),
                nonce: t.nonce(),
                payload_len: t.payload_len(),
                sender: hex::encode(t.sender),
                signature: hex::encode(tx.signature()),
                timestamp_ms: t.timestamp_ms(),
                tx_id: hex::encode(hash::tx_id(chain_id, tx.signed_part())),
            }
        }))
    }
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
