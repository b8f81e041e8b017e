//! `vigil serve`: the [`Validator`] behind a local socket, speaking protocol
//! v1 (`docs/PROTOCOL.md`, crate `vigil-protocol`).
//!
//! One thread reads each connection and one writes it, sharing one socket
//! (one file descriptor). The reader takes one of the connection's
//! `max_in_flight` slots before it reads a frame (so exactly that many
//! requests are ever held), charges the frame against the server-wide
//! `max_buffered` budget from its header before reading its body (waiting
//! for room rather than allocating), decodes it in place and hands the work
//! to the validator; the writer sends the answers in request order and
//! gives slot and charge back once each is written. A frame that breaks the
//! framing (a length below the header or above `max_frame`) gets an error
//! and the connection is closed; any other bad request gets an error
//! response and the connection goes on. Connections that idle, send half a
//! frame or stop reading their answers are closed after their timeouts.
//!
//! Shutdown (`shutdown` flag, set by SIGTERM in the CLI): the listener stops
//! accepting, readers stop at the next frame boundary, every request already
//! read is answered; after `shutdown_grace` the validator is flushed, reads
//! are cut and writes get one more second, then [`serve`] returns.

#![warn(missing_docs)]
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use vigil_engine::report::Rule;
use vigil_engine::sig::RuleSet;
use vigil_engine::validator::{BlockVerdict, Pending, Request, SigBatch, SubmitError, Validator, Verdict};
use vigil_protocol::transport::Stream;
use vigil_protocol::{self as proto, ErrorCode, FrameError, Header, PREFIX_LEN, Response};

pub use vigil_protocol::transport::Address;

/// Why [`Listener::bind`] could not listen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Resolving, binding or setting up the socket failed.
    #[error("{address}: {source}")]
    Io {
        /// The address, as given.
        address: String,
        /// The error.
        source: io::Error,
    },
    /// A TCP address that is not loopback, without `allow_remote`.
    #[error(
        "{address} resolves to {addr}, which is not a loopback address; pass --allow-remote (with --token-file) to serve other machines"
    )]
    NotLoopback {
        /// The address, as given.
        address: String,
        /// What it resolved to.
        addr: SocketAddr,
    },
    /// A TCP address that resolves to nothing.
    #[error("{address}: resolves to no address")]
    NoAddress {
        /// The address, as given.
        address: String,
    },
}

/// Permissions of a unix socket unless told otherwise: owner only.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// Removes `path` only when it is a socket that refuses connections (left
/// by a server that died); a live socket or any other file is an error.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a socket; not replacing it"));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(io::ErrorKind::AddrInUse, "a server is already listening there")),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// Binds a unix socket at `path` with permissions `mode` and no moment
/// with others': bound in a private (0700) directory beside `path`, given
/// its mode there, then linked into place (which fails rather than replace
/// anything that appeared meanwhile).
fn bind_unix(path: &Path, mode: u32) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    static BINDS: AtomicU64 = AtomicU64::new(0);
    let private = parent.join(format!(".vigil-{}-{}.tmp", std::process::id(), BINDS.fetch_add(1, Relaxed)));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let inner = private.join("s");
    let bound = UnixListener::bind(&inner)
        .and_then(|l| std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(mode)).map(|()| l))
        .and_then(|l| std::fs::hard_link(&inner, path).map(|()| l));
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// Raises this process's soft limit on open files to the hard limit and
/// returns it: each connection takes one descriptor.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
    Ok(limit.rlim_cur as u64)
}

/// Makes the C allocator give every large buffer (1 MiB or more) back to
/// the system when it is freed. glibc otherwise raises its threshold for
/// that after the first large free (up to 32 MiB), and keeps freed buffers
/// in per-thread arenas that other threads do not reuse: with a thread per
/// connection, a server's resident memory then grows well past the bytes
/// it holds (measured: 287 MiB for 40 MiB held). Call once, at start.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Descriptors kept aside from connections: standard streams, the
/// listener, the GPU driver's, and one to refuse a connection with.
pub const RESERVED_FILES: u64 = 32;

/// A bound listening socket.
pub enum Listener {
    /// A unix socket and its path, removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
    /// A TCP socket.
    Tcp(TcpListener),
}

impl Listener {
    /// Binds `address`; TCP addresses must be loopback unless
    /// `allow_remote`. A unix socket is made owner-only
    /// ([`DEFAULT_SOCKET_MODE`]).
    pub fn bind(address: &Address, allow_remote: bool) -> Result<Listener, ListenError> {
        Listener::bind_with_mode(address, allow_remote, DEFAULT_SOCKET_MODE)
    }

