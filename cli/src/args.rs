//! Parsers for argument values: ranges, sizes, hex keys.

use crate::Fatal;
use std::ops::RangeInclusive;
use vigil_engine::shard::check_shard;
use vigil_engine::sig::SignerConfig;
#[cfg(feature = "gpu")]
use {
    std::sync::Arc,
    vigil_engine::GpuMode,
    vigil_engine::gpu::ed25519::Kernel,
    vigil_engine::gpu::{GpuError, GpuFaults, GpuOptions, GpuSigner, default_cache_dir},
};

/// Where signatures are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// rayon workers with SIMD (batch zip215).
    Cpu,
    /// The best GPU adapter, every signature batch on it; an error (exit 2) without one.
    Gpu,
    /// A hardware GPU and the CPU together (each batch split by measured
    /// throughput, small batches on the CPU) if there is one, else the CPU
    /// (and say so).
    Auto,
}

/// `VIGIL_HYBRID=1`: `--backend auto` splits batches with a software
/// adapter too (lavapipe is slower than the CPU it runs on, so by default
/// `auto` leaves it out; tests force it to check the hybrid's verdicts).
#[cfg(feature = "gpu")]
fn hybrid_forced() -> bool {
    std::env::var("VIGIL_HYBRID").is_ok_and(|v| v == "1")
}

/// Opens the best GPU as the environment says: `VIGIL_GPU_KERNEL` (a
/// kernel build, `FIELD[:WORKGROUP[:checked|unchecked]]`), the pipeline
/// cache in `$VIGIL_CACHE_DIR`, `$XDG_CACHE_HOME/vigil` or
/// `~/.cache/vigil`, and `VIGIL_GPU_FAULT` (failures to inject, for tests:
/// [`GpuFaults`]). A build that does not parse, or that the adapter cannot
/// run, is said and replaced by the fastest. The engine self-tests the
/// device as it opens it: an adapter that fails is an error.
#[cfg(feature = "gpu")]
pub fn open_gpu() -> Result<GpuSigner, GpuError> {
    let mut options = GpuOptions::new().with_cache_dir(default_cache_dir(|k| std::env::var_os(k)));
    if let Some(v) = std::env::var("VIGIL_GPU_FAULT").ok().filter(|v| !v.is_empty()) {
        let faults: GpuFaults = v.parse().map_err(|e| GpuError::Failed(format!("VIGIL_GPU_FAULT={v}: {e}")))?;
        eprintln!("vigil: VIGIL_GPU_FAULT={v}: injecting GPU failures ({faults})");
        options = options.with_faults(faults);
    }
    let requested = std::env::var("VIGIL_GPU_KERNEL").ok().filter(|v| !v.is_empty());
    let parsed = requested.as_deref().map(str::parse::<Kernel>);
    if let Some(Ok(kernel)) = &parsed {
        options = options.with_kernel(Some(*kernel));
    }
    let gpu = GpuSigner::open_with(&options)?;
    match (requested, parsed) {
        (Some(v), Some(Err(e))) => eprintln!("vigil: VIGIL_GPU_KERNEL={v}: {e}; using {}", gpu.kernel()),
        (Some(v), Some(Ok(kernel))) if kernel != gpu.kernel() => {
            eprintln!("vigil: VIGIL_GPU_KERNEL={v}: the adapter has no SHADER_INT64; using {}", gpu.kernel())
        }
        _ => {}
    }
    Ok(gpu)
}

/// What a build without the cargo feature `gpu` says when asked for one.
#[cfg(not(feature = "gpu"))]
pub const NO_GPU_BUILD: &str = "this vigil was built without GPU support (cargo feature `gpu`)";

/// The signature backend `backend` asks for: no GPU means the CPU.
#[cfg(feature = "gpu")]
pub fn open_backend(backend: Backend) -> Result<SignerConfig, Fatal> {
    let on = |gpu: GpuSigner, mode| Ok(SignerConfig::gpu(Arc::new(gpu), mode));
    match backend {
        Backend::Cpu => Ok(SignerConfig::cpu()),
        Backend::Gpu => match open_gpu() {
            Ok(gpu) => on(gpu, GpuMode::Only),
            Err(e) => Err(Fatal(format!("--backend gpu: {e}"))),
        },
        Backend::Auto => match open_gpu() {
            Ok(gpu) if !gpu.is_software() => on(gpu, GpuMode::Hybrid),
            Ok(gpu) if hybrid_forced() => {
                eprintln!(
                    "vigil: the only GPU adapter is software ({}); VIGIL_HYBRID=1: using it beside the CPU",
                    gpu.adapter().name
                );
                on(gpu, GpuMode::Hybrid)
            }
            Ok(gpu) => {
                eprintln!("vigil: the only GPU adapter is software ({}); using the CPU", gpu.adapter().name);
                Ok(SignerConfig::cpu())
            }
            Err(e) => {
                eprintln!("vigil: {e}; using the CPU");
                Ok(SignerConfig::cpu())
            }
        },
    }
}

