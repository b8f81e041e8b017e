//! The `vigil-bench` binary (what `vigil bench` runs). Having an integration
//! test also makes `cargo test --workspace` build the binary, which the CLI's
//! `vigil bench` tests run through `vigil` (it looks beside itself).

use std::process::Command;

#[test]
fn vigil_bench_refuses_absurd_flags_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-bench")).args(["--seconds", "nan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("from 0.01 to 3600"), "{err}");
}

#[test]
fn vigil_bench_help_is_vigil_bench() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-bench")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: vigil bench"), "{help}");
}