    /// [`Listener::bind`], a unix socket getting permissions `mode` (only
    /// who may write to it may connect). Only a stale socket (a socket
    /// nothing listens on) at the path is replaced: anything else there is
    /// an error and stays untouched.
    pub fn bind_with_mode(address: &Address, allow_remote: bool, mode: u32) -> Result<Listener, ListenError> {
        let io_err = |source| ListenError::Io { address: address.to_string(), source };
        match address {
            Address::Unix(path) => {
                remove_stale_socket(path).map_err(io_err)?;
                Ok(Listener::Unix(bind_unix(path, mode).map_err(io_err)?, path.clone()))
            }
            Address::Tcp(hp) => {
                let addrs: Vec<SocketAddr> = hp.to_socket_addrs().map_err(io_err)?.collect();
                if addrs.is_empty() {
                    return Err(ListenError::NoAddress { address: address.to_string() });
                }
                if !allow_remote && let Some(addr) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                    return Err(ListenError::NotLoopback { address: address.to_string(), addr: *addr });
                }
                Ok(Listener::Tcp(TcpListener::bind(&addrs[..]).map_err(io_err)?))
            }
        }
    }

    /// What clients connect to (the port the system chose for `:0`).
    pub fn local_address(&self) -> Address {
        match self {
            Listener::Unix(_, path) => Address::Unix(path.clone()),
            Listener::Tcp(l) => Address::Tcp(l.local_addr().map_or_else(|_| "?".into(), |a| a.to_string())),
        }
    }

    /// A unix socket, or TCP on a loopback address.
    pub fn is_loopback(&self) -> bool {
        match self {
            Listener::Unix(..) => true,
            Listener::Tcp(l) => l.local_addr().is_ok_and(|a| a.ip().is_loopback()),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Unix(l, _) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().and_then(|(s, _)| Stream::tcp(s)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The limits and timeouts of [`serve`]; `Default` gives `vigil serve`'s
/// defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest frame accepted (length field), and the largest response
    /// sent: a request whose response would be larger is refused
    /// (`response_too_large`) before it is computed.
    pub max_frame: usize,
    /// Requests of one connection read but not yet answered (exactly: the
    /// next frame is not read until one is answered).
    pub max_in_flight: usize,
    /// Connections served at once; more are told `overloaded` and closed.
    pub max_connections: usize,
    /// Bytes of frames being received, requests being served and responses
    /// waiting to be sent, all connections together (see [`frame_charge`]).
    /// A reader waits for room before it reads a frame's body.
    pub max_buffered: usize,
    /// A connection with nothing in flight that begins no frame for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// A frame must arrive whole within this of its first byte, or the
    /// connection is closed.
    pub frame_timeout: Duration,
    /// A response the client does not take within this is not delivered and
    /// the connection is closed.
    pub write_timeout: Duration,
    /// After shutdown begins: how long connections have to finish (a frame
    /// already begun to arrive, answers to be taken) before every socket is
    /// closed and the validator flushes what it holds.
    pub shutdown_grace: Duration,
    /// When set, the first frame of every connection must be `auth` with
    /// this token, or the connection is refused (`unauthorized`).
    pub token: Option<Vec<u8>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: proto::DEFAULT_MAX_FRAME,
            max_in_flight: 256,
            max_connections: 1024,
            max_buffered: 512 << 20,
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            token: None,
        }
    }
}

/// Fixed bytes charged to every frame: its response when that is small
/// (errors, status, verdicts of small requests) and bookkeeping.
pub const FRAME_OVERHEAD: usize = 64 << 10;
/// The longest `auth` frame (length field) a server with a token reads.
pub const MAX_AUTH_FRAME: usize = proto::HEADER_LEN + 1024;

/// The bytes a frame is charged against `max_buffered` from its header
/// alone, before its body is read, and until its response is sent: the body
/// (`length`), what is made from it (a `hash` response of up to 8 times its
/// body, never over `max_frame`; for other kinds a copy of the body, an
/// eighth more for the signature batch's index, or a verdict) and
/// [`FRAME_OVERHEAD`].
pub fn frame_charge(kind: u8, length: usize, max_frame: usize) -> usize {
    let made = if kind == proto::kind::HASH {
        length.saturating_mul(8).min(max_frame) + 32
    } else {
        length.saturating_add(length / 8)
    };
    length.saturating_add(made).saturating_add(FRAME_OVERHEAD)
}

