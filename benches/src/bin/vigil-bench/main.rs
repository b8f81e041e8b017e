//! `vigil-bench`: what `vigil bench` runs. Measures each stage and end to
//! end against baselines on this machine, in one run (docs/performance.md).
//! A binary of its own so that the product binary, `vigil`, carries none of
//! the baselines, load generator or plotting.

mod bench_cmd;

use clap::Parser;
use std::process::ExitCode;
use vigil_cli::{EXIT_ERROR, Fatal};

/// Measure each stage and end to end against baselines on this machine.
#[derive(Parser)]
#[command(name = "vigil bench", bin_name = "vigil bench")]
struct Cli {
    #[command(flatten)]
    args: bench_cmd::BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vigil_cli::log::init(vigil_cli::log::LogFormat::Text);
    match bench_cmd::run_bench(cli.args) {
        Ok(code) => ExitCode::from(code),
        Err(Fatal(msg)) => {
            eprintln!("vigil: error: {msg}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
