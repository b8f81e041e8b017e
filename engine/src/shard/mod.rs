//! Scale-out: one chain verified as ranges of block positions (shards), each
//! in its own process (a Kubernetes Indexed Job's pods, a Slurm array's
//! tasks), and their boundary summaries stitched into exactly the report one
//! run over the whole chain gives.
//!
//! - **Positions.** A block's position is its 0-based index among the
//!   chain's well-formed blocks in chain order. [`walk`] finds every
//!   position's file and offset by framing the chain exactly as the verifier
//!   does (the same frame stage: headers and transaction lengths, no hashing,
//!   no signatures), so a malformed block ends its file in the walk too.
//! - **A range** `[start, end)` verifies its blocks with the chain id the
//!   walk saw first (or the pinned one). When `start > 0` it starts
//!   mid-chain: its first block's links (height, prev_hash, timestamp) and
//!   each sender's first nonce in the range are left open and written to the
//!   summary with everything else the range decided alone.
//! - **Items between blocks** (a malformed block and the rest of its file, an
//!   empty file) belong to the range holding the position of the next
//!   well-formed block; those after the last block belong to the range that
//!   runs to the end of the chain (a range whose end is at or past the
//!   chain's block count does).
//! - **[`stitch`]** checks the summaries fit (same input, ranges contiguous
//!   from 0 to the end, no overlap), replays the open checks in chain order
//!   (links across boundaries, each sender's first nonce against the
//!   previous ranges' last), merges the failures in the verifier's order and
//!   sums the totals.
//! - **Bytes.** A summary carries the BLAKE3 of each byte span its range
//!   covered (per file), and its own checksum; an index carries each file's
//!   BLAKE3. The stitch checks that the summaries' spans tile every file
//!   exactly and, given the chain (`--chain`), re-hashes it and refuses a
//!   summary made from other bytes. A range checks that the blocks it
//!   verified are exactly where its walk (or index) said, so an index cannot
//!   hide or move blocks. docs/SHARDS.md says what this binds and what stays
//!   trusted.

mod files;
mod index;
mod range;
mod run;
mod stitch;
mod summary;
mod walk;

pub(crate) use files::write_atomically;
pub use files::{FileChange, FileStamp, hash_span};
pub use index::{IndexError, IndexProblem};
pub use range::{MAX_SHARDS, Range, RangeError, ShardSpecError, check_shard};
pub use run::{MismatchError, Misplaced, ShardError, run_range};
pub use stitch::{
    ChainMismatch, CountsMismatch, Event, Inconsistency, Missing, StitchError, Stitched, Untiled, stitch,
    stitch_with_chain,
};
pub use summary::{
    BlockEntry, Edge, FailureEntry, Input, MalformedEntry, SUMMARY_FORMAT, SUMMARY_VERSION, SenderEntry, ShardSummary,
    SpanDigest, SummaryError, SummaryProblem, Totals, checksum, parse_summary, read_summary, write_summary,
};
pub use walk::{Walk, walk};
