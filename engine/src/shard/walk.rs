//! The walk: every well-formed block's file and offset, found by framing the
//! chain as the verifier does (no hashing, no signatures).

use super::files::{FileStamp, mtime_ns};
use super::range::{Range, RangeError, check_shard};
use super::run::ShardError;
use crate::frame::{Limits, Source, frame_all};
use crate::hash::Digest;
use crate::input::{InputError, IoMode};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One well-formed block as the walk found it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Walked {
    pub(super) file: u32,
    pub(super) offset: u64,
    pub(super) len: u64,
    pub(super) txs: u32,
}

/// Something between blocks: a malformed block (at `offset`, ending its
/// file) or an empty file (`offset` 0, no block). Anchored at the position
/// of the next well-formed block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Between {
    pub(super) file: u32,
    pub(super) offset: u64,
    pub(super) anchor: u64,
}

/// The chain's layout: every block's place, found without hashing.
#[derive(Debug)]
pub struct Walk {
    pub(super) files: Vec<PathBuf>,
    pub(super) sizes: Vec<u64>,
    pub(super) blocks: Vec<Walked>,
    pub(super) between: Vec<Between>,
    /// Position of each file's first item (block or between), for counting
    /// files.
    pub(super) file_anchor: Vec<u64>,
    /// The first well-formed block's chain id.
    pub chain_id: Option<Digest>,
    /// Each file's BLAKE3, when the walk was read from an index (which
    /// records them): ranges covering a whole file check it.
    pub(super) digests: Option<Vec<Digest>>,
}

impl Walk {
    /// The chain's well-formed blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The transactions in those blocks.
    pub fn transactions(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.txs)).sum()
    }

    /// The walked files as summaries and indexes record them: names, the
    /// sizes the walk saw, modification times.
    pub(super) fn stamps(&self) -> Vec<FileStamp> {
        self.files
            .iter()
            .zip(&self.sizes)
            .map(|(p, &size)| FileStamp { path: p.display().to_string(), size, mtime_ns: mtime_ns(p) })
            .collect()
    }

    /// The position where cut `i` of `n` falls (cut 0 is position 0, cut
    /// `n` the block count): the first position whose blocks before it
    /// weigh at least `i / n` of the chain's signatures (each block's
    /// transactions and its own).
    fn cut(&self, i: u32, n: u32) -> u64 {
        let weight = |b: &Walked| u64::from(b.txs) + 1;
        let total: u128 = self.blocks.iter().map(|b| u128::from(weight(b))).sum();
        let target = total * u128::from(i) / u128::from(n.max(1));
        let mut done = 0u128;
        let mut position = 0u64;
        for b in &self.blocks {
            if done >= target {
                break;
            }
            done += u128::from(weight(b));
            position += 1;
        }
        position
    }

    /// The range of shard `i` of `n`, balanced by signatures; deterministic.
    /// `n` is checked ([`check_shard`]); nothing is allocated by `n`.
    pub fn shard_range(&self, i: u32, n: u32) -> Result<Range, ShardError> {
        check_shard(i, n).map_err(RangeError::Shard)?;
        Ok(Range { start: self.cut(i, n), end: Some(self.cut(i + 1, n)) })
    }

    /// Range boundaries for `n` shards (`n + 1` positions from 0 to the
    /// block count), as [`Walk::shard_range`] cuts them; for `n` checked by
    /// the caller.
    pub fn shard_bounds(&self, n: u32) -> Vec<u64> {
        (0..=n).map(|i| self.cut(i, n)).collect()
    }
}

/// Frames `files` as the verifier does, keeping only where blocks are.
pub fn walk(files: &[PathBuf], io: IoMode) -> Result<Walk, InputError> {
    let mut w = Walk {
        files: files.to_vec(),
        sizes: Vec::with_capacity(files.len()),
        blocks: Vec::new(),
        between: Vec::new(),
        file_anchor: Vec::new(),
        chain_id: None,
        digests: None,
    };
    let mut seen = HashSet::new();
    for f in files {
        if !seen.insert(f) {
            return Err(InputError::Duplicate { path: f.clone(), first: f.clone() });
        }
        w.sizes.push(std::fs::metadata(f).map_err(crate::input::io_error(f))?.len());
    }
    let sources: Vec<Source<'_>> = files.iter().map(|f| Source::File(f)).collect();
    let index: HashMap<&Path, u32> = files.iter().enumerate().map(|(i, f)| (f.as_path(), i as u32)).collect();
    let mut error = None;
    let limits = Limits { txs: 1 << 20, bytes: 64 << 20 };
    frame_all(&sources, io, limits, None, |batch| {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                error = Some(e);
                return false;
            }
        };
        let file = index[&*batch.file];
        if batch.first_of_file {
            w.file_anchor.push(w.blocks.len() as u64);
        }
        if w.chain_id.is_none()
            && let Some(view) = batch.views().first()
        {
            w.chain_id = Some(view.header.chain_id);
        }
        for (b, framed) in batch.blocks.iter().enumerate() {
            let txs = (batch.first_tx[b + 1] - batch.first_tx[b]) as u32;
            w.blocks.push(Walked { file, offset: framed.offset, len: framed.len as u64, txs });
        }
        if let Some((offset, _)) = &batch.malformed {
            w.between.push(Between { file, offset: *offset, anchor: w.blocks.len() as u64 });
        } else if batch.first_of_file && batch.blocks.is_empty() && w.sizes[file as usize] == 0 {
            w.between.push(Between { file, offset: 0, anchor: w.blocks.len() as u64 });
        }
        batch.release();
        true
    });
    match error {
        Some(e) => Err(e),
        None => Ok(w),
    }
}
