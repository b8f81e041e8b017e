//! Mapped files that shrink while they are read.
//!
//! The kernel answers a read of a mapped page past a file's (new) end with
//! SIGBUS, whose default action kills the process with no word of which
//! file changed. Every mapping vigil makes is a [`Mapped`], which records
//! its address range and a ready-made message naming its file in a fixed
//! table; [`install_handler`] (the CLI calls it at start; a library user
//! may) installs a SIGBUS handler that looks the faulting address up in
//! that table, writes the message and exits with status 2. A fault outside
//! every mapping restores the default action, so it still kills the
//! process as before.
//!
//! The handler only loads atomics and calls `write` and `_exit`, which are
//! async-signal-safe; the table is static, so nothing it reads is ever
//! freed.
//!
//! Off Unix there is no handler to install: Windows refuses to truncate a
//! file while it is mapped, so a mapping cannot lose its pages this way.

use memmap2::{Mmap, MmapOptions};
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Mappings tracked at once (vigil holds a few: the files in flight).
const SLOTS: usize = 64;
/// Bytes of a slot's message.
const MESSAGE: usize = 512;

const FREE: u8 = 0;
const WRITING: u8 = 1;
const ACTIVE: u8 = 2;

struct Slot {
    state: AtomicU8,
    start: AtomicUsize,
    end: AtomicUsize,
    len: AtomicUsize,
    message: [AtomicU8; MESSAGE],
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicU8::new(FREE),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            message: [const { AtomicU8::new(0) }; MESSAGE],
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// A read-only memory map of a whole file, known to the SIGBUS handler for
/// as long as it lives.
pub struct Mapped {
    map: Mmap,
    slot: Option<usize>,
}

impl Mapped {
    /// Maps `file` (named `path` in the message if it shrinks).
    pub fn map(file: &File, path: &Path) -> io::Result<Mapped> {
        Mapped::map_with(MmapOptions::new(), file, path)
    }

    /// Maps `len` bytes of `file` from byte `offset`.
    pub fn map_span(file: &File, path: &Path, offset: u64, len: usize) -> io::Result<Mapped> {
        let mut options = MmapOptions::new();
        options.offset(offset).len(len);
        Mapped::map_with(options, file, path)
    }

    fn map_with(options: MmapOptions, file: &File, path: &Path) -> io::Result<Mapped> {
        // SAFETY: a read-only, private view of the file. If the file shrinks
        // meanwhile, reads past its new end raise SIGBUS, which the handler
        // reports by name (and the `--no-mmap` mode avoids); no Rust value
        // ever aliases the bytes mutably.
        let map = unsafe { options.map(file) }?;
        let message = format!(
            "vigil: error: {}: changed while being verified (it shrank under its memory map); --no-mmap reads it safely\n",
            path.display()
        );
        let slot = register(map.as_ptr() as usize, map.len(), message.as_bytes());
        Ok(Mapped { map, slot })
    }

    /// Tells the kernel the map will be read front to back (read ahead,
    /// drop pages behind sooner). Advice only: a no-op where the platform
    /// has no `madvise`.
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        let _ = self.map.advise(memmap2::Advice::Sequential);
    }

    /// Asks for bytes `from..from + len` to be read in ahead of use
    /// (`from` page-aligned). Advice only, as above.
    pub fn prefetch(&self, from: usize, len: usize) {
        #[cfg(unix)]
        let _ = self.map.advise_range(memmap2::Advice::WillNeed, from, len);
        #[cfg(not(unix))]
        let _ = (from, len);
    }

    /// Gives the pages of bytes `from..from + len` back to the kernel
    /// (`from` page-aligned), so RSS stays flat on huge files. Touched
    /// again, they are re-read from the file. Advice only, as above.
    pub fn release(&self, from: usize, len: usize) {
        // SAFETY: a read-only, private file mapping: dropped pages are
        // re-read from the file if touched again (even by a thread still
        // reading them), so no data changes under any slice.
        #[cfg(unix)]
        let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, len) };
        #[cfg(not(unix))]
        let _ = (from, len);
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Forgotten before the map is unmapped (fields drop after this).
        if let Some(i) = self.slot {
            TABLE[i].state.store(FREE, Ordering::Release);
        }
    }
}

fn register(start: usize, len: usize, message: &[u8]) -> Option<usize> {
    let (i, slot) = TABLE
        .iter()
        .enumerate()
        .find(|(_, s)| s.state.compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok())?;
    let n = message.len().min(MESSAGE);
    for (dst, &b) in slot.message.iter().zip(&message[..n]) {
        dst.store(b, Ordering::Relaxed);
    }
    // A message cut short still ends its line.
    slot.message[n - 1].store(b'\n', Ordering::Relaxed);
    slot.len.store(n, Ordering::Relaxed);
    slot.start.store(start, Ordering::Relaxed);
    slot.end.store(start + len, Ordering::Relaxed);
    slot.state.store(ACTIVE, Ordering::Release);
    Some(i)
}

/// The mapping holding `addr`, if one does: its message, copied out.
#[cfg_attr(not(unix), allow(dead_code))]
fn lookup(addr: usize, out: &mut [u8; MESSAGE]) -> Option<usize> {
    for slot in &TABLE {
        if slot.state.load(Ordering::Acquire) != ACTIVE {
            continue;
        }
        let (start, end) = (slot.start.load(Ordering::Relaxed), slot.end.load(Ordering::Relaxed));
        if (start..end).contains(&addr) {
            let n = slot.len.load(Ordering::Relaxed);
            for (o, b) in out.iter_mut().zip(&slot.message[..n]) {
                *o = b.load(Ordering::Relaxed);
            }
            return Some(n);
        }
    }
    None
}

#[cfg(unix)]
extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: the kernel hands a SA_SIGINFO handler a valid siginfo_t.
    let addr = unsafe { (*info).si_addr() } as usize;
    let mut message = [0u8; MESSAGE];
    if let Some(n) = lookup(addr, &mut message) {
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, message.as_ptr().cast(), n);
            libc::_exit(2);
        }
    }
    // Not a mapping of ours: back to the default action, which the faulting
    // access, run again on return, then takes.
    // SAFETY: signal(2) with SIG_DFL is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

/// Installs the SIGBUS handler described in the module docs (process-wide;
/// call once, early). Off Unix, nothing to install: returns `Ok`.
#[cfg(not(unix))]
pub fn install_handler() -> io::Result<()> {
    Ok(())
}

/// Installs the SIGBUS handler described in the module docs (process-wide;
/// call once, early). Off Unix, nothing to install: returns `Ok`.
#[cfg(unix)]
pub fn install_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid start; the handler is an
    // `extern "C"` function of the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_is_found_by_address_while_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.vblk");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let map = Mapped::map(&File::open(&path).unwrap(), &path).unwrap();
        let addr = map.as_ptr() as usize + 9_999;
        let mut out = [0u8; MESSAGE];
        let n = lookup(addr, &mut out).expect("registered");
        let text = std::str::from_utf8(&out[..n]).unwrap();
        let named = format!("{}: changed while being verified", path.display());
        assert!(text.contains(&named), "{text}");
        // One past the end is not this mapping (another test's may sit there).
        let next = lookup(addr + 1, &mut out).map(|n| String::from_utf8_lossy(&out[..n]).into_owned());
        assert!(!next.is_some_and(|t| t.contains(&named)), "one past the end");
        drop(map);
        let after = lookup(addr, &mut out).map(|n| String::from_utf8_lossy(&out[..n]).into_owned());
        assert!(!after.is_some_and(|t| t.contains(&named)), "forgotten when unmapped");
    }
}
