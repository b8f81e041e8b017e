//! The index file codec (`vigil index`): a [`Walk`] written once beside the
//! chain, read by each shard instead of walking the chain again.

use super::files::{FileChange, FileStamp, first_change, hash_span, write_atomically};
use super::walk::{Between, Walk, Walked};
use crate::hash::Digest;
use crate::input::{InputError, IoMode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const INDEX_MAGIC: &[u8; 8] = b"VIGILIDX";

/// 2: each file's BLAKE3 in the header; blocks checked to tile each file.
const INDEX_VERSION: u32 = 2;

/// Why an index could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Reading or writing the index file failed.
    #[error("{path}: {source}")]
    Io {
        /// The index file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not an index this vigil reads, or is damaged.
    #[error("{path}: not a vigil index ({problem})")]
    Invalid {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        problem: IndexProblem,
    },
    /// The index was made for other files, or the files changed since.
    #[error("{path} was made for other files or versions of them ({problem}); run `vigil index` again")]
    Stale {
        /// The index file.
        path: PathBuf,
        /// How the files differ.
        problem: FileChange,
    },
    /// Reading the chain to hash its files failed.
    #[error("{path}: reading the chain to hash it: {source}")]
    Hash {
        /// The index file.
        path: PathBuf,
        /// What failed.
        source: InputError,
    },
}

/// What makes bytes not a valid index ([`IndexError::Invalid`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexProblem {
    /// The file does not start with the magic (or is too short).
    #[error("no VIGILIDX magic")]
    Magic,
    /// The trailing BLAKE3 does not match.
    #[error("checksum mismatch: the file is damaged")]
    Checksum,
    /// Another version of the format.
    #[error("version {version}, this vigil reads version {INDEX_VERSION} only: run `vigil index` again")]
    Version {
        /// The version the file has.
        version: u32,
    },
    /// The header's length runs past the end of the file.
    #[error("header runs past the end")]
    HeaderLength,
    /// The header is not the JSON expected.
    #[error("{0}")]
    Header(serde_json::Error),
    /// The records do not fill the file exactly.
    #[error("record counts do not match the file's length")]
    RecordCounts,
    /// A block record outside its file's bytes.
    #[error("a block lies outside its file")]
    BlockOutside,
    /// An in-between record outside the chain.
    #[error("an item lies outside the chain")]
    ItemOutside,
    /// A block record not where framing puts it.
    #[error("block at position {position} is not where framing puts it")]
    BlockPlace {
        /// The block's position.
        position: usize,
    },
    /// An in-between record not at the end of its file's blocks.
    #[error("an in-between item of file {file} is not at the end of its blocks")]
    ItemPlace {
        /// Index of the file.
        file: usize,
    },
    /// An in-between record anchored at the wrong position.
    #[error("an in-between item of file {file} is anchored at the wrong position")]
    ItemAnchor {
        /// Index of the file.
        file: usize,
    },
    /// A file whose records do not reach its end.
    #[error("file {file}'s blocks end at byte {end}, not at its end ({size} bytes)")]
    FileEnd {
        /// Index of the file.
        file: usize,
        /// Where its records end.
        end: u64,
        /// Its size.
        size: u64,
    },
    /// A file's first position that does not match its blocks.
    #[error("a file's first position is not where its blocks are")]
    FileAnchor,
    /// Not one digest per file.
    #[error("not one digest per file")]
    DigestCount,
    /// A file digest that is not 32 hex bytes.
    #[error("a file digest is not 32 hex bytes")]
    DigestHex,
    /// A chain id that is not 32 hex bytes.
    #[error("chain id is not 32 hex bytes")]
    ChainIdHex,
}

/// The header of an index file (JSON between the magic and the records).
#[derive(Debug, Serialize, Deserialize)]
struct IndexHeader {
    files: Vec<FileStamp>,
    chain_id: Option<String>,
    blocks: u64,
    between: u64,
    /// BLAKE3 of each file's bytes (hex), in `files` order.
    digests: Vec<String>,
}