/// The signature backend `backend` asks for, in a build without GPU
/// support: the CPU, or exit 2 for `gpu`.
#[cfg(not(feature = "gpu"))]
pub fn open_backend(backend: Backend) -> Result<SignerConfig, Fatal> {
    match backend {
        Backend::Cpu => Ok(SignerConfig::cpu()),
        Backend::Gpu => Err(Fatal(format!("--backend gpu: {NO_GPU_BUILD}"))),
        Backend::Auto => {
            eprintln!("vigil: {NO_GPU_BUILD}; using the CPU");
            Ok(SignerConfig::cpu())
        }
    }
}

/// `N` or `A..B` (inclusive; `A..=B` is accepted too).
pub fn range_u32(s: &str) -> Result<RangeInclusive<u32>, String> {
    let num = |t: &str| t.trim().parse::<u32>().map_err(|e| format!("{t:?}: {e}"));
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
        None => (num(s)?, num(s)?),
    };
    if lo > hi {
        return Err(format!("empty range {s:?}: {lo} > {hi}"));
    }
    Ok(lo..=hi)
}

/// A byte count with an optional unit: `4096`, `64KiB`, `64MiB`, `1GiB`, `10MB`.
pub fn byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size (e.g. 4096, 64KiB, 64MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

/// 32 bytes as 64 hex digits.
pub fn hex32(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s.trim()).map_err(|e| format!("{s:?} is not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("{s:?} is {} bytes, expected 32", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by CI with `--no-default-features`.
    #[cfg(not(feature = "gpu"))]
    #[test]
    fn a_build_without_the_gpu_feature_refuses_backend_gpu_and_runs_auto_on_the_cpu() {
        let err = open_backend(Backend::Gpu).unwrap_err();
        assert_eq!(err.0, format!("--backend gpu: {NO_GPU_BUILD}"));
        assert!(!open_backend(Backend::Auto).unwrap().has_gpu());
        assert!(!open_backend(Backend::Cpu).unwrap().has_gpu());
    }

    /// `--backend cpu` opens no GPU, whatever the build.
    #[test]
    fn backend_cpu_is_the_cpu_alone() {
        let cpu = open_backend(Backend::Cpu).unwrap();
        assert!(!cpu.has_gpu() && !cpu.gpu_only());
        assert_eq!(cpu.backend_name(), "cpu");
    }

    #[test]
    fn parses_ranges_and_sizes() {
        assert_eq!(range_u32("5"), Ok(5..=5));
        assert_eq!(range_u32("1..64"), Ok(1..=64));
        assert_eq!(range_u32("1..=64"), Ok(1..=64));
        assert!(range_u32("9..3").is_err());
        assert!(range_u32("x").is_err());
        assert_eq!(byte_size("64KiB"), Ok(65536));
        assert_eq!(byte_size("2MB"), Ok(2_000_000));
        assert_eq!(byte_size("100"), Ok(100));
        assert!(byte_size("12 parsecs").is_err());
        assert!(hex32("00").is_err());
        assert_eq!(position_range("..10"), Ok((0, Some(10))));
        assert_eq!(position_range("5.."), Ok((5, None)));
        assert_eq!(position_range("3..7"), Ok((3, Some(7))));
        assert!(position_range("10..10").unwrap_err().contains("empty range"));
        assert!(position_range("9..3").is_err());
        assert!(position_range("..").is_ok_and(|r| r == (0, None)));
        assert!(position_range("x..").unwrap_err().contains("not a chain position"));
        assert_eq!(threads("2"), Ok(2));
        assert!(threads("0").is_err() && threads("100000").is_err() && threads("-1").is_err());
        assert!(batch_size("0").unwrap_err().contains("from 1 to"));
        assert_eq!(hex32(&"ab".repeat(32)), Ok([0xab; 32]));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())
    }

    /// Re-running one failed index (`sbatch --array=5 …`) is an array of one
    /// task (MIN 5, COUNT 1): still shard 5 of VIGIL_SHARDS, not 0/1.
    #[test]
    fn slurm_shard_is_the_task_id_of_vigil_shards_also_for_a_one_index_rerun() {
        let rerun = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
            ("VIGIL_SHARDS", "8"),
        ];
        assert_eq!(shard_from_env(&env(&rerun)), Ok((5, 8)));
        for id in 0..4u32 {
            let id = id.to_string();
            let whole = [
                ("SLURM_ARRAY_TASK_ID", id.as_str()),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("VIGIL_SHARDS", "4"),
            ];
            assert_eq!(shard_from_env(&env(&whole)), Ok((id.parse().unwrap(), 4)));
        }
    }

    #[test]
    fn slurm_without_vigil_shards_or_with_an_index_past_it_is_an_error_saying_what_to_set() {
        let missing = [("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "1")];
        let e = shard_from_env(&env(&missing)).unwrap_err();
        assert!(e.contains("VIGIL_SHARDS is not") && e.contains("submit.sh"), "{e}");
        // An array numbered from 1 (--array=1-4) runs past the last shard.
        let past = [("SLURM_ARRAY_TASK_ID", "4"), ("VIGIL_SHARDS", "4")];
        let e = shard_from_env(&env(&past)).unwrap_err();
        assert!(e.contains("SLURM_ARRAY_TASK_ID 4") && e.contains("VIGIL_SHARDS 4"), "{e}");
        let e = shard_from_env(&env(&[("SLURM_ARRAY_TASK_ID", "9"), ("VIGIL_SHARDS", "4")])).unwrap_err();
        assert!(e.contains("SLURM_ARRAY_TASK_ID 9") && e.contains("VIGIL_SHARDS 4"), "{e}");
        let e = shard_from_env(&env(&[("SLURM_ARRAY_TASK_ID", "x"), ("VIGIL_SHARDS", "4")])).unwrap_err();
        assert!(e.contains("SLURM_ARRAY_TASK_ID"), "{e}");
        assert!(shard_from_env(&env(&[("SLURM_ARRAY_TASK_ID", "0"), ("VIGIL_SHARDS", "0")])).is_err());
    }

    #[test]
    fn kubernetes_shard_is_the_completion_index_of_vigil_shards() {
        let k8s = [("JOB_COMPLETION_INDEX", "2"), ("VIGIL_SHARDS", "3")];
        assert_eq!(shard_from_env(&env(&k8s)), Ok((2, 3)));
        // The Indexed Job wins over a Slurm variable leaking into the pod.
        let both = [("JOB_COMPLETION_INDEX", "1"), ("SLURM_ARRAY_TASK_ID", "2"), ("VIGIL_SHARDS", "3")];
        assert_eq!(shard_from_env(&env(&both)), Ok((1, 3)));
        let e = shard_from_env(&env(&[("JOB_COMPLETION_INDEX", "1")])).unwrap_err();
        assert!(e.contains("VIGIL_SHARDS is not"), "{e}");
        let e = shard_from_env(&env(&[("JOB_COMPLETION_INDEX", "3"), ("VIGIL_SHARDS", "3")])).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX 3") && e.contains("VIGIL_SHARDS 3"), "{e}");
        let e = shard_from_env(&env(&[])).unwrap_err();
        assert!(e.contains("neither JOB_COMPLETION_INDEX"), "{e}");
    }
}

/// `A..B`, `A..` (to the end) or `..B` (from 0): chain positions A <= p < B.
pub fn position_range(s: &str) -> Result<(u64, Option<u64>), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("{s:?}: expected A..B, A.. or ..B (chain positions)"))?;
    let number = |t: &str| t.parse::<u64>().map_err(|_| format!("{s:?}: {t:?} is not a chain position (0 to 2^64-1)"));
    let a = if a.is_empty() { 0 } else { number(a)? };
    let b = if b.is_empty() { None } else { Some(number(b)?) };
    match b {
        Some(b) if b < a => Err(format!("{s:?}: the end is before the start")),
        Some(b) if b == a => Err(format!("{s:?}: an empty range (A..B holds positions A to B-1)")),
        _ => Ok((a, b)),
    }
}

