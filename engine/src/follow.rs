//! Live verification of a growing chain directory (`vigil verify
//! --follow`): blocks are verified as they are appended to the last
//! segment file or land in new segment files.
//!
//! A writer appends a block in pieces, so the end of the last file may
//! hold a block cut short. Such a tail is **waited for**, not reported
//! malformed, while it may still be completed: until the writer has moved
//! on (a later segment file appears) or the file has not changed for the
//! settle time. Then it is judged as a full run would judge those bytes
//! (malformed, and nothing after it in that file is read). A tail that can
//! never become a block (a whole header that is not one, or bytes that do
//! not start with the magic) is reported at once.
//!
//! [`Follower::step`] verifies whatever is ready and returns; the caller
//! decides how to wait between steps (the CLI: inotify, with polling as the
//! fallback). Verdicts are those of one run over the same bytes: the
//! [`Verifier`] carries the chain state from step to step.

use crate::checkpoint::ResumeSource;
use crate::format::{HEADER_LEN, MAGIC, Malformation, check_header};
use crate::input::{InputError, io_error};
use crate::report::ReportSink;
use crate::verify::Verifier;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What follows the complete blocks at the end of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the file ends with a whole block.
    None,
    /// A block cut short at `offset`, which more bytes may complete.
    Partial {
        /// Where it starts.
        offset: u64,
    },
    /// Bytes at `offset` that can never become a block.
    Malformed {
        /// Where they start.
        offset: u64,
    },
}

/// Walks the block headers of `path` from `start` (a block boundary) to its
/// current end: the end of the last whole block (header and body present;
/// the body is checked later, when verified), what follows it, and the
/// file's size as walked (it may grow meanwhile: later bytes are for the
/// next walk).
pub fn complete_end(path: &Path, start: u64) -> Result<(u64, Tail, u64), InputError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let size = file.metadata().map_err(io_error(path))?.len();
    if size < start {
        // Shrank below what was verified: not the chain that was verified.
        return Err(InputError::Changed { path: path.to_owned(), expected: start });
    }
    let mut pos = start;
    let mut head = [0u8; HEADER_LEN];
    while pos < size {
        let have = (size - pos).min(HEADER_LEN as u64) as usize;
        file.seek(io::SeekFrom::Start(pos)).map_err(io_error(path))?;
        file.read_exact(&mut head[..have]).map_err(io_error(path))?;
        let magic_ok = head[..have.min(4)] == MAGIC[..have.min(4)];
        match check_header(&head[..have], size - pos) {
            Ok(header) => pos += HEADER_LEN as u64 + u64::from(header.body_len()),
            Err(Malformation::HeaderTruncated { .. } | Malformation::BodyTruncated { .. }) if magic_ok => {
                return Ok((pos, Tail::Partial { offset: pos }, size));
            }
            Err(_) => return Ok((pos, Tail::Malformed { offset: pos }, size)),
        }
    }
    Ok((pos, Tail::None, size))
}

/// What one [`Follower::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Step {
    /// Bytes verified (blocks, and malformed tails reported).
    pub bytes: u64,
    /// A partial block at the end of the last file is being waited for.
    pub waiting: bool,
}

/// Why following stops.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// Reading a file failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The directory's files are no longer in the order verified.
    #[error("{}: {problem}", path.display())]
    Order {
        /// The file.
        path: PathBuf,
        /// What happened.
        problem: String,
    },
}

/// Follows a chain directory; see the module docs.
pub struct Follower {
    dir: PathBuf,
    verifier: Verifier,
    settle: Duration,
    /// The partial tail waited for: its file, the file's size, since when.
    pending: Option<(PathBuf, u64, Instant)>,
    /// The file being read, and its index among the directory's files.
    current: Option<(PathBuf, usize)>,
}

impl Follower {
    /// Follows `dir` with `verifier` (new, or resumed from a checkpoint
    /// whose files are `dir`'s); a partial tail is judged once its file has
    /// not changed for `settle` (or a later file appears).
    pub fn new(dir: PathBuf, verifier: Verifier, settle: Duration) -> Follower {
        Follower { dir, verifier, settle, pending: None, current: None }
    }

    /// The verifier (its summary, its checkpoint).
    pub fn verifier(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// The directory's segment files, in chain order (none yet is fine).
    fn files(&self) -> Result<Vec<PathBuf>, InputError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let name = entry.map_err(io_error(&self.dir))?.file_name();
            if name.as_encoded_bytes().ends_with(b".vblk") {
                names.push(name);
            }
        }
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        Ok(names.into_iter().map(|n| self.dir.join(n)).collect())
    }

    /// Verifies what is ready now (reports go to `sink`).
    pub fn step(&mut self, sink: &mut dyn ReportSink) -> Result<Step, FollowError> {
        let files = self.files()?;
        let (first, start, ended) = match self.verifier.position() {
            None => (0, 0, false),
            Some((current, verified, consumed)) => {
                let name = current.file_name();
                let i = files.iter().position(|f| f.file_name() == name).ok_or_else(|| FollowError::Order {
                    path: current.to_path_buf(),
                    problem: "verified, and no longer in the directory".into(),
                })?;
                if let Some((known, at)) = &self.current
                    && known.as_os_str() == current.as_os_str()
                    && *at != i
                {
                    return Err(FollowError::Order {
                        path: files[i.min(*at)].clone(),
                        problem: "a new segment file sorts before files already verified: the chain order changed"
                            .into(),
                    });
                }
                self.current = Some((current.to_path_buf(), i));
                // A malformed block ended this file: nothing more of it is read.
                (i, verified, consumed > verified)
            }
        };
        // Only regular files, as a full run requires: those not passed yet
        // (a data directory's older segments are not opened again each step).
        if first < files.len() {
            crate::input::expand_files(&files[first..], "--follow")?;
        }
        let mut sources = Vec::new();
        let mut step = Step::default();
        for (j, path) in files.iter().enumerate().skip(first) {
            let from = if j == first { start } else { 0 };
            if j == first && ended {
                continue;
            }
            let last = j + 1 == files.len();
            let (end, tail, size) = complete_end(path, from)?;
            let until = match tail {
                Tail::Partial { .. } if last => {
                    let settled = match &self.pending {
                        Some((p, s, since)) if p == path && *s == size => since.elapsed() >= self.settle,
                        _ => {
                            self.pending = Some((path.clone(), size, Instant::now()));
                            self.settle.is_zero()
                        }
                    };
                    step.waiting = !settled;
                    if settled { size } else { end }
                }
                _ => size,
            };
            if until > from || (from == 0 && size == 0 && !last) {
                sources.push(ResumeSource::Part(path.clone(), from, until));
                step.bytes += until - from;
            }
        }
        if !step.waiting {
            self.pending = None;
        }
        if !sources.is_empty() {
            let sources: Vec<_> = sources.iter().map(ResumeSource::source).collect();
            self.verifier.run_sources(&sources, sink)?;
        }
        Ok(step)
    }
}
