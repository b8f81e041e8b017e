//! `vigil bench --kernels`: the GPU's kernels alone, with their inputs
//! already on the device (the ceiling the end-to-end path can approach), and
//! what moving data to the device costs; every kernel's output checked
//! against the CPU in the same run.

use super::{Row, fmt_rate, rate, row};
use rayon::prelude::*;
use std::time::Instant;
use vigil_engine::gpu::GpuSigner;
use vigil_engine::gpu::blake3::GpuBlake3;
use vigil_engine::gpu::ed25519::{GpuEd25519, Kernel, Verdicts};
use vigil_engine::sig::{self, RuleSet, SigItem};

#[derive(Debug, Clone)]
pub struct KernelOptions {
    /// Signatures per dispatch for each build (64k+ for a real GPU).
    pub sigs: usize,
    /// Builds of the ed25519 kernel to measure (the adapter's default first
    /// when empty).
    pub kernels: Vec<Kernel>,
    /// Batch sizes to measure the default build at (besides `sigs`).
    pub sizes: Vec<usize>,
    /// Messages per BLAKE3 dispatch.
    pub messages: usize,
    /// Seconds per measurement.
    pub seconds: f64,
}

/// One line of the kernel table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelRow {
    pub what: String,
    pub batch: usize,
    pub per_s: f64,
    pub unit: &'static str,
    /// Pipeline creation (compilation), seconds, where one was made.
    pub compile_s: Option<f64>,
    /// Outputs that differ from the CPU's (must be 0).
    pub mismatches: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelReport {
    pub adapter: String,
    pub driver: String,
    pub default_kernel: String,
    pub rows: Vec<KernelRow>,
    /// Same-run comparisons with the CPU (all cores).
    pub against_cpu: Vec<Row>,
    /// Host-to-device bandwidth, bytes a second.
    pub upload_bytes_per_s: f64,
    /// BLAKE3 with transfers: messages a second, and the bytes each moves
    /// between host and device (padded message + descriptor up, digest down).
    pub hash_transfer_per_s: f64,
    pub hash_transfer_bytes: usize,
}

impl KernelReport {
    pub fn mismatches(&self) -> usize {
        self.rows.iter().map(|r| r.mismatches).sum()
    }
}

/// `n` signatures over 32-byte messages by 1,000 keys; every 100th has a
/// flipped message bit (invalid under both rule sets).
pub fn signatures(n: usize) -> Vec<([u8; 32], [u8; 32], [u8; 64])> {
    let mut sigs = super::signed(n, 1000);
    for (i, (_, message, _)) in sigs.iter_mut().enumerate().filter(|(i, _)| i % 100 == 99) {
        message[i % 32] ^= 1;
    }
    sigs
}

fn items(sigs: &[([u8; 32], [u8; 32], [u8; 64])]) -> Vec<SigItem<'_>> {
    sigs.iter().map(|(pk, msg, sig)| SigItem { public_key: pk, message: msg, signature: sig }).collect()
}