/// A count between `MIN` and `MAX` (a flag's range, said in the message).
pub fn count<const MIN: usize, const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a whole number from {MIN} to {MAX}")),
    }
}

/// A number of seconds from `min` to `max` (a flag's range, said in the
/// message).
pub fn seconds_in(s: &str, min: f64, max: f64) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (min..=max).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds from {min} to {max}")),
    }
}

/// An interval between reports (progress, checkpoints): 0.1 s to a day.
pub fn interval(s: &str) -> Result<f64, String> {
    seconds_in(s, 0.1, 86400.0)
}

/// `--settle`: 0 to a day.
pub fn settle(s: &str) -> Result<f64, String> {
    seconds_in(s, 0.0, 86400.0)
}

/// `--threads`: worker threads.
pub fn threads(s: &str) -> Result<usize, String> {
    count::<1, 4096>(s)
}

/// `--batch-size`: signatures a batch holds.
pub fn batch_size(s: &str) -> Result<usize, String> {
    count::<1, { 1 << 24 }>(s)
}

/// `--shard I/N` or `--shard auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    Index(u32, u32),
    Auto,
}

pub fn shard_spec(s: &str) -> Result<ShardSpec, String> {
    if s == "auto" {
        return Ok(ShardSpec::Auto);
    }
    let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected I/N (e.g. 0/4) or auto"))?;
    let i: u32 = i.parse().map_err(|e| format!("{i:?}: {e}"))?;
    let n: u32 = n.parse().map_err(|e| format!("{n:?}: {e}"))?;
    check_shard(i, n).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(ShardSpec::Index(i, n))
}

