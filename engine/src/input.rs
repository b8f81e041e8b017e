//! Where chains come from: the paths a user gives, expanded into segment
//! files and streams in chain order, and how their bytes are read.
//!
//! - **Regular files** are memory-mapped (or read with plain reads in
//!   [`IoMode::Read`]); their length is known up front.
//! - **Streams** (`-` for standard input, pipes, FIFOs, character devices,
//!   process substitutions): anything whose size the kernel does not know.
//!   They are read once, front to back, with plain reads, one block at a
//!   time, and verified exactly as the same bytes in a file would be. A
//!   block read from a stream holds at most [`MAX_STREAM_BLOCK`] bytes;
//!   after a malformed block the rest of a stream is not read (it may never
//!   end: `/dev/zero`).
//!
//! Opening never blocks: a FIFO is opened non-blocking, and when no writer
//! has it open yet the frame stage waits for one (saying so on stderr after
//! a second), as `cat` would, instead of hanging inside `open`.
//!
//! FIFOs, devices and the SIGBUS guard ([`sigbus`]) are Unix matters: off
//! Unix a stream is opened with a plain `open` and a file is told apart
//! from others by its canonical path.

use std::fs::File;
use std::io::{self, Read};
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
#[cfg(unix)]
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub mod sigbus;

/// Bytes one block read from a stream may hold at most (header and body).
/// A block is read whole before it is checked, and a stream's length is
/// not known in advance, so a header that claims more is refused with an
/// error rather than trusted: save such a stream to a file.
pub const MAX_STREAM_BLOCK: u64 = 1 << 30;

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
#[non_exhaustive]
pub enum InputError {
    /// A path that does not exist.
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    /// A symbolic link to nothing.
    #[error("{}: dangling symbolic link", .0.display())]
    Dangling(PathBuf),
    /// A directory given as a chain holds no `*.vblk` file.
    #[error("{}: directory holds no .vblk file", .0.display())]
    EmptyDirectory(PathBuf),
    /// A `*.vblk` entry of a chain directory that is not a regular file.
    #[error("{}: {what}, not a regular file; a chain directory holds only segment files named *.vblk", path.display())]
    NotASegment {
        /// The entry.
        path: PathBuf,
        /// What it is instead (`a directory`, `a FIFO`, ...).
        what: &'static str,
    },
    /// A stream or special file given where only a regular file will do.
    #[error("{}: {what}; {needs} needs regular files it can read more than once", path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead (`a FIFO`, ...).
        what: &'static str,
        /// What needs a regular file (a command or option, for the message).
        needs: &'static str,
    },
    /// Opening, mapping or reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file's size changed while it was read (plain reads).
    #[error("{}: file changed size while being read (was {expected} bytes)", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// Its size when opened, in bytes.
        expected: u64,
    },
    /// The same file given twice (directly, through a directory or a link).
    #[error("{}: given twice{}; a chain holds each segment once", path.display(), same_as(.first, .path))]
    Duplicate {
        /// The second mention.
        path: PathBuf,
        /// The first mention of the same file.
        first: PathBuf,
    },
    /// A block read from a stream is over [`MAX_STREAM_BLOCK`] bytes.
    #[error(
        "{}: the block at offset {offset} is {size} bytes; a block read from a stream may be at most {} MiB (save the stream to a file and verify that)",
        path.display(), MAX_STREAM_BLOCK >> 20
    )]
    StreamBlockTooLarge {
        /// The stream.
        path: PathBuf,
        /// The block's byte offset in the stream.
        offset: u64,
        /// Its length (header and body), in bytes.
        size: u64,
    },
}

fn same_as(first: &Path, path: &Path) -> String {
    if first == path { String::new() } else { format!(" (it is {})", first.display()) }
}

impl InputError {
    /// An I/O error on `path` (a missing path gets its own message).
    pub fn from_io(path: &Path, source: io::Error) -> InputError {
        if source.kind() == io::ErrorKind::NotFound {
            InputError::Missing(path.to_owned())
        } else {
            InputError::Io { path: path.to_owned(), source }
        }
    }
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::from_io(path, source)
}

/// One input of a chain, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainInput {
    /// A regular file: mapped or read, its length known.
    File(PathBuf),
    /// A stream read once with plain reads (`-` is standard input).
    Stream(PathBuf),
}

impl ChainInput {
    /// The path, as given (or found in a directory).
    pub fn path(&self) -> &Path {
        match self {
            ChainInput::File(p) | ChainInput::Stream(p) => p,
        }
    }

    /// The file's size; `None` for a stream.
    pub fn size(&self) -> Option<u64> {
        match self {
            ChainInput::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            ChainInput::Stream(_) => None,
        }
    }
}