/// Indices checked against the CPU: every one up to 65,536, else an even
/// spread of 65,536 (plus every invalid one, at i % 100 == 99).
fn checked_indices(n: usize) -> Vec<usize> {
    if n <= 65_536 {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..65_536).map(|j| j * n / 65_536).chain((99..n).step_by(100)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Verdicts differing from the CPU's (`sig::verify`, both rule sets) on
/// the checked indices.
fn mismatches(items: &[SigItem<'_>], got: &[Verdicts], cpu: &[(usize, bool, bool)]) -> usize {
    assert_eq!(got.len(), items.len());
    cpu.iter().filter(|(i, zip, strict)| got[*i].zip215 != *zip || got[*i].strict != *strict).count()
}

pub fn run(gpu: &GpuSigner, opts: &KernelOptions, progress: &dyn Fn(&str)) -> Result<KernelReport, String> {
    let ctx = gpu.context();
    let secs = opts.seconds;
    let fail = |e: vigil_engine::gpu::GpuError| e.to_string();
    let mut rows = Vec::new();
    let mut against_cpu = Vec::new();

    let biggest = opts.sizes.iter().copied().chain([opts.sigs]).max().unwrap_or(opts.sigs);
    progress(&format!("signing {biggest} signatures"));
    let sigs = signatures(biggest);
    let all = items(&sigs);
    progress("CPU verdicts to check against");
    let cpu: Vec<(usize, bool, bool)> = checked_indices(biggest)
        .into_par_iter()
        .map(|i| {
            let it = &all[i];
            let v = |r| sig::verify(r, it.public_key, it.message, it.signature);
            (i, v(RuleSet::Zip215), v(RuleSet::Strict))
        })
        .collect();
    let cpu_for = |n: usize| cpu.iter().copied().filter(|(i, ..)| *i < n).collect::<Vec<_>>();

    let default = gpu.kernel();
    let mut kernels = vec![default];
    kernels.extend(opts.kernels.iter().copied().filter(|k| *k != default));
    let work = &all[..opts.sigs];
    for k in kernels {
        if !k.runs_on(ctx) {
            progress(&format!("ed25519 {k}: the adapter has no SHADER_INT64; skipped"));
            continue;
        }
        progress(&format!("ed25519 kernel {k}"));
        let started = Instant::now();
        let build = GpuEd25519::with_kernel(ctx, k);
        let compile_s = started.elapsed().as_secs_f64();
        let (got, per_s) = build.kernel_rate(ctx, work, secs).map_err(fail)?;
        rows.push(KernelRow {
            what: format!("ed25519 kernel {k}{}", if k == default { " (default)" } else { "" }),
            batch: work.len(),
            per_s,
            unit: "sig",
            compile_s: Some(compile_s),
            mismatches: mismatches(work, &got, &cpu_for(work.len())),
        });
    }
    let build = GpuEd25519::with_kernel(ctx, default);
    let most = (ctx.adapter.max_storage_buffer_binding_size / 128) as usize;
    for &n in &opts.sizes {
        if n > most {
            progress(&format!("{n} signatures a dispatch: over the adapter's storage binding limit; skipped"));
            continue;
        }
        progress(&format!("ed25519 kernel {default}, {n} a dispatch"));
        let work = &all[..n];
        let (got, per_s) = build.kernel_rate(ctx, work, secs).map_err(fail)?;
        rows.push(KernelRow {
            what: format!("ed25519 kernel {default}"),
            batch: n,
            per_s,
            unit: "sig",
            compile_s: None,
            mismatches: mismatches(work, &got, &cpu_for(n)),
        });
    }

    progress("signatures with host work: GPU (prepare, upload, kernel, read back) against all CPU cores");
    let work = &all[..opts.sigs];
    let gpu_rate = rate(secs, work.len() as u64, || gpu.verify(RuleSet::Zip215, work).expect("GPU verification"));
    let cpu_rate = rate(secs, work.len() as u64, || {
        let mut out = vec![false; work.len()];
        let mut sizer = sig::BatchSizer::default();
        sig::verify_many_tuned(RuleSet::Zip215, work, &mut out, &mut sizer);
        out
    });
    against_cpu.push(row(
        &format!("signatures, GPU with host work ({} a call)", work.len()),
        "sig",
        gpu_rate,
        "CPU, all cores",
        cpu_rate,
    ));

    progress("BLAKE3 kernel, 64-byte messages");
    let blake = GpuBlake3::new(ctx);
    let key = [0x5au8; 32];
    let msgs: Vec<[u8; 64]> = (0..opts.messages as u64)
        .into_par_iter()
        .map(|i| {
            let mut m = [0u8; 64];
            blake3::Hasher::new().update(&i.to_le_bytes()).finalize_xof().fill(&mut m);
            m
        })
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
    let (digests, per_s) = blake.kernel_rate(ctx, &key, &refs, secs).map_err(fail)?;
    let step = (refs.len() / 65_536).max(1);
    let wrong =
        (0..refs.len()).step_by(step).filter(|&i| digests[i] != *blake3::keyed_hash(&key, refs[i]).as_bytes()).count();
    rows.push(KernelRow {
        what: "BLAKE3 kernel, 64-byte messages".into(),
        batch: refs.len(),
        per_s,
        unit: "msg",
        compile_s: None,
        mismatches: wrong,
    });

    progress("host-to-device bandwidth");
    let upload_bytes_per_s = ctx.upload_rate(256 << 20, secs).map_err(fail)?;

    progress("BLAKE3 with transfers: GPU (pack, upload, hash, read back) against all CPU cores");
    let gpu_hash = rate(secs, refs.len() as u64, || blake.keyed_hash_many(ctx, &key, &refs).expect("GPU BLAKE3"));
    let cpu_hash = rate(secs, refs.len() as u64, || {
        refs.par_iter().map(|m| *blake3::keyed_hash(&key, m).as_bytes()).collect::<Vec<_>>()
    });
    against_cpu.push(row(
        &format!("BLAKE3 64-byte messages with transfers ({} a call)", refs.len()),
        "msg",
        gpu_hash,
        "CPU, all cores",
        cpu_hash,
    ));

    Ok(KernelReport {
        adapter: gpu.adapter().name.clone(),
        driver: format!("{} {}", gpu.adapter().driver, gpu.adapter().driver_info),
        default_kernel: default.to_string(),
        rows,
        against_cpu,
        upload_bytes_per_s,
        hash_transfer_per_s: gpu_hash,
        hash_transfer_bytes: 64 + 8 + 32,
    })
}

/// The table `vigil bench --kernels` prints.
pub fn print(r: &KernelReport) {
    println!("GPU: {} (driver {})", r.adapter, r.driver.trim());
    println!("{:<44} {:>9} {:>16} {:>10}  check", "kernel (inputs on the device)", "batch", "rate", "compile");
    for k in &r.rows {
        let compile = k.compile_s.map_or(String::new(), |s| format!("{s:.2} s"));
        let check = if k.mismatches == 0 { "== CPU".to_owned() } else { format!("{} DIFFER", k.mismatches) };
        println!("{:<44} {:>9} {:>16} {:>10}  {check}", k.what, k.batch, fmt_rate(k.per_s, k.unit), compile);
    }
    println!("host-to-device upload (queue.write_buffer, 256 MiB): {:.2} GB/s", r.upload_bytes_per_s / 1e9);
    println!(
        "BLAKE3 with transfers moves {} bytes a message: {:.2} GB/s of that upload bandwidth",
        r.hash_transfer_bytes,
        r.hash_transfer_per_s * r.hash_transfer_bytes as f64 / 1e9
    );
    for row in &r.against_cpu {
        println!("{:<52} {:>16}   vs {:<28} {:>6.2}x", row.stage, row.ours, row.baseline, row.ratio);
    }
}
