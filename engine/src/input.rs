//! Where chains come from: the paths a user gives, expanded into segment
//! files in chain order, and how their bytes are read.

use memmap2::Mmap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// How segment files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// Memory-map each file (fast; the file must not shrink meanwhile).
    #[default]
    Mmap,
    /// Plain reads into a reused buffer (safe for files that may change).
    Read,
}

/// Errors that stop a run (as opposed to verdicts about the chain).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error("{}: directory holds no .vblk file", .0.display())]
    EmptyDirectory(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: file changed size while being read (was {expected} bytes)", path.display())]
    Changed { path: PathBuf, expected: u64 },
    #[error("{}: given twice; a range or shard of a chain needs each file once", .0.display())]
    Duplicate(PathBuf),
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::NotFound {
            InputError::Missing(path.to_owned())
        } else {
            InputError::Io { path: path.to_owned(), source }
        }
    }
}

/// Expands the paths given to a verifier into the chain's segment files, in
/// chain order (FORMAT.md "Which files, in which order"): files as given,
/// a directory's `*.vblk` files in byte order of name. Every file is opened
/// once here so that an unreadable one is reported before any work starts.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(io_error(path))?;
        if meta.is_dir() {
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(path).map_err(io_error(path))? {
                let entry = entry.map_err(io_error(path))?;
                let name = entry.file_name();
                if name.as_encoded_bytes().ends_with(b".vblk") && entry.path().is_file() {
                    entries.push(name);
                }
            }
            if entries.is_empty() {
                return Err(InputError::EmptyDirectory(path.clone()));
            }
            entries.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
            files.extend(entries.into_iter().map(|name| path.join(name)));
        } else {
            files.push(path.clone());
        }
    }
    for file in &files {
        File::open(file).map_err(io_error(file))?;
    }
    Ok(files)
}

/// A whole segment file's bytes, mapped or read, for tools that walk one
/// file (`vigil inspect`, tests).
pub enum Segment {
    Mapped(Mmap),
    Read(Vec<u8>),
}

impl Segment {
    pub fn open(path: &Path, io: IoMode) -> Result<Segment, InputError> {
        let mut file = File::open(path).map_err(io_error(path))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        if io == IoMode::Read || len == 0 {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error(path))?;
            return Ok(Segment::Read(bytes));
        }
        // SAFETY: read-only map; see the module comment on files that shrink.
        let map = unsafe { Mmap::map(&file) }.map_err(io_error(path))?;
        Ok(Segment::Mapped(map))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Segment::Mapped(m) => m,
            Segment::Read(v) => v,
        }
    }
}