impl Walk {
    /// Writes the walk as a sidecar index (`vigil index`): shards read it
    /// instead of walking the chain before their range. Binary: magic,
    /// version, a JSON header (files with sizes and modification times),
    /// 24 bytes a block, 20 an in-between item, 8 a file, then a BLAKE3 of
    /// all that; written atomically. The header holds each file's BLAKE3,
    /// hashed here in a pass of its own over the chain (on all cores, with
    /// `io`): an index is made once, and its shards check their whole files
    /// against it for free (they hash what they verify anyway).
    pub fn write_index(&self, path: &Path, io_mode: IoMode) -> Result<(), IndexError> {
        let io = |source| IndexError::Io { path: path.into(), source };
        let mut digests = Vec::with_capacity(self.files.len());
        for (f, &size) in self.files.iter().zip(&self.sizes) {
            let digest =
                hash_span(f, 0, size, io_mode).map_err(|source| IndexError::Hash { path: path.into(), source })?;
            digests.push(hex::encode(digest));
        }
        let header = IndexHeader {
            files: self.stamps(),
            chain_id: self.chain_id.map(hex::encode),
            blocks: self.blocks.len() as u64,
            between: self.between.len() as u64,
            digests,
        };
        let json = serde_json::to_vec(&header).map_err(|e| io(std::io::Error::other(e)))?;
        let mut out = Vec::with_capacity(16 + json.len() + self.blocks.len() * 24);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for b in &self.blocks {
            out.extend_from_slice(&b.file.to_le_bytes());
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.len.to_le_bytes());
            out.extend_from_slice(&b.txs.to_le_bytes());
        }
        for b in &self.between {
            out.extend_from_slice(&b.file.to_le_bytes());
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.anchor.to_le_bytes());
        }
        for a in &self.file_anchor {
            out.extend_from_slice(&a.to_le_bytes());
        }
        let digest = blake3::hash(&out);
        out.extend_from_slice(digest.as_bytes());
        write_atomically(path, &out).map_err(io)
    }

    /// Reads an index written by [`Walk::write_index`] for `files`; an
    /// index for other files, or for files whose size or modification time
    /// has changed since, is refused (`Stale`).
    pub fn read_index(path: &Path, files: &[PathBuf]) -> Result<Walk, IndexError> {
        let bytes = std::fs::read(path).map_err(|source| IndexError::Io { path: path.into(), source })?;
        let (walk, stamps) = Walk::parse_index(path, &bytes, files)?;
        if let Some(problem) = first_change(&stamps, files) {
            return Err(IndexError::Stale { path: path.into(), problem });
        }
        Ok(walk)
    }

    /// Decodes an index's bytes for `files`: everything [`Walk::read_index`]
    /// checks but whether the files on disk still match the stamps the
    /// index records, which it returns for that check. Reads no file (the
    /// fuzz targets in `fuzz/` feed it any bytes); `path` names the index in
    /// errors.
    pub fn parse_index(path: &Path, bytes: &[u8], files: &[PathBuf]) -> Result<(Walk, Vec<FileStamp>), IndexError> {
        let invalid = |problem: IndexProblem| IndexError::Invalid { path: path.into(), problem };
        if bytes.len() < 16 + 32 || &bytes[..8] != INDEX_MAGIC {
            return Err(invalid(IndexProblem::Magic));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != digest {
            return Err(invalid(IndexProblem::Checksum));
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if version != INDEX_VERSION {
            return Err(invalid(IndexProblem::Version { version }));
        }
        let json_len = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
        let json = body.get(16..16 + json_len).ok_or_else(|| invalid(IndexProblem::HeaderLength))?;
        let header: IndexHeader = serde_json::from_slice(json).map_err(|e| invalid(IndexProblem::Header(e)))?;
        let mut rest = &body[16 + json_len..];
        let need = (header.blocks as u128) * 24 + (header.between as u128) * 20 + (header.files.len() as u128) * 8;
        if need != rest.len() as u128 {
            return Err(invalid(IndexProblem::RecordCounts));
        }
        // The records are checked against the header's file count and sizes.
        if header.files.len() != files.len() {
            let problem = FileChange::Count { recorded: header.files.len(), given: files.len() };
            return Err(IndexError::Stale { path: path.into(), problem });
        }
        let sizes: Vec<u64> = header.files.iter().map(|f| f.size).collect();
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head
        };
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let nfiles = files.len() as u32;
        let mut blocks = Vec::with_capacity(header.blocks as usize);
        for _ in 0..header.blocks {
            let r = take(24);
            let b = Walked { file: u32_at(r, 0), offset: u64_at(r, 4), len: u64_at(r, 12), txs: u32_at(r, 20) };
            if b.file >= nfiles || b.offset.checked_add(b.len).is_none_or(|end| end > sizes[b.file as usize]) {
                return Err(invalid(IndexProblem::BlockOutside));
            }
            blocks.push(b);
        }
        let mut between = Vec::with_capacity(header.between as usize);
        for _ in 0..header.between {
            let r = take(20);
            let b = Between { file: u32_at(r, 0), offset: u64_at(r, 4), anchor: u64_at(r, 12) };
            if b.file >= nfiles || b.offset > sizes[b.file as usize] || b.anchor > header.blocks {
                return Err(invalid(IndexProblem::ItemOutside));
            }
            between.push(b);
        }
        let file_anchor: Vec<u64> = (0..files.len()).map(|_| u64_at(take(8), 0)).collect();
        if let Some(problem) = untiled(&sizes, &blocks, &between) {
            return Err(invalid(problem));
        }
        // Each file's first position: the blocks in the files before it.
        if file_anchor.iter().enumerate().any(|(f, &a)| a != blocks.partition_point(|b| (b.file as usize) < f) as u64) {
            return Err(invalid(IndexProblem::FileAnchor));
        }
        if header.digests.len() != files.len() {
            return Err(invalid(IndexProblem::DigestCount));
        }
        let digests = header
            .digests
            .iter()
            .map(|h| {
                hex::decode(h).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| invalid(IndexProblem::DigestHex))
            })
            .collect::<Result<Vec<Digest>, _>>()?;
        let chain_id = match header.chain_id {
            Some(h) => Some(
                hex::decode(&h)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| invalid(IndexProblem::ChainIdHex))?,
            ),
            None => None,
        };
        let walk =
            Walk { files: files.to_vec(), sizes, blocks, between, file_anchor, chain_id, digests: Some(digests) };
        Ok((walk, header.files))
    }
}

