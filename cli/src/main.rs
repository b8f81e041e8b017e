//! `vigil`: argument parsing and presentation over `vigil-engine`. No
//! validation logic lives here.

mod bench_cmd;
mod devices_cmd;
mod gen_cmd;
mod inspect_cmd;
mod lines;
mod metrics;
mod serve_cmd;
mod sigs_cmd;
mod verify_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vigil_cli::{EXIT_ERROR, EXIT_INVALID, Fatal, args, init_threads, log};

#[derive(Parser)]
#[command(name = "vigil", version, about = "GPU- and SIMD-accelerated block validation (chain format v1)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How diagnostics are written on stderr: `vigil: message` lines, or JSON
    /// objects (levels and targets from RUST_LOG).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: log::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every rule of a chain (files, or directories of *.vblk).
    Verify(verify_cmd::VerifyArgs),
    /// Generate a valid synthetic chain deterministically (optionally with faults).
    Gen(gen_cmd::GenArgs),
    /// Show block headers (and with -v transactions) of a segment file.
    Inspect(inspect_cmd::InspectArgs),
    /// Check raw ed25519 signatures: JSON lines {"pubkey","msg","sig"} (hex).
    Sigs(sigs_cmd::SigsArgs),
    /// Measure each stage and end to end against baselines on this machine.
    Bench(bench_cmd::BenchArgs),
    /// List the GPU adapters (backend, type, features used).
    Devices(devices_cmd::DevicesArgs),
    /// Serve blocks and signature batches to a node over a local socket (docs/PROTOCOL.md).
    Serve(serve_cmd::ServeArgs),
    /// Join range summaries (verify --summary) into the whole chain's report.
    Stitch(StitchArgs),
    /// Record where every block is, for `verify --shard/--range --index` (no hashing).
    Index(IndexArgs),
}

#[derive(clap::Args)]
struct IndexArgs {
    /// Segment files, or directories of *.vblk files: the chain, as given to verify.
    #[arg(required = true)]
    paths: Vec<std::path::PathBuf>,
    /// Where to write the index.
    #[arg(long, short)]
    output: std::path::PathBuf,
    /// Read files with plain reads instead of mapping them.
    #[arg(long)]
    no_mmap: bool,
}

#[derive(clap::Args)]
struct StitchArgs {
    /// Summaries written by `vigil verify --range/--shard ... --summary FILE`, any order.
    #[arg(required = true)]
    summaries: Vec<std::path::PathBuf>,
    /// NDJSON on stdout, as `vigil verify --json`.
    #[arg(long)]
    json: bool,
    /// The chain (a file or directory, as given to verify; repeat for
    /// several): re-hash it and refuse summaries made from other bytes.
    #[arg(long, value_name = "PATH")]
    chain: Vec<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init(cli.log_format);
    // A mapped segment that shrinks under a run is reported by name with
    // exit 2, not a bare "Bus error" (vigil_engine::input::sigbus).
    if let Err(e) = vigil_engine::input::sigbus::install_handler() {
        eprintln!("vigil: warning: no SIGBUS handler ({e}): a mapped file that shrinks will end the run unexplained");
    }
    if !matches!(cli.command, Command::Serve(_) | Command::Bench(_)) {
        // A reader that closes our output (`| head`) stops us at once and
        // quietly, with the status of a process ended by SIGPIPE (141 in a
        // shell), as for other Unix tools: Rust ignores SIGPIPE, so every
        // write would fail with EPIPE (and `eprintln!` panic) instead. The
        // server (and the bench, which runs one) keeps it ignored: a client
        // that hangs up is not fatal.
        // SAFETY: setting a signal's disposition to the default, before
        // any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let cli_format = cli.log_format;
    let result = match cli.command {
        Command::Verify(a) => verify_cmd::run(a),
        Command::Gen(a) => gen_cmd::run(a),
        Command::Inspect(a) => inspect_cmd::run(a),
        Command::Sigs(a) => sigs_cmd::run(a),
        Command::Bench(a) => bench_cmd::forward(a),
        Command::Devices(a) => devices_cmd::run(a),
        Command::Serve(a) => serve_cmd::run(a),
        Command::Stitch(a) => verify_cmd::stitch(&a.summaries, a.json, &a.chain),
        Command::Index(a) => verify_cmd::index(&a.paths, &a.output, a.no_mmap),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Fatal(msg)) => {
            match cli_format {
                log::LogFormat::Text => eprintln!("vigil: error: {msg}"),
                log::LogFormat::Json => tracing::error!("{msg}"),
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}
