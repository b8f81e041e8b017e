//! Ranges of block positions, and shard specs (`I/N`) that name them.

use super::walk::Walk;
use serde::{Deserialize, Serialize};

/// The most shards a chain is cut into: far beyond any cluster's width, and
/// small enough that nothing sized by N (the stitch's list of missing
/// shards) can exhaust memory. Cutting computes only the two bounds of the
/// shard asked for, so N costs nothing else.
pub const MAX_SHARDS: u32 = 1 << 16;

/// Why a shard spec `I/N` is refused ([`check_shard`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardSpecError {
    /// The shard count is 0 or above [`MAX_SHARDS`].
    #[error("shard count {n} is not in 1..={MAX_SHARDS}")]
    Count {
        /// The shard count asked for.
        n: u32,
    },
    /// The shard index is not below the shard count.
    #[error("shard index {i} is not below the shard count {n} (indices start at 0)")]
    Index {
        /// The shard index asked for.
        i: u32,
        /// The shard count.
        n: u32,
    },
}

/// Checks a shard spec: `0 <= i < n <= MAX_SHARDS`.
pub fn check_shard(i: u32, n: u32) -> Result<(), ShardSpecError> {
    if n == 0 || n > MAX_SHARDS {
        return Err(ShardSpecError::Count { n });
    }
    if i >= n {
        return Err(ShardSpecError::Index { i, n });
    }
    Ok(())
}

/// A range or shard outside the chain ([`ShardError::Range`](super::ShardError::Range)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// A shard spec out of bounds.
    #[error(transparent)]
    Shard(#[from] ShardSpecError),
    /// A range that starts past the chain's last block.
    #[error("the range starts at position {start}, past the chain's {blocks} blocks")]
    PastTheEnd {
        /// The range's first position.
        start: u64,
        /// The chain's block count.
        blocks: u64,
    },
}

/// A range of positions; `end: None` runs to the end of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The first position in the range.
    pub start: u64,
    /// The first position past the range, or `None` for the chain's end.
    pub end: Option<u64>,
}

impl Range {
    /// The range as run on `walk`: an end at or past the block count runs
    /// to the end (so it holds what comes after the last block).
    pub fn normalized(self, walk: &Walk) -> Range {
        Range { start: self.start, end: self.end.filter(|&e| e < walk.blocks()) }
    }

    /// Whether `position` is in the range.
    pub(super) fn holds(&self, position: u64) -> bool {
        position >= self.start && self.end.is_none_or(|e| position < e)
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end {
            Some(e) => write!(f, "{}..{e}", self.start),
            None => write!(f, "{}..", self.start),
        }
    }
}
