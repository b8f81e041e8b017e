//! `vigil serve`: the [`Validator`] behind a local socket, speaking protocol
//! v1 (`docs/PROTOCOL.md`, crate `vigil-protocol`).
//!
//! One thread reads each connection and one writes it. The reader decodes a
//! frame and hands the work to the validator, waiting when its queue is full
//! (so reading slows instead of memory growing); the writer sends the
//! answers in request order. At most `max_in_flight` requests per
//! connection are between the two, so a client that pipelines deeply is
//! held back too. A frame that breaks the framing (a length below the header
//! or above `max_frame`) gets an error and the connection is closed; any
//! other bad request gets an error response and the connection goes on.
//!
//! Shutdown (`shutdown` flag, set by SIGTERM in the CLI): the listener stops
//! accepting, readers stop at the next frame boundary, every request already
//! read is answered, then [`serve`] returns.

use crate::hash::Digest;
use crate::report::Rule;
use crate::sig::RuleSet;
use crate::validator::{BlockVerdict, Pending, Request, SigBatch, SubmitError, Validator, Verdict};
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use vigil_protocol::transport::Stream;
use vigil_protocol::{self as proto, ErrorCode, FrameError, Header, PREFIX_LEN, Response};

pub use vigil_protocol::transport::Address;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{address}: {source}")]
    Io { address: String, source: io::Error },
    #[error(
        "{address} resolves to {addr}, which is not a loopback address; pass --allow-remote to serve other machines (the protocol has no authentication)"
    )]
    NotLoopback { address: String, addr: SocketAddr },
    #[error("{address}: resolves to no address")]
    NoAddress { address: String },
}