impl ServerConfig {
    /// The smallest `max_buffered` that lets a frame of `max_frame` bytes in.
    pub fn min_buffered(&self) -> usize {
        frame_charge(proto::kind::HASH, self.max_frame, self.max_frame).max(frame_charge(
            proto::kind::VERIFY_SIGNATURES,
            self.max_frame,
            self.max_frame,
        ))
    }
}

/// The server's own counters (the validator has its own).
#[derive(Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct ServerCounters {
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections served since start (refused ones not counted).
    pub connections_total: AtomicU64,
    /// Connections refused for `max_connections`.
    pub connections_refused: AtomicU64,
    /// Frames read whole.
    pub frames: AtomicU64,
    /// Responses written (delivered to the socket).
    pub responses: AtomicU64,
    /// Error responses, by any cause.
    pub error_responses: AtomicU64,
    /// Connections closed because their framing broke.
    pub framing_errors: AtomicU64,
    /// Responses that could not be delivered (the client had gone, or did
    /// not read them within `write_timeout`).
    pub undelivered: AtomicU64,
    /// Bytes charged now against `max_buffered`, and the most ever.
    pub buffered_bytes: AtomicU64,
    /// The most bytes ever charged against `max_buffered` at once.
    pub buffered_peak: AtomicU64,
    /// Requests read and not yet answered, all connections; and the most
    /// one connection ever held (never over `max_in_flight`).
    pub requests_held: AtomicU64,
    /// The most requests one connection ever held at once.
    pub held_peak: AtomicU64,
    /// Connections closed for `idle_timeout` or `frame_timeout`, and for
    /// `write_timeout`.
    pub read_timeouts: AtomicU64,
    /// Connections closed for `write_timeout`.
    pub write_timeouts: AtomicU64,
    /// Connections refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
}

/// How often blocked reads, accepts and waits look at the clock and the
/// shutdown flag.
const TICK: Duration = Duration::from_millis(50);

/// A counting semaphore: `used` units of `limit`, waited for in ticks so a
/// waiter can give up.
struct Gate {
    used: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl Gate {
    fn new(limit: usize) -> Gate {
        Gate { used: Mutex::new(0), freed: Condvar::new(), limit }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `n` units once they are free; `None` if `give_up` says so
    /// first. Returns the units in use after taking them.
    fn acquire(&self, n: usize, give_up: impl Fn() -> bool) -> Option<usize> {
        let mut used = self.lock();
        while *used + n > self.limit {
            if give_up() {
                return None;
            }
            used = self.freed.wait_timeout(used, TICK).unwrap_or_else(PoisonError::into_inner).0;
        }
        *used += n;
        Some(*used)
    }

    fn release(&self, n: usize) {
        *self.lock() -= n;
        self.freed.notify_all();
    }

    fn used(&self) -> usize {
        *self.lock()
    }
}

/// Bytes taken from the server's budget, given back when dropped (once the
/// frame's response has been sent, or dropped).
struct Charge<'a> {
    shared: &'a Shared,
    bytes: usize,
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.shared.budget.release(self.bytes);
        self.shared.counters.buffered_bytes.fetch_sub(self.bytes as u64, Relaxed);
    }
}

struct Shared {
    validator: Arc<Validator>,
    config: ServerConfig,
    shutdown: Arc<AtomicBool>,
    /// When shutdown's grace ends (set when shutdown is seen).
    force_at: OnceLock<Instant>,
    budget: Gate,
    /// BLAKE3 of the token: compared in constant time, whatever the length
    /// of what a client sends.
    token: Option<blake3::Hash>,
    /// Open connections' sockets, to close them when the grace ends.
    sockets: Mutex<HashMap<u64, Arc<Stream>>>,
    counters: Arc<ServerCounters>,
    started: Instant,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.shutdown.load(Relaxed)
    }

    /// Shutdown's grace is over: give up every wait.
    fn forced(&self) -> bool {
        self.force_at.get().is_some_and(|t| Instant::now() >= *t)
    }

    /// Takes `bytes` from the budget, waiting for room (a frame bigger than
    /// the whole budget cannot happen: `serve` checks `min_buffered`).
    fn charge(&self, bytes: usize) -> Option<Charge<'_>> {
        let used = self.budget.acquire(bytes, || self.forced())?;
        self.counters.buffered_bytes.fetch_add(bytes as u64, Relaxed);
        self.counters.buffered_peak.fetch_max(used as u64, Relaxed);
        Some(Charge { shared: self, bytes })
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Serves `listener` until `shutdown` is set, then answers everything in
/// flight (for at most `shutdown_grace`, then closes every connection) and
/// returns the counters.
pub fn serve(
    listener: Listener,
    validator: Arc<Validator>,
    config: ServerConfig,
    shutdown: Arc<AtomicBool>,
) -> io::Result<ServerCounters> {
    let counters = Arc::new(ServerCounters::default());
    serve_counted(listener, validator, config, shutdown, Arc::clone(&counters))?;
    Arc::try_unwrap(counters).map_err(|_| io::Error::other("counters still shared"))
}

