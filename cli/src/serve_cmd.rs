//! `vigil serve`: the validation coprocessor on a local socket (protocol v1,
//! docs/PROTOCOL.md). SIGTERM or SIGINT: stop accepting, answer everything
//! in flight within `--shutdown-grace`, exit 0.

use crate::{Fatal, args, init_threads, verify_cmd::read_authorities};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use vigil_engine::{RuleSet, Validator, ValidatorConfig};
use vigil_server::{self as server, Address, Listener, ServerConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// unix:PATH or tcp:HOST:PORT (loopback only unless --allow-remote).
    #[arg(long, default_value = "tcp:127.0.0.1:7411")]
    listen: Address,
    /// Listen on a non-loopback address (needs --token-file: the protocol
    /// is not encrypted, so use it on a network you trust or over a tunnel).
    #[arg(long)]
    allow_remote: bool,
    /// File holding the shared secret every connection must send first (an
    /// `auth` frame); required with --allow-remote on a non-loopback address.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Permissions of a unix socket, in octal (who may connect).
    #[arg(long, default_value = "0600", value_parser = socket_mode)]
    socket_mode: u32,
    /// Signatures a batch holds before it runs without waiting.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    max_batch: u64,
    /// Longest a request waits for others to share its batch, in microseconds (at most 10 s).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    max_delay_us: u64,
    /// Bytes of queued requests before reading from clients slows down (64KiB to 64GiB).
    #[arg(long, default_value = "256MiB", value_parser = args::byte_size)]
    max_queue: u64,
    /// Largest frame accepted and largest response sent (4KiB to 1GiB).
    #[arg(long, default_value = "64MiB", value_parser = args::byte_size)]
    max_frame: u64,
    /// Bytes of frames being received, requests being served and responses
    /// waiting to be sent, all connections together; at least 2.125 x
    /// --max-frame + 64KiB.
    #[arg(long, default_value = "512MiB", value_parser = args::byte_size)]
    max_buffered: u64,
    /// Requests read from one connection and not yet answered.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_in_flight: u64,
    /// Connections served at once (lowered, with a warning, to what the
    /// open-file limit allows).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_connections: u64,
    /// Seconds a connection with nothing in flight may stay silent.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Seconds a frame has to arrive whole once it has begun.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    frame_timeout: u64,
    /// Seconds a client has to take a response before it is dropped.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    write_timeout: u64,
    /// Seconds to finish after SIGTERM before every connection is closed.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    shutdown_grace: u64,
    /// Pin the chain id (one chain); otherwise each chain id is its own chain.
    #[arg(long, value_parser = args::hex32)]
    chain_id: Option<[u8; 32]>,
    /// File of proposer public keys (hex, one a line) every block must be proposed by.
    #[arg(long)]
    authorities: Option<PathBuf>,
    /// Signature rules for blocks (signature requests name their own).
    #[arg(long, default_value = "zip215")]
    rules: RuleSet,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = args::threads)]
    threads: Option<usize>,
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: args::Backend,
    /// Serve Prometheus metrics on http://ADDR/metrics (loopback only unless
    /// --allow-remote; port 0 picks one and says which).
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<std::net::SocketAddr>,
}

fn socket_mode(s: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{s:?} is not an octal mode (e.g. 0600, 0660)"))?;
    if mode > 0o777 {
        return Err(format!("{s:?}: a socket mode is at most 0777"));
    }
    Ok(mode)
}

/// `value` when it is within `lo..=hi`, else a message naming the flag.
fn within(flag: &str, value: u64, lo: u64, hi: u64) -> Result<usize, Fatal> {
    if !(lo..=hi).contains(&value) {
        return Err(Fatal(format!("{flag} {value} is out of range: {lo} to {hi} bytes")));
    }
    usize::try_from(value).map_err(|_| Fatal(format!("{flag} {value} does not fit in memory here")))
}