/// What a file type is called in messages.
#[cfg(unix)]
fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// What a file type is called in messages.
#[cfg(not(unix))]
fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() { "a directory" } else { "not a regular file" }
}

/// What tells one file from another, whatever path names it: device and
/// inode on Unix, the canonical path elsewhere.
#[cfg(unix)]
fn file_identity(file: &Path) -> Result<(u64, u64), InputError> {
    let meta = File::open(file).and_then(|f| f.metadata()).map_err(io_error(file))?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_identity(file: &Path) -> Result<PathBuf, InputError> {
    File::open(file).map_err(io_error(file))?;
    std::fs::canonicalize(file).map_err(io_error(file))
}

/// `metadata` (following links), telling a dangling link from a missing path.
fn metadata(path: &Path) -> Result<std::fs::Metadata, InputError> {
    std::fs::metadata(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound && std::fs::symlink_metadata(path).is_ok() {
            InputError::Dangling(path.to_owned())
        } else {
            io_error(path)(e)
        }
    })
}

/// What a path given by a user names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A regular file (mapped or read; its length known).
    File,
    /// A directory: the chain is its `*.vblk` files, sorted by name.
    Directory,
    /// `-` (standard input), a pipe, a FIFO, a device: read once as a stream.
    Stream,
}

/// What `path` names (`-` is standard input); a missing path or a dangling
/// link is an error naming it.
pub fn path_kind(path: &Path) -> Result<PathKind, InputError> {
    if path.as_os_str() == "-" {
        return Ok(PathKind::Stream);
    }
    let meta = metadata(path)?;
    Ok(if meta.is_file() {
        PathKind::File
    } else if meta.is_dir() {
        PathKind::Directory
    } else {
        PathKind::Stream
    })
}

/// Expands the paths given to a verifier into the chain's inputs, in chain
/// order (FORMAT.md "Which files, in which order"): files and streams as
/// given, a directory's `*.vblk` files in byte order of name. A directory
/// entry named `*.vblk` that is not a readable regular file (a dangling
/// link, a directory, a FIFO) is an error naming it, never skipped; so is
/// a file given twice (by any path). Every regular file is opened once here
/// so that an unreadable one is reported before any work starts; streams
/// are opened when their turn comes (opening a FIFO early would start its
/// writer against a reader that is not reading yet).
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<ChainInput>, InputError> {
    let mut inputs = Vec::new();
    for path in paths {
        match path_kind(path)? {
            PathKind::File => inputs.push(ChainInput::File(path.clone())),
            PathKind::Stream => inputs.push(ChainInput::Stream(path.clone())),
            PathKind::Directory => {
                let mut entries = Vec::new();
                for entry in std::fs::read_dir(path).map_err(io_error(path))? {
                    let entry = entry.map_err(io_error(path))?;
                    let name = entry.file_name();
                    if !name.as_encoded_bytes().ends_with(b".vblk") {
                        continue;
                    }
                    let full = path.join(&name);
                    let meta = metadata(&full)?;
                    if !meta.is_file() {
                        return Err(InputError::NotASegment { path: full, what: kind_name(meta.file_type()) });
                    }
                    entries.push(name);
                }
                if entries.is_empty() {
                    return Err(InputError::EmptyDirectory(path.clone()));
                }
                entries.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
                inputs.extend(entries.into_iter().map(|name| ChainInput::File(path.join(name))));
            }
        }
    }
    // The same file twice (by any path, or a directory given twice) would
    // be verified as two segments of one chain: refuse it.
    let mut seen = std::collections::HashMap::new();
    let mut stdin_seen = false;
    for input in &inputs {
        match input {
            ChainInput::File(file) => {
                if let Some(first) = seen.insert(file_identity(file)?, file) {
                    return Err(InputError::Duplicate { path: file.clone(), first: first.clone() });
                }
            }
            ChainInput::Stream(path) if path.as_os_str() == "-" => {
                if std::mem::replace(&mut stdin_seen, true) {
                    return Err(InputError::Duplicate { path: path.clone(), first: path.clone() });
                }
            }
            ChainInput::Stream(_) => {}
        }
    }
    Ok(inputs)
}

/// [`expand_inputs`] for tools that need regular files (ranges and shards,
/// which walk the chain before verifying part of it; `vigil index`, whose
/// offsets point into files): a stream is an error naming it. `needs` says
/// what needs the files, for the message.
pub fn expand_files(paths: &[PathBuf], needs: &'static str) -> Result<Vec<PathBuf>, InputError> {
    expand_inputs(paths)?
        .into_iter()
        .map(|input| match input {
            ChainInput::File(path) => Ok(path),
            ChainInput::Stream(path) => {
                let what = if path.as_os_str() == "-" {
                    "standard input"
                } else {
                    std::fs::metadata(&path).map_or("a stream", |m| kind_name(m.file_type()))
                };
                Err(InputError::NotAFile { path, what, needs })
            }
        })
        .collect()
}