/// [`serve`], counting into `counters`, which the caller may read while it
/// runs (metrics).
pub fn serve_counted(
    listener: Listener,
    validator: Arc<Validator>,
    config: ServerConfig,
    shutdown: Arc<AtomicBool>,
    counters: Arc<ServerCounters>,
) -> io::Result<()> {
    if config.max_in_flight == 0 || config.max_connections == 0 {
        return Err(invalid("max_in_flight and max_connections must be at least 1".into()));
    }
    if config.max_buffered < config.min_buffered() {
        return Err(invalid(format!(
            "max_buffered {} is below {}, what one frame of max_frame {} may take",
            config.max_buffered,
            config.min_buffered(),
            config.max_frame
        )));
    }
    if !listener.is_loopback() && config.token.is_none() {
        return Err(invalid("a listener on a non-loopback address needs a token (--token-file)".into()));
    }
    listener.set_nonblocking()?;
    let shared = Arc::new(Shared {
        validator,
        budget: Gate::new(config.max_buffered),
        token: config.token.as_deref().map(blake3::hash),
        config,
        shutdown,
        force_at: OnceLock::new(),
        sockets: Mutex::new(HashMap::new()),
        counters,
        started: Instant::now(),
    });
    let mut connections = Vec::new();
    while !shared.stopping() {
        match listener.accept() {
            Ok(stream) => {
                connections.retain(|c: &std::thread::JoinHandle<()>| !c.is_finished());
                let c = &shared.counters;
                if c.connections_open.load(Relaxed) >= shared.config.max_connections as u64 {
                    c.connections_refused.fetch_add(1, Relaxed);
                    refuse(stream, &shared);
                    continue;
                }
                c.connections_open.fetch_add(1, Relaxed);
                let number = c.connections_total.fetch_add(1, Relaxed);
                let stream = Arc::new(stream);
                shared.sockets.lock().unwrap_or_else(PoisonError::into_inner).insert(number, Arc::clone(&stream));
                let conn_shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new().name("vigil-conn".into()).spawn(move || {
                    connection(&stream, &conn_shared);
                    conn_shared.sockets.lock().unwrap_or_else(PoisonError::into_inner).remove(&number);
                    conn_shared.counters.connections_open.fetch_sub(1, Relaxed);
                });
                match spawned {
                    Ok(handle) => connections.push(handle),
                    Err(_) => {
                        shared.sockets.lock().unwrap_or_else(PoisonError::into_inner).remove(&number);
                        shared.counters.connections_open.fetch_sub(1, Relaxed);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                std::thread::sleep(TICK)
            }
            // A failed accept (the peer gave up, too many files): keep serving.
            Err(_) => std::thread::sleep(TICK),
        }
    }
    drop(listener);
    let force_at = *shared.force_at.get_or_init(|| Instant::now() + shared.config.shutdown_grace);
    // Connections finish on their own (readers stop at a frame boundary,
    // writers send what was read) until the grace ends; then the validator
    // runs what it holds at once instead of waiting out `max_delay`, reads
    // are cut, and writes get `FINAL_WRITE` more to go out.
    while !connections.iter().all(|c| c.is_finished()) {
        if Instant::now() >= force_at {
            shared.validator.close();
            for stream in shared.sockets.lock().unwrap_or_else(PoisonError::into_inner).values() {
                let _ = stream.shutdown(Shutdown::Read);
            }
            break;
        }
        std::thread::sleep(TICK);
    }
    for c in connections {
        let _ = c.join();
    }
    Arc::try_unwrap(shared).map_err(|_| io::Error::other("connections still running"))?;
    Ok(())
}

fn refuse(stream: Stream, shared: &Shared) {
    // Prompt, never blocking the accept loop: a small frame into an empty
    // socket buffer, or nothing.
    let _ = stream.set_write_timeout(Some(TICK));
    let message = format!("{} connections already open", shared.config.max_connections);
    let _ = (&stream).write_all(&Response::error(ErrorCode::Overloaded, message).encode(0));
    shared.counters.error_responses.fetch_add(1, Relaxed);
    let _ = stream.shutdown(Shutdown::Both);
}

/// What a response is made of.
enum Answer {
    /// An encoded frame.
    Ready(Vec<u8>),
    /// The validator's verdict, to come.
    Waiting(Pending),
}

/// What the reader hands the writer, in request order: one per request read
/// (holding one of the connection's `max_in_flight` slots and the frame's
/// charge until it is sent).
struct Outgoing<'a> {
    id: u64,
    answer: Answer,
    _charge: Option<Charge<'a>>,
    /// Close the connection once this is sent (framing broke, auth refused).
    close: bool,
}

impl<'a> Outgoing<'a> {
    fn error(id: u64, code: ErrorCode, message: String, close: bool) -> Outgoing<'a> {
        let frame = Response::error(code, message).encode(id);
        Outgoing { id, answer: Answer::Ready(frame), _charge: None, close }
    }
}

