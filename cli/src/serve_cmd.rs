//! `vigil serve`: the validation coprocessor on a local socket (protocol v1,
//! docs/PROTOCOL.md). SIGTERM or SIGINT: stop accepting, answer everything
//! in flight, exit 0.

use crate::{Fatal, args, init_threads, verify_cmd::read_authorities};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use vigil_engine::server::{self, Address, Listener, ServerConfig};
use vigil_engine::{RuleSet, Validator, ValidatorConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// unix:PATH or tcp:HOST:PORT (loopback only unless --allow-remote).
    #[arg(long, default_value = "tcp:127.0.0.1:7411")]
    listen: Address,
    /// Listen on a non-loopback address (the protocol has no authentication).
    #[arg(long)]
    allow_remote: bool,
    /// Signatures a batch holds before it runs without waiting.
    #[arg(long, default_value_t = 8192)]
    max_batch: usize,
    /// Longest a request waits for others to share its batch, in microseconds.
    #[arg(long, default_value_t = 2000)]
    max_delay_us: u64,
    /// Bytes of queued requests before reading from clients slows down.
    #[arg(long, default_value = "256MiB", value_parser = args::byte_size)]
    max_queue: u64,
    /// Largest frame accepted; a bigger length field closes the connection.
    #[arg(long, default_value = "64MiB", value_parser = args::byte_size)]
    max_frame: u64,
    /// Requests read from one connection and not yet answered.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Connections served at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
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
    #[arg(long)]
    threads: Option<usize>,
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: args::Backend,
}

pub fn run(a: ServeArgs) -> Result<u8, Fatal> {
    init_threads(a.threads)?;
    if a.max_batch == 0 || a.max_in_flight == 0 || a.max_connections == 0 {
        return Err(Fatal("--max-batch, --max-in-flight and --max-connections must be at least 1".into()));
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))?;
    }
    let authorities = a.authorities.as_deref().map(read_authorities).transpose()?;
    let backend = args::open_backend(a.backend)?;
    let config = ValidatorConfig {
        chain_id: a.chain_id,
        authorities,
        rules: a.rules,
        max_batch: a.max_batch,
        max_delay: Duration::from_micros(a.max_delay_us),
        max_queue_bytes: usize::try_from(a.max_queue).unwrap_or(usize::MAX),
        gpu: backend.gpu,
        gpu_mode: backend.mode,
        ..ValidatorConfig::default()
    };
    let listener = Listener::bind(&a.listen, a.allow_remote)?;
    let validator = Arc::new(Validator::new(config));
    eprintln!(
        "vigil: serving protocol v{} on {} (max batch {}, max delay {} µs, backend {})",
        vigil_protocol::VERSION,
        listener.local_address(),
        a.max_batch,
        a.max_delay_us,
        validator.status().backend
    );
    let server_config = ServerConfig {
        max_frame: usize::try_from(a.max_frame).unwrap_or(usize::MAX),
        max_in_flight: a.max_in_flight,
        max_connections: a.max_connections,
        ..ServerConfig::default()
    };
    let counters = server::serve(listener, Arc::clone(&validator), server_config, shutdown)?;
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