/// How the blocks and in-between items of a walk (an index's) fail to tile
/// the files as framing does, or `None`: in each file, blocks back to back
/// from byte 0, then either the file's end or one in-between item (a
/// malformed tail, or an empty file) at the end of the last block, anchored
/// at the next file's first position. So an index can neither leave bytes
/// out (hiding a block at a file's end) nor move blocks; whether the bytes
/// there frame as it says is checked by the range that verifies them.
fn untiled(sizes: &[u64], blocks: &[Walked], between: &[Between]) -> Option<IndexProblem> {
    // Where the next block of each file must start, and whether its tail
    // has been seen (nothing may follow it).
    let mut next = vec![0u64; sizes.len()];
    let mut closed = vec![false; sizes.len()];
    let mut last_file = 0u32;
    for (position, b) in blocks.iter().enumerate() {
        let f = b.file as usize;
        if b.file < last_file || b.offset != next[f] || b.len == 0 {
            return Some(IndexProblem::BlockPlace { position });
        }
        last_file = b.file;
        next[f] = b.offset + b.len;
    }
    for t in between {
        let f = t.file as usize;
        if closed[f] || t.offset != next[f] {
            return Some(IndexProblem::ItemPlace { file: f });
        }
        // Its anchor: the number of blocks in files up to this one.
        if t.anchor != blocks.partition_point(|b| b.file <= t.file) as u64 {
            return Some(IndexProblem::ItemAnchor { file: f });
        }
        closed[f] = true;
        next[f] = sizes[f];
    }
    (0..sizes.len()).find(|&f| next[f] != sizes[f] || (sizes[f] == 0 && !closed[f])).map(|f| IndexProblem::FileEnd {
        file: f,
        end: next[f],
        size: sizes[f],
    })
}