/// A bound listening socket.
pub enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Listener {
    /// Binds `address`; TCP addresses must be loopback unless
    /// `allow_remote`. A stale unix socket file (nothing listening) is
    /// replaced; a live one is an error.
    pub fn bind(address: &Address, allow_remote: bool) -> Result<Listener, ListenError> {
        let io_err = |source| ListenError::Io { address: address.to_string(), source };
        match address {
            Address::Unix(path) => {
                if path.exists() && UnixStream::connect(path).is_err() {
                    std::fs::remove_file(path).map_err(io_err)?;
                }
                Ok(Listener::Unix(UnixListener::bind(path).map_err(io_err)?, path.clone()))
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

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest frame accepted (length field).
    pub max_frame: usize,
    /// Requests of one connection read but not yet answered.
    pub max_in_flight: usize,
    /// Connections served at once; more are told `overloaded` and closed.
    pub max_connections: usize,
    /// How long a reader may wait inside a frame once shutdown has begun.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: proto::DEFAULT_MAX_FRAME,
            max_in_flight: 256,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// The server's own counters (the validator has its own).
#[derive(Debug, Default, serde::Serialize)]
pub struct ServerCounters {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    /// Connections refused for `max_connections`.
    pub connections_refused: AtomicU64,
    pub frames: AtomicU64,
    pub responses: AtomicU64,
    /// Error responses, by any cause.
    pub error_responses: AtomicU64,
    /// Connections closed because their framing broke.
    pub framing_errors: AtomicU64,
    /// Responses that could not be delivered (the client had gone).
    pub undelivered: AtomicU64,
}

/// How often blocked reads and accepts look at the shutdown flag.
const TICK: Duration = Duration::from_millis(50);

struct Shared {
    validator: Arc<Validator>,
    config: ServerConfig,
    shutdown: Arc<AtomicBool>,
    counters: ServerCounters,
    started: Instant,
}

/// Serves `listener` until `shutdown` is set, then answers everything in
/// flight and returns the counters.
pub fn serve(
    listener: Listener,
    validator: Arc<Validator>,
    config: ServerConfig,
    shutdown: Arc<AtomicBool>,
) -> io::Result<ServerCounters> {
    listener.set_nonblocking()?;
    let shared =
        Arc::new(Shared { validator, config, shutdown, counters: ServerCounters::default(), started: Instant::now() });
    let mut connections = Vec::new();
    while !shared.shutdown.load(Relaxed) {
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
                c.connections_total.fetch_add(1, Relaxed);
                let conn_shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new().name("vigil-conn".into()).spawn(move || {
                    connection(stream, &conn_shared);
                    conn_shared.counters.connections_open.fetch_sub(1, Relaxed);
                });
                match spawned {
                    Ok(handle) => connections.push(handle),
                    Err(_) => {
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
    for c in connections {
        let _ = c.join();
    }
    let shared = Arc::try_unwrap(shared).map_err(|_| io::Error::other("connections still running"))?;
    Ok(shared.counters)
}

fn refuse(mut stream: Stream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(TICK));
    let message = format!("{} connections already open", shared.config.max_connections);
    let _ = stream.write_all(&Response::error(ErrorCode::Overloaded, message).encode(0));
    shared.counters.error_responses.fetch_add(1, Relaxed);
    let _ = stream.shutdown(Shutdown::Both);
}

/// What the reader hands the writer, in request order.
enum Outgoing {
    Ready(u64, Response),
    Waiting(u64, Pending),
    /// Send this error, then close: the framing broke.
    Close(Response),
}

fn connection(stream: Stream, shared: &Shared) {
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let Ok(write_half) = stream.try_clone() else { return };
    let (tx, rx) = crossbeam_channel::bounded::<Outgoing>(shared.config.max_in_flight.max(1));
    std::thread::scope(|scope| {
        scope.spawn(|| writer(write_half, rx, shared));
        reader(stream, tx, shared);
    });
}

fn reader(mut stream: Stream, tx: crossbeam_channel::Sender<Outgoing>, shared: &Shared) {
    loop {
        let frame = match read_frame(&mut stream, shared) {
            Ok(Some(frame)) => frame,
            // End of stream, shutdown between frames, or a dead socket.
            Ok(None) => return,
            Err(e) => {
                let code = match e {
                    FrameError::TooShort { .. } => ErrorCode::FrameTooShort,
                    FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                    // The connection is gone or cut mid-frame: nobody to tell.
                    FrameError::Truncated | FrameError::Io(_) => return,
                };
                shared.counters.framing_errors.fetch_add(1, Relaxed);
                let _ = tx.send(Outgoing::Close(Response::error(code, format!("{e}; closing the connection"))));
                return;
            }
        };
        shared.counters.frames.fetch_add(1, Relaxed);
        let id = frame.header.id;
        let out = match handle(frame, shared) {
            Ok(out) => out,
            Err(response) => Outgoing::Ready(id, response),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}

/// Reads a frame, looking at the shutdown flag while the stream is idle:
/// `Ok(None)` at end of stream or at a frame boundary once shutdown has
/// begun; a frame already begun gets `shutdown_grace` to arrive.
fn read_frame(stream: &mut Stream, shared: &Shared) -> Result<Option<proto::Frame>, FrameError> {
    let mut prefix = [0u8; PREFIX_LEN];
    let mut deadline = None;
    let got = read_full(stream, &mut prefix, 0, shared, &mut deadline)?;
    if got == 0 {
        return Ok(None);
    }
    if got < PREFIX_LEN {
        return Err(FrameError::Truncated);
    }
    let header = Header::parse(&prefix);
    let mut body = vec![0u8; header.body_len(shared.config.max_frame)?];
    if read_full(stream, &mut body, PREFIX_LEN, shared, &mut deadline)? < body.len() {
        return Err(FrameError::Truncated);
    }
    Ok(Some(proto::Frame { header, body }))
}

/// Fills `buf`; returns the bytes read (short at end of stream, or 0 when
/// shutdown came before the frame began). `before` is how much of the frame
/// was already read.
fn read_full(
    stream: &mut Stream,
    buf: &mut [u8],
    before: usize,
    shared: &Shared,
    deadline: &mut Option<Instant>,
) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Ok(got),
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if shared.shutdown.load(Relaxed) {
                    if before + got == 0 {
                        return Ok(0);
                    }
                    let d = *deadline.get_or_insert_with(|| Instant::now() + shared.config.shutdown_grace);
                    if Instant::now() >= d {
                        return Err(FrameError::Truncated);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Decodes and starts one request: `Err` is an immediate error response.
fn handle(frame: proto::Frame, shared: &Shared) -> Result<Outgoing, Response> {
    let h = frame.header;
    if h.version != proto::VERSION {
        return Err(Response::error(
            ErrorCode::BadVersion,
            format!("protocol version {}, this server speaks {}", h.version, proto::VERSION),
        ));
    }
    if h.flags != 0 {
        return Err(Response::error(ErrorCode::BadFlags, format!("flags {:#06x}, must be 0", h.flags)));
    }
    let request = proto::Request::decode(h.kind, &frame.body).map_err(|e| match e {
        proto::DecodeError::UnknownKind(_) => Response::error(ErrorCode::UnknownKind, e.to_string()),
        e => Response::error(ErrorCode::BadBody, e.to_string()),
    })?;
    let submit = |request: Request| match shared.validator.submit(request) {
        Ok(pending) => Ok(Outgoing::Waiting(h.id, pending)),
        Err(SubmitError::Closed) => Err(Response::error(ErrorCode::ShuttingDown, "the server is shutting down")),
        Err(SubmitError::Overloaded) => Err(Response::error(ErrorCode::Overloaded, "the queue is full")),
    };
    match request {
        proto::Request::SubmitBlock(bytes) => submit(Request::Block(bytes)),
        proto::Request::VerifySignatures { rules, signatures } => {
            let mut batch = SigBatch::new();
            for s in &signatures {
                batch.push(&s.public_key, &s.message, &s.signature);
            }
            let rules = match rules {
                proto::Rules::Zip215 => RuleSet::Zip215,
                proto::Rules::Strict => RuleSet::Strict,
            };
            submit(Request::Signatures { rules, batch })
        }
        proto::Request::Hash { key, messages } => Ok(Outgoing::Ready(h.id, Response::Digests(hash(key, &messages)))),
        proto::Request::Status => Ok(Outgoing::Ready(h.id, Response::Status(status_json(shared)))),
    }
}

fn hash(key: Option<[u8; 32]>, messages: &[Vec<u8>]) -> Vec<Digest> {
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    match key {
        Some(key) => {
            let mut out = vec![[0u8; 32]; refs.len()];
            crate::multihash::keyed_hash_many(&key, &refs, &mut out);
            out
        }
        None => refs.iter().map(|m| *blake3::hash(m).as_bytes()).collect(),
    }
}

fn status_json(shared: &Shared) -> String {
    let value = serde_json::json!({
        "protocol": proto::VERSION,
        "uptime_seconds": shared.started.elapsed().as_secs_f64(),
        "validator": shared.validator.status(),
        "server": &shared.counters,
    });
    value.to_string()
}

fn writer(stream: Stream, rx: crossbeam_channel::Receiver<Outgoing>, shared: &Shared) {
    let mut out = BufWriter::new(stream);
    let mut alive = true;
    let c = &shared.counters;
    // Keep draining after the client has gone, so the reader never blocks on
    // a full channel and every validator answer is collected.
    for item in rx.iter() {
        let (id, response, close) = match item {
            Outgoing::Ready(id, r) => (id, r, false),
            Outgoing::Waiting(id, pending) => (id, to_response(pending.wait()), false),
            Outgoing::Close(r) => (0, r, true),
        };
        if matches!(response, Response::Error { .. }) {
            c.error_responses.fetch_add(1, Relaxed);
        }
        if alive {
            alive = out.write_all(&response.encode(id)).is_ok();
            // Flush when nothing else is ready, so pipelined answers share writes.
            if alive && rx.is_empty() {
                alive = out.flush().is_ok();
            }
        }
        if alive {
            c.responses.fetch_add(1, Relaxed);
        } else {
            c.undelivered.fetch_add(1, Relaxed);
        }
        if close {
            break;
        }
    }
    let _ = out.flush();
    if let Ok(stream) = out.into_inner() {
        let _ = stream.shutdown(Shutdown::Both);
    }
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
