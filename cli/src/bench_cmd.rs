//! `vigil bench`: runs the separate `vigil-bench` binary (crate
//! `vigil-benches`), so that the product binary carries no baselines, load
//! generator or plotting. Every argument goes to it unchanged.

use crate::Fatal;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct BenchArgs {
    /// The arguments of `vigil-bench` (`vigil bench --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

/// The program's name.
const BENCH: &str = "vigil-bench";

/// `vigil-bench` beside this executable, else the first on `PATH`.
fn find() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.canonicalize().ok()?.parent()?.join(BENCH)));
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    beside.into_iter().chain(on_path.map(|dir| dir.join(BENCH))).find(|p| p.is_file())
}

/// Replaces this process with `vigil-bench ARGS…` (its output and exit code
/// are the command's).
pub fn forward(a: BenchArgs) -> Result<u8, Fatal> {
    use std::os::unix::process::CommandExt;
    let Some(bench) = find() else {
        return Err(Fatal(format!(
            "`vigil bench` runs the {BENCH} binary, found neither beside this executable nor on PATH: install it \
             with `cargo install --locked --path benches --bin {BENCH}` (or build it: `cargo build --release -p \
             vigil-benches`)"
        )));
    };
    let err = std::process::Command::new(&bench).args(a.args).exec();
    Err(Fatal(format!("{}: {err}", bench.display())))
}
