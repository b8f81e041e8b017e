//! The chain's files as shards see them: stamps (name, size, modification
//! time), BLAKE3 of byte spans, and atomic writes of indexes, summaries
//! (and checkpoints).

use crate::hash::Digest;
use crate::input::{InputError, IoMode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Writes `bytes` to `path` atomically and durably: a temporary file
/// beside it, synced, renamed into place, and the directory synced (where
/// directories can be); on any failure the temporary file is removed.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Bytes read at a time to hash a span with plain reads.
const HASH_CHUNK: u64 = 16 << 20;

/// BLAKE3 of bytes `start..end` of `path`, on all cores of the current
/// rayon pool: mapped (`IoMode::Mmap`, after checking the file is long
/// enough, as mapping past its end would fault) or read in chunks.
pub fn hash_span(path: &Path, start: u64, end: u64, io: IoMode) -> Result<Digest, InputError> {
    use std::io::{Read, Seek};
    let err = |e| crate::input::io_error(path)(e);
    let mut h = blake3::Hasher::new();
    if end > start {
        let mut file = std::fs::File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len < end {
            return Err(InputError::Changed { path: path.into(), expected: end });
        }
        match io {
            IoMode::Mmap => {
                let n = usize::try_from(end - start).map_err(|e| err(std::io::Error::other(e)))?;
                // Within the file's length; a file that shrinks while mapped
                // is reported by name, as when verifying (`input::sigbus`).
                let map = crate::input::Mapped::map_span(&file, path, start, n).map_err(err)?;
                h.update_rayon(&map);
            }
            IoMode::Read => {
                file.seek(std::io::SeekFrom::Start(start)).map_err(err)?;
                let mut buf = vec![0u8; HASH_CHUNK.min(end - start) as usize];
                let mut left = end - start;
                while left > 0 {
                    let n = HASH_CHUNK.min(left) as usize;
                    file.read_exact(&mut buf[..n]).map_err(|e| match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => InputError::Changed { path: path.into(), expected: end },
                        _ => err(e),
                    })?;
                    h.update_rayon(&buf[..n]);
                    left -= n as u64;
                }
            }
        }
    }
    Ok(*h.finalize().as_bytes())
}

/// A file as the summary identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// The file's name as given (`Path::display`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since 1970 (0 when unknown).
    pub mtime_ns: u128,
}

/// How the files given differ from those an index or summary recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileChange {
    /// Another number of files.
    #[error("{recorded} files recorded, {given} given")]
    Count {
        /// Files recorded.
        recorded: usize,
        /// Files given.
        given: usize,
    },
    /// A file whose name, size or modification time differs.
    #[error("{path} changed (or is another file)")]
    Changed {
        /// The file given.
        path: PathBuf,
    },
}

/// How `files` differ from `stamps` (names, sizes, modification times), or
/// `None` when they look the same; reads no file's contents.
pub(super) fn first_change(stamps: &[FileStamp], files: &[PathBuf]) -> Option<FileChange> {
    if stamps.len() != files.len() {
        return Some(FileChange::Count { recorded: stamps.len(), given: files.len() });
    }
    stamps.iter().zip(files).find_map(|(s, p)| {
        let now = std::fs::metadata(p).map(|m| m.len()).ok();
        let same = s.path == p.display().to_string() && now == Some(s.size) && mtime_ns(p) == s.mtime_ns;
        (!same).then(|| FileChange::Changed { path: p.clone() })
    })
}

/// `p`'s modification time, nanoseconds since 1970 (0 when unknown).
pub(super) fn mtime_ns(p: &Path) -> u128 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}
