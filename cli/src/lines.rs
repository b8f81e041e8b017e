//! Text inputs read line by line (`vigil sigs`, `--authorities`): a file or
//! a stream (`-`, a pipe, a FIFO), each line bounded so that an input with
//! no newline (`/dev/zero`) is an error naming its line, not unbounded
//! memory.

use crate::Fatal;
use std::io::{BufRead, BufReader};
use std::path::Path;
use vigil_engine::input::{self, PathKind};

/// The lines of one text input, numbered from 1 for messages.
pub struct Lines {
    name: String,
    reader: Box<dyn BufRead>,
    line: Vec<u8>,
    number: u64,
    max: usize,
}

impl Lines {
    /// Opens `path` (`what` it should hold names it in the message for a
    /// directory); lines longer than `max` bytes are errors.
    pub fn open(path: &Path, what: &str, max: usize) -> Result<Lines, Fatal> {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead> = match input::path_kind(path)? {
            PathKind::Stream if name == "-" => Box::new(std::io::stdin().lock()),
            PathKind::Stream => Box::new(BufReader::new(input::open_stream(path)?)),
            PathKind::File => {
                Box::new(BufReader::new(std::fs::File::open(path).map_err(|e| Fatal(format!("{name}: {e}")))?))
            }
            PathKind::Directory => return Err(Fatal(format!("{name}: a directory, not a file of {what}"))),
        };
        Ok(Lines { name, reader, line: Vec::new(), number: 0, max })
    }

    /// The next line (without its newline), or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<&str>, Fatal> {
        self.number += 1;
        match input::read_bounded_line(&mut self.reader, &mut self.line, self.max) {
            Ok(Some(())) => {}
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        }
        match std::str::from_utf8(&self.line) {
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(Fatal(format!("{}:{}: not UTF-8 text", self.name, self.number))),
        }
    }

    /// `e` about the line last read, as `NAME:LINE: e`.
    pub fn error(&self, e: impl std::fmt::Display) -> Fatal {
        Fatal(format!("{}:{}: {e}", self.name, self.number))
    }
}