/// One connection's state shared by its reader and writer.
struct Conn<'a> {
    stream: &'a Stream,
    shared: &'a Shared,
    /// Slots for requests read and not yet answered.
    in_flight: Gate,
}

fn connection(stream: &Stream, shared: &Shared) {
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let conn = Conn { stream, shared, in_flight: Gate::new(shared.config.max_in_flight) };
    let (tx, rx) = crossbeam_channel::bounded::<Outgoing>(shared.config.max_in_flight);
    std::thread::scope(|scope| {
        scope.spawn(|| writer(&conn, rx));
        reader(&conn, tx);
    });
}

fn reader<'a>(conn: &Conn<'a>, tx: crossbeam_channel::Sender<Outgoing<'a>>) {
    let shared = conn.shared;
    let mut authenticated = shared.token.is_none();
    loop {
        // A slot for the next request before a byte of it is read, so at
        // most `max_in_flight` are ever held.
        let Some(held) = conn.in_flight.acquire(1, || shared.stopping()) else { return };
        shared.counters.requests_held.fetch_add(1, Relaxed);
        shared.counters.held_peak.fetch_max(held as u64, Relaxed);
        let out = match read_frame(conn, authenticated) {
            Ok(Some((frame, charge))) => {
                shared.counters.frames.fetch_add(1, Relaxed);
                let id = frame.header.id;
                let mut out = handle(frame, shared, &mut authenticated);
                out._charge = Some(charge);
                out.id = id;
                out
            }
            Ok(None) => {
                conn.release_slot();
                return;
            }
            Err(Refusal::Gone) => {
                conn.release_slot();
                return;
            }
            Err(Refusal::Close(code, message)) => Outgoing::error(0, code, message, true),
        };
        let close = out.close;
        if tx.send(out).is_err() || close {
            return;
        }
    }
}

impl Conn<'_> {
    fn release_slot(&self) {
        self.in_flight.release(1);
        self.shared.counters.requests_held.fetch_sub(1, Relaxed);
    }
}

/// Why a connection is closed while reading.
enum Refusal {
    /// Tell the client (id 0), then close.
    Close(ErrorCode, String),
    /// Nobody to tell (gone, cut mid-frame, timed out, shutdown): close.
    Gone,
}

/// Reads a frame and charges it against the budget, looking at the clock
/// and the shutdown flag while the stream is quiet: `Ok(None)` at end of
/// stream or at a frame boundary once shutdown has begun.
fn read_frame<'s>(conn: &Conn<'s>, authenticated: bool) -> Result<Option<(proto::Frame, Charge<'s>)>, Refusal> {
    let shared = conn.shared;
    let config = &shared.config;
    let mut prefix = [0u8; PREFIX_LEN];
    let mut begun = None;
    let got = read_full(conn, &mut prefix, &mut begun)?;
    if got == 0 {
        return Ok(None);
    }
    if got < PREFIX_LEN {
        return Err(Refusal::Gone);
    }
    let header = Header::parse(&prefix);
    let framing = |e: FrameError, code| {
        shared.counters.framing_errors.fetch_add(1, Relaxed);
        Refusal::Close(code, format!("{e}; closing the connection"))
    };
    let body_len = match header.body_len(config.max_frame) {
        Ok(n) => n,
        Err(e @ FrameError::TooShort { .. }) => return Err(framing(e, ErrorCode::FrameTooShort)),
        Err(e) => return Err(framing(e, ErrorCode::FrameTooLarge)),
    };
    // Before the token, only a small `auth` frame is read at all.
    if !authenticated && (header.kind != proto::kind::AUTH || header.length as usize > MAX_AUTH_FRAME) {
        shared.counters.unauthorized.fetch_add(1, Relaxed);
        return Err(Refusal::Close(ErrorCode::Unauthorized, "this server needs an auth frame first".into()));
    }
    let charge =
        shared.charge(frame_charge(header.kind, header.length as usize, config.max_frame)).ok_or(Refusal::Gone)?;
    // Time spent waiting for room is the server's, not the client's.
    begun = Some(Instant::now());
    let mut body = vec![0u8; body_len];
    if read_full(conn, &mut body, &mut begun)? < body.len() {
        return Err(Refusal::Gone);
    }
    Ok(Some((proto::Frame { header, body }, charge)))
}