/// The shared secret: the file's content without trailing whitespace.
fn read_token(path: &std::path::Path) -> Result<Vec<u8>, Fatal> {
    let mut token = std::fs::read(path).map_err(|e| Fatal(format!("--token-file {}: {e}", path.display())))?;
    while token.last().is_some_and(u8::is_ascii_whitespace) {
        token.pop();
    }
    if token.len() < 16 {
        return Err(Fatal(format!("--token-file {}: a token must be at least 16 bytes", path.display())));
    }
    Ok(token)
}

pub fn run(a: ServeArgs) -> Result<u8, Fatal> {
    init_threads(a.threads)?;
    let max_frame = within("--max-frame", a.max_frame, 4 << 10, 1 << 30)?;
    let max_queue = within("--max-queue", a.max_queue, 64 << 10, 64 << 30)?;
    let max_buffered = within("--max-buffered", a.max_buffered, 1 << 20, 1 << 40)?;
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    let mut server_config = ServerConfig {
        max_frame,
        max_in_flight: a.max_in_flight as usize,
        max_connections: a.max_connections as usize,
        max_buffered,
        idle_timeout: Duration::from_secs(a.idle_timeout),
        frame_timeout: Duration::from_secs(a.frame_timeout),
        write_timeout: Duration::from_secs(a.write_timeout),
        shutdown_grace: Duration::from_secs(a.shutdown_grace),
        token,
    };
    if server_config.max_buffered < server_config.min_buffered() {
        return Err(Fatal(format!(
            "--max-buffered {} is too small for --max-frame {}: it must be at least {} (2.125 x max-frame + 64KiB)",
            a.max_buffered,
            a.max_frame,
            server_config.min_buffered()
        )));
    }
    server::return_large_buffers();
    // Each connection takes a file descriptor: fit the limit, never hang
    // new clients in the accept queue.
    let files = server::raise_open_file_limit()?;
    let fits = files.saturating_sub(server::RESERVED_FILES).max(1) as usize;
    if server_config.max_connections > fits {
        eprintln!(
            "vigil: warning: the open-file limit is {files}: serving at most {fits} connections, not {}",
            server_config.max_connections
        );
        server_config.max_connections = fits;
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))?;
    }
    let authorities = a.authorities.as_deref().map(read_authorities).transpose()?;
    let backend = args::open_backend(a.backend)?;
    let mut config = ValidatorConfig::default();
    config.chain_id = a.chain_id;
    config.authorities = authorities;
    config.rules = a.rules;
    config.max_batch = a.max_batch as usize;
    config.max_delay = Duration::from_micros(a.max_delay_us);
    config.max_queue_bytes = max_queue;
    config.signer = backend;
    let listener = Listener::bind_with_mode(&a.listen, a.allow_remote, a.socket_mode)?;
    if server_config.token.is_none() && !listener.is_loopback() {
        return Err(Fatal("--allow-remote on a non-loopback address needs --token-file".into()));
    }
    let validator = Arc::new(Validator::new(config));
    eprintln!(
        "vigil: serving protocol v{} on {} (max batch {}, max delay {} µs, backend {}{})",
        vigil_protocol::VERSION,
        listener.local_address(),
        a.max_batch,
        a.max_delay_us,
        validator.status().backend,
        if server_config.token.is_some() { ", token required" } else { "" }
    );
    let counters = Arc::new(server::ServerCounters::default());
    let metrics = a
        .metrics
        .map(|addr| {
            let export = crate::metrics::serve_export(Arc::clone(&validator), Arc::clone(&counters));
            crate::metrics::serve(addr, a.allow_remote, export)
        })
        .transpose()?;
    server::serve_counted(listener, Arc::clone(&validator), server_config, shutdown, Arc::clone(&counters))?;
    drop(metrics);
    let counters = Arc::try_unwrap(counters).map_err(|_| Fatal("the server's counters are still shared".into()))?;
    let status = validator.status();
    if let Ok(v) = Arc::try_unwrap(validator) {
        v.shutdown();
    }
    eprintln!(
        "vigil: stopped: {} connections, {} requests answered ({} errors, {} undelivered), {} blocks, {} signatures",
        counters.connections_total.into_inner(),
        counters.responses.into_inner(),
        counters.error_responses.into_inner(),
        counters.undelivered.into_inner(),
        status.blocks,
        status.signatures
    );
    Ok(0)
}