/// [`expand_files`] for a verifier's whole chain.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    expand_files(paths, "this")
}

/// Opens a stream for reading without blocking in `open`: a FIFO is opened
/// non-blocking and, while no writer has it open, waited for with `poll`
/// (a notice on stderr after a second); then reads block as usual.
pub fn open_stream(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin()));
    }
    open_path_stream(path)
}

#[cfg(not(unix))]
fn open_path_stream(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
    Ok(Box::new(File::open(path).map_err(io_error(path))?))
}

#[cfg(unix)]
fn open_path_stream(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io_error(path))?;
    let is_fifo = file.metadata().map_err(io_error(path))?.file_type().is_fifo();
    let mut first = Vec::new();
    if is_fifo {
        wait_for_writer(&file, path, &mut first).map_err(io_error(path))?;
    }
    set_blocking(&file).map_err(io_error(path))?;
    Ok(Box::new(io::Cursor::new(first).chain(file)))
}

/// Waits until a FIFO (opened non-blocking) has data or has seen its writer
/// close. A non-blocking read tells the cases apart: data (kept in
/// `first`), `WouldBlock` (a writer is there: reads may now block), or 0
/// (no writer: wait for one with `poll`; after a writer came and went,
/// `poll` reports a hang-up and the stream is empty).
#[cfg(unix)]
fn wait_for_writer(file: &File, path: &Path, first: &mut Vec<u8>) -> io::Result<()> {
    let mut told = false;
    let mut byte = [0u8; 1];
    loop {
        match (&*file).read(&mut byte) {
            Ok(1) => {
                first.push(byte[0]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let mut fd = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, 1000) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            if !told {
                tracing::info!("{}: a FIFO with no writer yet; waiting for one", path.display());
                told = true;
            }
            continue;
        }
        if fd.revents & libc::POLLIN == 0 {
            // Hung up with no data: a writer opened and closed it.
            return Ok(());
        }
    }
}

#[cfg(unix)]
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with plain integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads up to `n` bytes onto the end of `buf`, stopping early only at the
/// end of the input; returns how many were read. Grows `buf` as bytes
/// arrive (at most 16 MiB ahead), so a length field that lies costs no
/// more memory than the bytes that really come.
pub(crate) fn read_up_to(reader: &mut dyn Read, buf: &mut Vec<u8>, n: u64) -> io::Result<u64> {
    const STEP: u64 = 16 << 20;
    let mut got = 0u64;
    while got < n {
        let want = (n - got).min(STEP) as usize;
        let start = buf.len();
        buf.resize(start + want, 0);
        let mut filled = 0;
        while filled < want {
            match reader.read(&mut buf[start + filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    buf.truncate(start + filled);
                    return Err(e);
                }
            }
        }
        buf.truncate(start + filled);
        got += filled as u64;
        if filled < want {
            break;
        }
    }
    Ok(got)
}

/// A line of at most `max` bytes (without its `\n`) from a stream, or
/// `None` at the end; a longer line is an error (`InvalidData`) before more
/// than `max + 1` bytes of it are held.
pub fn read_bounded_line<R: io::BufRead>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<Option<()>> {
    line.clear();
    let n = io::BufRead::read_until(&mut Read::take(&mut *reader, max as u64 + 1), b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("line longer than {max} bytes")));
    }
    Ok(Some(()))
}

/// A whole segment file's bytes, mapped or read, for tools that walk one
/// file (tests, benches).
pub enum Segment {
    /// Memory-mapped ([`IoMode::Mmap`], a non-empty file).
    Mapped(sigbus::Mapped),
    /// Read into memory ([`IoMode::Read`], or an empty file).
    Read(Vec<u8>),
}

impl Segment {
    /// Opens a regular file (anything else is [`InputError::NotAFile`]) and
    /// maps or reads all of it.
    pub fn open(path: &Path, io: IoMode) -> Result<Segment, InputError> {
        let mut file = File::open(path).map_err(io_error(path))?;
        let meta = file.metadata().map_err(io_error(path))?;
        if !meta.is_file() {
            return Err(InputError::NotAFile {
                path: path.to_owned(),
                what: kind_name(meta.file_type()),
                needs: "this",
            });
        }
        if io == IoMode::Read || meta.len() == 0 {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error(path))?;
            return Ok(Segment::Read(bytes));
        }
        Ok(Segment::Mapped(sigbus::Mapped::map(&file, path).map_err(io_error(path))?))
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Segment::Mapped(m) => m,
            Segment::Read(v) => v,
        }
    }
}

/// Re-export for callers that map files themselves.
pub use sigbus::Mapped;