/// Fills `buf`; returns the bytes read (short at end of stream, or 0 when
/// the connection ends between frames: shutdown, idle timeout). `begun` is
/// when the frame's first byte came.
fn read_full(conn: &Conn, buf: &mut [u8], begun: &mut Option<Instant>) -> Result<usize, Refusal> {
    let shared = conn.shared;
    let config = &shared.config;
    let mut quiet_since = Instant::now();
    let mut got = 0;
    let mut stream = conn.stream;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                got += n;
                begun.get_or_insert_with(Instant::now);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => match *begun {
                // Between frames: stop for shutdown, or when idle (nothing
                // in flight: this frame's slot is the only one taken).
                None => {
                    if shared.stopping() {
                        return Ok(0);
                    }
                    if conn.in_flight.used() > 1 {
                        quiet_since = Instant::now();
                        continue;
                    }
                    if quiet_since.elapsed() >= config.idle_timeout {
                        shared.counters.read_timeouts.fetch_add(1, Relaxed);
                        return Ok(0);
                    }
                }
                // Inside a frame: it has `frame_timeout` to arrive (less
                // once shutdown's grace is over).
                Some(t) => {
                    if t.elapsed() >= config.frame_timeout || shared.forced() {
                        shared.counters.read_timeouts.fetch_add(1, Relaxed);
                        return Err(Refusal::Gone);
                    }
                }
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Refusal::Gone),
        }
    }
    Ok(got)
}

/// Decodes and starts one request (id and charge are filled in by the
/// reader).
fn handle<'a>(frame: proto::Frame, shared: &Shared, authenticated: &mut bool) -> Outgoing<'a> {
    let h = frame.header;
    let ready = |response: Response| Outgoing {
        id: h.id,
        answer: Answer::Ready(response.encode(h.id)),
        _charge: None,
        close: false,
    };
    let error = |code, message: String| Outgoing::error(h.id, code, message, false);
    if h.version != proto::VERSION {
        let message = format!("protocol version {}, this server speaks {}", h.version, proto::VERSION);
        return error(ErrorCode::BadVersion, message);
    }
    if h.flags != 0 {
        return error(ErrorCode::BadFlags, format!("flags {:#06x}, must be 0", h.flags));
    }
    // A block is moved to the validator whole, not copied.
    if h.kind == proto::kind::SUBMIT_BLOCK {
        return submit(h.id, Request::Block(frame.body), shared);
    }
    let view = match proto::RequestView::parse(h.kind, &frame.body) {
        Ok(view) => view,
        Err(e @ proto::DecodeError::UnknownKind(_)) => return error(ErrorCode::UnknownKind, e.to_string()),
        Err(e) => return error(ErrorCode::BadBody, e.to_string()),
    };
    match view {
        proto::RequestView::SubmitBlock(_) => unreachable!("taken above"),
        proto::RequestView::VerifySignatures { rules, count, items } => {
            let mut batch = SigBatch::with_capacity(count, items.len().saturating_sub(count * (32 + 64 + 4)));
            for s in view.signatures() {
                batch.push(s.public_key, s.message, s.signature);
            }
            drop(frame);
            let rules = match rules {
                proto::Rules::Zip215 => RuleSet::Zip215,
                proto::Rules::Strict => RuleSet::Strict,
            };
            submit(h.id, Request::Signatures { rules, batch }, shared)
        }
        proto::RequestView::Hash { key, count, .. } => {
            let length = proto::HEADER_LEN + 4 + count.saturating_mul(32);
            if length > shared.config.max_frame {
                let message = format!(
                    "{count} digests make a {length}-byte response, over the limit of {} bytes",
                    shared.config.max_frame
                );
                return error(ErrorCode::ResponseTooLarge, message);
            }
            Outgoing { id: h.id, answer: Answer::Ready(hash(h.id, key, count, view)), _charge: None, close: false }
        }
        proto::RequestView::Status => ready(Response::Status(status_json(shared))),
        proto::RequestView::Auth(token) => match shared.token {
            Some(want) if blake3::hash(token) != want => {
                shared.counters.unauthorized.fetch_add(1, Relaxed);
                Outgoing::error(h.id, ErrorCode::Unauthorized, "wrong token".into(), true)
            }
            // Right, or no token needed (so a client may always send one).
            _ => {
                *authenticated = true;
                ready(Response::Authenticated)
            }
        },
    }
}