impl ShardSpec {
    /// (I, N); `auto` reads the scheduler's environment.
    pub fn resolve(self) -> Result<(u32, u32), Fatal> {
        match self {
            ShardSpec::Index(i, n) => Ok((i, n)),
            ShardSpec::Auto => {
                shard_from_env(&|k| std::env::var(k).ok()).map_err(|e| Fatal(format!("--shard auto: {e}")))
            }
        }
    }
}

/// I and N for `--shard auto`. N is always explicit, `VIGIL_SHARDS` (the
/// Job's `completions`; `deploy/slurm/submit.sh` exports it), never inferred
/// from the scheduler: I is `JOB_COMPLETION_INDEX` in a Kubernetes Indexed
/// Job, else `SLURM_ARRAY_TASK_ID` in a Slurm array numbered from 0. The
/// array's own size (`SLURM_ARRAY_TASK_MIN`/`COUNT`) is not used: re-running
/// one failed index (`sbatch --array=5 …`) makes an array of one task, and it
/// must still verify shard 5 of N, not the whole chain.
pub fn shard_from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<(u32, u32), String> {
    let number = |k: &str| -> Result<Option<u32>, String> {
        var(k).map(|v| v.trim().parse::<u32>().map_err(|e| format!("{k}={v:?}: {e}"))).transpose()
    };
    let (i, n) = if let Some(i) = number("JOB_COMPLETION_INDEX")? {
        let n = number("VIGIL_SHARDS")?.ok_or(
            "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but VIGIL_SHARDS is not: set it in the manifest to the Job's completions",
        )?;
        if i >= n {
            return Err(format!(
                "JOB_COMPLETION_INDEX {i} is not below VIGIL_SHARDS {n} (set VIGIL_SHARDS to the Job's completions)"
            ));
        }
        (i, n)
    } else if let Some(i) = number("SLURM_ARRAY_TASK_ID")? {
        let n = number("VIGIL_SHARDS")?.ok_or(
            "SLURM_ARRAY_TASK_ID is set (a Slurm array) but VIGIL_SHARDS is not: export VIGIL_SHARDS=N, the number of shards, to every task (deploy/slurm/submit.sh does)",
        )?;
        if i >= n {
            return Err(format!(
                "SLURM_ARRAY_TASK_ID {i} is not below VIGIL_SHARDS {n}: the array must be numbered 0 to VIGIL_SHARDS-1 (--array=0-{})",
                n.saturating_sub(1)
            ));
        }
        (i, n)
    } else {
        return Err(
            "neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm job array) is set"
                .into(),
        );
    };
    check_shard(i, n).map_err(|e| e.to_string())?;
    Ok((i, n))
}
