//! What a GPU test does without an adapter: say so and pass, unless
//! `VIGIL_REQUIRE_GPU=1` (CI, on lavapipe), where it fails.

use std::fmt::Display;

/// The opened device, or `None` after a loud skip notice.
pub fn or_skip<T, E: Display>(opened: Result<T, E>) -> Option<T> {
    match opened {
        Ok(device) => Some(device),
        Err(e) if std::env::var("VIGIL_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("VIGIL_REQUIRE_GPU=1 but {e}"),
        Err(e) => {
            eprintln!("SKIPPING GPU test: {e}");
            None
        }
    }
}

/// A verifier run's report, comparable across backends: (offset, height,
/// failures as (rule, tx)) per invalid block, and (offset, reason) per
/// malformed block.
pub type Report = (Vec<(u64, u64, Vec<(String, Option<u32>)>)>, Vec<(u64, String)>);

pub fn report(files: &[std::path::PathBuf], opts: vigil_engine::VerifyOptions) -> Report {
    let mut sink = vigil_engine::CollectSink::default();
    vigil_engine::Verifier::new(opts).verify_files(files, &mut sink).unwrap();
    let blocks = sink
        .blocks
        .iter()
        .map(|b| (b.offset, b.height, b.failures.iter().map(|f| (f.rule.name().to_owned(), f.tx)).collect()))
        .collect();
    let malformed = sink.malformed.iter().map(|m| (m.offset, m.reason.to_string())).collect();
    (blocks, malformed)
}

/// The options the CLI opens a GPU with (the pipeline cache in
/// `$VIGIL_CACHE_DIR`, `$XDG_CACHE_HOME/vigil` or `~/.cache/vigil`), so
/// pipelines compile once across test runs.
pub fn options() -> vigil_engine::gpu::GpuOptions {
    vigil_engine::gpu::GpuOptions::new().with_cache_dir(vigil_engine::gpu::default_cache_dir(|k| std::env::var_os(k)))
}