fn submit<'a>(id: u64, request: Request, shared: &Shared) -> Outgoing<'a> {
    match shared.validator.submit(request) {
        Ok(pending) => Outgoing { id, answer: Answer::Waiting(pending), _charge: None, close: false },
        Err(SubmitError::Closed) => {
            Outgoing::error(id, ErrorCode::ShuttingDown, "the server is shutting down".into(), false)
        }
        Err(SubmitError::Overloaded) => Outgoing::error(id, ErrorCode::Overloaded, "the queue is full".into(), false),
    }
}

/// The `digests` frame for a hash request, written in place: no copy of the
/// messages' list, a chunk of them at a time.
fn hash(id: u64, key: Option<[u8; 32]>, count: usize, view: proto::RequestView) -> Vec<u8> {
    const CHUNK: usize = 4096;
    let mut frame = vec![0u8; PREFIX_LEN + 4 + 32 * count];
    frame[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&(count as u32).to_le_bytes());
    let digests: &mut [[u8; 32]] = bytemuck::cast_slice_mut(&mut frame[PREFIX_LEN + 4..]);
    let mut messages = view.messages();
    let mut refs: Vec<&[u8]> = Vec::with_capacity(CHUNK.min(count));
    for out in digests.chunks_mut(CHUNK) {
        refs.clear();
        refs.extend(messages.by_ref().take(out.len()));
        match key {
            Some(key) => vigil_engine::hash::lanes::keyed_hash_many(&key, &refs, out),
            None => {
                for (d, m) in out.iter_mut().zip(&refs) {
                    *d = *blake3::hash(m).as_bytes();
                }
            }
        }
    }
    proto::finish_frame(&mut frame, proto::kind::DIGESTS, id);
    frame
}

fn status_json(shared: &Shared) -> String {
    let value = serde_json::json!({
        "protocol": proto::VERSION,
        "uptime_seconds": shared.started.elapsed().as_secs_f64(),
        "validator": shared.validator.status(),
        "server": &*shared.counters,
        "limits": {
            "max_frame": shared.config.max_frame,
            "max_in_flight": shared.config.max_in_flight,
            "max_connections": shared.config.max_connections,
            "max_buffered": shared.config.max_buffered,
        },
    });
    value.to_string()
}

/// How long writes may go on once shutdown's grace is over (answers the
/// validator gives when it is closed then).
const FINAL_WRITE: Duration = Duration::from_secs(1);

/// Writes `bytes` whole by `deadline` (or `FINAL_WRITE` after shutdown's
/// grace ends).
fn write_by(conn: &Conn, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    let mut stream = conn.stream;
    let mut at = 0;
    while at < bytes.len() {
        let deadline = match conn.shared.force_at.get() {
            Some(t) => deadline.min(*t + FINAL_WRITE),
            None => deadline,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left.min(TICK * 4)))?;
        match stream.write(&bytes[at..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => at += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends answers in request order. Small ones that are ready together are
/// gathered into one write (up to `GATHER` bytes).
fn writer<'a>(conn: &Conn<'a>, rx: crossbeam_channel::Receiver<Outgoing<'a>>) {
    const GATHER: usize = 64 << 10;
    let shared = conn.shared;
    let c = &shared.counters;
    let mut alive = true;
    let mut buffer: Vec<u8> = Vec::new();
    // Sent into `buffer`, answered once it is written.
    let mut gathered: Vec<Outgoing> = Vec::new();
    let flush = |buffer: &mut Vec<u8>, gathered: &mut Vec<Outgoing>, alive: &mut bool| {
        if *alive && !buffer.is_empty() {
            match write_by(conn, buffer, Instant::now() + shared.config.write_timeout) {
                Ok(()) => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        c.write_timeouts.fetch_add(1, Relaxed);
                    }
                    *alive = false;
                    // Wake the reader too: this connection is over.
                    let _ = conn.stream.shutdown(Shutdown::Both);
                }
            }
        }
        let counter = if *alive { &c.responses } else { &c.undelivered };
        counter.fetch_add(gathered.len() as u64, Relaxed);
        let close = gathered.iter().any(|o| o.close);
        for _ in gathered.drain(..) {
            conn.release_slot();
        }
        buffer.clear();
        if buffer.capacity() > GATHER {
            buffer.shrink_to(GATHER);
        }
        close
    };
    // Keep draining after the client has gone, so the reader never blocks
    // and every validator answer is collected.
    for mut item in rx.iter() {
        let frame = match std::mem::replace(&mut item.answer, Answer::Ready(Vec::new())) {
            Answer::Ready(frame) => frame,
            Answer::Waiting(pending) => encode_verdict(pending.wait(), item.id, shared.config.max_frame),
        };
        if frame.get(5) == Some(&proto::kind::ERROR) {
            c.error_responses.fetch_add(1, Relaxed);
        }
        if alive {
            if buffer.len() + frame.len() > GATHER && flush(&mut buffer, &mut gathered, &mut alive) {
                break;
            }
            if buffer.is_empty() && frame.len() > GATHER {
                buffer = frame;
            } else {
                buffer.extend_from_slice(&frame);
            }
        }
        gathered.push(item);
        // Write when nothing else is ready, so pipelined answers share writes.
        if (rx.is_empty() || !alive) && flush(&mut buffer, &mut gathered, &mut alive) {
            break;
        }
    }
    flush(&mut buffer, &mut gathered, &mut alive);
    let _ = conn.stream.shutdown(Shutdown::Both);
    // Answers still queued after a close: release their slots.
    for _ in rx.try_iter() {
        conn.release_slot();
    }
}

fn encode_verdict(verdict: Verdict, id: u64, max_frame: usize) -> Vec<u8> {
    let frame = to_response(verdict).encode(id);
    if frame.len() - 4 > max_frame {
        let message = format!("a {}-byte verdict, over the limit of {max_frame} bytes", frame.len() - 4);
        return Response::error(ErrorCode::ResponseTooLarge, message).encode(id);
    }
    frame
}

fn to_response(verdict: Verdict) -> Response {
    match verdict {
        Verdict::Signatures(v) => Response::SignatureVerdicts(v),
        Verdict::Block(b) => Response::BlockVerdict(block_verdict(b)),
    }
}

fn block_verdict(v: BlockVerdict) -> proto::BlockVerdict {
    let rejected = |outcome, message: String| proto::BlockVerdict {
        outcome,
        position: 0,
        height: 0,
        hash: [0; 32],
        tx_count: 0,
        failures: Vec::new(),
        message,
    };
    match v {
        BlockVerdict::Checked(r) => proto::BlockVerdict {
            outcome: if r.valid() { proto::Outcome::Valid } else { proto::Outcome::Invalid },
            position: r.position,
            height: r.height,
            hash: r.hash,
            tx_count: r.tx_count,
            failures: r
                .failures
                .iter()
                .map(|f| proto::Failure { rule: rule_index(f.rule), tx: f.tx, detail: f.detail.clone() })
                .collect(),
            message: String::new(),
        },
        BlockVerdict::Malformed { offset, reason } => {
            rejected(proto::Outcome::Malformed, format!("malformed at byte {offset}: {reason}"))
        }
        BlockVerdict::ExtraBytes { block_len, total } => rejected(
            proto::Outcome::ExtraBytes,
            format!("a block of {block_len} bytes followed by {} more; submit one block a request", total - block_len),
        ),
        BlockVerdict::TooManyChains { chain_id } => rejected(
            proto::Outcome::TooManyChains,
            format!("chain {} would be one chain too many", hex::encode(chain_id)),
        ),
    }
}

/// The rule's index in FORMAT.md's table, as the protocol numbers them.
pub fn rule_index(rule: Rule) -> u8 {
    Rule::ALL.iter().position(|r| *r == rule).expect("every rule is in ALL") as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_indices_are_the_protocols_names() {
        for rule in Rule::ALL {
            assert_eq!(proto::RULE_NAMES[rule_index(rule) as usize], rule.name());
        }
    }

    #[test]
    fn addresses_parse_and_remote_ones_are_refused() {
        assert_eq!("unix:/tmp/x".parse::<Address>().unwrap(), Address::Unix("/tmp/x".into()));
        assert!("unix:".parse::<Address>().is_err());
        assert!("http://x".parse::<Address>().is_err());
        let err = Listener::bind(&"tcp:0.0.0.0:0".parse().unwrap(), false).err().expect("refused");
        assert!(matches!(err, ListenError::NotLoopback { .. }), "{err}");
        assert!(Listener::bind(&"tcp:127.0.0.1:0".parse().unwrap(), false).is_ok());
        assert!(Listener::bind(&"tcp:0.0.0.0:0".parse().unwrap(), true).is_ok());
    }
}
