//! `vigil bench` (this binary, `vigil-bench`): each stage and end to end, ours against a baseline, on
//! this machine, in one run; optionally as JSON and an SVG plot.

use clap::Args;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use vigil_benches::{BenchOptions, BenchReport, run};
use vigil_cli::{Fatal, args};

#[derive(Args)]
pub struct BenchArgs {
    /// Verify this chain (a directory of *.vblk) instead of generating one.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Transactions of the generated chain.
    #[arg(long, default_value_t = 100_000, value_parser = args::count::<1, 1_000_000_000>)]
    txs: usize,
    /// Senders (devices) of the generated chain.
    #[arg(long, default_value_t = 64, value_parser = args::count::<1, 1_048_576>)]
    senders: usize,
    /// Seconds per measurement (the best of at least three runs counts).
    #[arg(long, default_value_t = 1.0, value_parser = seconds)]
    seconds: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Draw throughput against threads and against batch size into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// cpu: CPU only; gpu or auto: also measure the GPU (gpu: exit 2 without one).
    #[arg(long, value_enum, default_value = "cpu")]
    backend: args::Backend,
    /// Measure `vigil serve` instead: p50/p99 latency and throughput for each
    /// max_batch/max_delay setting, against direct verification.
    #[arg(long)]
    serve: bool,
    /// --serve: the loads, as CLIENTS/IN_FLIGHT pairs (default: 1/1,16/4).
    #[arg(long, value_delimiter = ',', requires = "serve", value_parser = pair)]
    loads: Vec<(usize, usize)>,
    /// --serve: signatures a request.
    #[arg(long, default_value_t = 16, requires = "serve", value_parser = args::count::<1, 1_048_576>)]
    request_sigs: usize,
    /// Measure the GPU's kernels alone instead, inputs already on the device:
    /// ed25519 builds and batch sizes, BLAKE3, upload bandwidth; every
    /// output checked against the CPU (exit 1 if any differs). Needs a GPU.
    #[arg(long, conflicts_with = "serve")]
    kernels: bool,
    /// --kernels: signatures a dispatch.
    #[arg(long, default_value_t = 1 << 20, requires = "kernels", value_parser = args::count::<1, { 1 << 24 }>)]
    kernel_sigs: usize,
    /// --kernels: ed25519 kernel builds to compare with the default, as
    /// FIELD[:WORKGROUP[:checked|unchecked]] (e.g. u32:64,u64:128:checked;
    /// default workgroup 64, unchecked).
    #[arg(long, value_delimiter = ',', requires = "kernels")]
    builds: Vec<vigil_engine::gpu::ed25519::Kernel>,
    /// --kernels: more batch sizes for the default build.
    #[arg(long, value_delimiter = ',', requires = "kernels", value_parser = args::count::<1, { 1 << 24 }>)]
    kernel_sizes: Vec<usize>,
    /// Measure where the GPU starts to win instead: CPU (all cores), GPU and
    /// `--backend auto` per batch size and share of invalid signatures,
    /// under both rule sets, with the smallest batch from which the GPU wins.
    /// Needs a GPU.
    #[arg(long, conflicts_with_all = ["serve", "kernels"])]
    crossover: bool,
    /// --crossover: batch sizes (default 256 to 262,144, ×4).
    #[arg(long, value_delimiter = ',', requires = "crossover", value_parser = args::count::<1, { 1 << 24 }>)]
    sizes: Vec<usize>,
    /// --crossover: shares of invalid signatures (default 0, 0.01, 0.1); --serve: the share (one, default 0.01).
    #[arg(long, value_delimiter = ',', value_parser = share)]
    invalid: Vec<f64>,
    /// --kernels: BLAKE3 messages a dispatch.
    #[arg(long, default_value_t = 4_000_000, requires = "kernels", value_parser = args::count::<1, { 1 << 26 }>)]
    kernel_messages: usize,
    /// --serve: the settings, as MAX_BATCH/MAX_DELAY_US pairs (default: 64, 1024, 8192 × 100, 2000 µs).
    #[arg(long, value_delimiter = ',', requires = "serve", value_parser = pair)]
    settings: Vec<(usize, usize)>,
}

/// `--seconds`: 0.01 to 3600.
fn seconds(s: &str) -> Result<f64, String> {
    vigil_cli::args::seconds_in(s, 0.01, 3600.0)
}

/// `--invalid`: a share from 0 to 1.
fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a share from 0 to 1")),
    }
}

/// `A/B`, A at least 1.
fn pair(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected two numbers as A/B, e.g. 1024/2000"))?;
    let a: usize = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: usize = b.parse().map_err(|e| format!("{b:?}: {e}"))?;
    if a == 0 {
        return Err(format!("{s:?}: the first number must be at least 1"));
    }
    Ok((a, b))
}

pub fn run_bench(a: BenchArgs) -> Result<u8, Fatal> {
    if !a.invalid.is_empty() && !a.serve && !a.crossover {
        return Err(Fatal("--invalid goes with --serve or --crossover".into()));
    }
    // The bench measures the GPU alone beside the CPU alone (the hybrid's
    // crossover is `vigil_benches::crossover`).
    let gpu = args::open_backend(a.backend)?.gpu;
    if a.serve {
        return run_serve(a, gpu);
    }
    if a.crossover {
        let Some(gpu) = gpu else {
            return Err(Fatal("--crossover needs a GPU: add --backend gpu".into()));
        };
        let sizes = if a.sizes.is_empty() { vec![256, 1024, 4096, 16384, 65536, 262_144] } else { a.sizes };
        let shares = if a.invalid.is_empty() { vec![0.0, 0.01, 0.1] } else { a.invalid };
        let mut disagreements = 0;
        println!(
            "CPU: {} ({} threads); GPU: {}",
            vigil_benches::cpu_model(),
            rayon::current_num_threads(),
            gpu.adapter().name
        );
        for rules in [vigil_engine::RuleSet::Zip215, vigil_engine::RuleSet::Strict] {
            let table = vigil_benches::crossover::crossover_under(&gpu, rules, a.seconds, &sizes, &shares, &|what| {
                eprintln!("vigil bench: {what}…")
            });
            disagreements += table.disagreements;
            if a.json {
                println!("{}", serde_json::to_string(&table)?);
            } else {
                println!("{rules}:\n{table}");
            }
        }
        return Ok(if disagreements == 0 { 0 } else { 1 });
    }
    if a.kernels {
        let Some(gpu) = gpu else {
            return Err(Fatal("--kernels needs a GPU: add --backend gpu".into()));
        };
        let opts = vigil_benches::gpu::KernelOptions {
            sigs: a.kernel_sigs.max(1),
            kernels: a.builds,
            sizes: a.kernel_sizes.into_iter().filter(|n| *n > 0).collect(),
            messages: a.kernel_messages.max(1),
            seconds: a.seconds,
        };
        let report = vigil_benches::gpu::run(&gpu, &opts, &|what| eprintln!("vigil bench: {what}…"))?;
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("CPU: {} ({} threads)", vigil_benches::cpu_model(), rayon::current_num_threads());
            vigil_benches::gpu::print(&report);
        }
        return Ok(if report.mismatches() == 0 { 0 } else { 1 });
    }
    let opts = BenchOptions { chain: a.chain, txs: a.txs as u64, senders: a.senders as u32, seconds: a.seconds, gpu };
    let report = run(&opts, &|what| eprintln!("vigil bench: {what}…"))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    if let Some(path) = &a.plot {
        plot(&report, path).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
        if !a.json {
            println!("plot written to {}", path.display());
        }
    }
    Ok(0)
}

fn print_table(r: &BenchReport) {
    println!(
        "CPU: {} ({} threads), curve25519-dalek backend: {}, signature lanes: {}, BLAKE3 lanes: {}",
        r.cpu, r.cores, r.curve_backend, r.sig_lanes, r.hash_backend
    );
    if let Some(gpu) = &r.gpu_adapter {
        println!("GPU: {gpu}");
    }
    println!(
        "chain: {} transactions in {} blocks, {:.1} MB\n",
        r.chain_transactions,
        r.chain_blocks,
        r.chain_bytes as f64 / 1e6
    );
    let w = r.rows.iter().map(|row| row.stage.len()).max().unwrap_or(10);
    println!("{:<w$}  {:>16}  {:<36}  {:>7}", "stage", "vigil", "baseline", "ratio");
    for row in &r.rows {
        println!("{:<w$}  {:>16}  {:<36}  {:>6.2}x", row.stage, row.ours, row.baseline, row.ratio);
    }
    println!("\nend to end against threads (tx/s):");
    for (t, per_s) in &r.threads_curve {
        println!("  {t:>3} threads  {per_s:>12.0}");
    }
    println!("zip215 batch verification on one core against batch size (signatures/s):");
    for (size, per_s) in &r.batch_curve {
        println!("  {size:>5}  {per_s:>12.0}");
    }
}

fn plot(r: &BenchReport, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    let title = format!("{} ({} threads)", r.cpu, r.cores);
    root.titled(&title, ("sans-serif", 14))?;

    let max_t = r.threads_curve.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let max_tps = r.threads_curve.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("vigil verify: transactions/s against threads", ("sans-serif", 16))
        .margin(20)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_t + 0.5, 0.0..max_tps)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("tx/s")
        .x_label_formatter(&|v| if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() })
        .y_label_formatter(&|v| format!("{:.0}k", v / 1e3))
        .draw()?;
    let pts: Vec<(f64, f64)> = r.threads_curve.iter().map(|&(t, v)| (t as f64, v)).collect();
    chart
        .draw_series(LineSeries::new(pts.clone(), &BLUE))?
        .label("measured")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    if let Some(&(t1, v1)) = r.threads_curve.first() {
        let linear = vec![(t1 as f64, v1), (max_t, v1 * max_t / t1 as f64)];
        chart
            .draw_series(LineSeries::new(linear, &RED))?
            .label("linear from 1 thread")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let max_b = r.batch_curve.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let max_sps = r.batch_curve.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption("zip215 batch verification, one core", ("sans-serif", 16))
        .margin(20)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0..max_b * 1.5).log_scale(), 0.0..max_sps)?;
    chart
        .configure_mesh()
        .x_desc("batch size")
        .y_desc("signatures/s")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{:.0}k", v / 1e3))
        .draw()?;
    let pts: Vec<(f64, f64)> = r.batch_curve.iter().map(|&(b, v)| (b as f64, v)).collect();
    chart.draw_series(LineSeries::new(pts.clone(), &BLUE))?;
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    root.present()?;
    Ok(())
}

fn run_serve(a: BenchArgs, gpu: Option<std::sync::Arc<vigil_engine::gpu::GpuSigner>>) -> Result<u8, Fatal> {
    use vigil_benches::serve::{ServeOptions, run};
    if a.request_sigs == 0 || a.loads.iter().any(|l| l.1 == 0) {
        return Err(Fatal("--request-sigs and each load's requests in flight must be at least 1".into()));
    }
    let invalid = match a.invalid[..] {
        [] => 0.01,
        [share] => share,
        _ => return Err(Fatal("--serve takes one share of invalid signatures (--invalid)".into())),
    };
    let mut o = ServeOptions { request_sigs: a.request_sigs, seconds: a.seconds, gpu, invalid, ..Default::default() };
    if !a.settings.is_empty() {
        o.settings = a.settings.iter().map(|&(b, d)| (b, std::time::Duration::from_micros(d as u64))).collect();
    }
    if !a.loads.is_empty() {
        o.loads = a.loads;
    }
    let r = run(&o, &|what| eprintln!("vigil bench --serve: {what}…"))?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(0);
    }
    println!("CPU: {} ({} threads), backend: {}", r.cpu, r.cores, r.backend);
    println!(
        "requests of {} signatures over a unix socket ({}% invalid); direct verification of the same (no server): {:.1}k sig/s\n",
        r.request_sigs,
        invalid * 100.0,
        r.direct_signatures_per_second / 1e3
    );
    println!(
        "{:>7}  {:>9}  {:>9}  {:>9}  {:>9}  {:>10}  {:>10}  {:>12}  {:>9}  {:>10}",
        "clients",
        "in flight",
        "max_batch",
        "max_delay",
        "requests",
        "p50",
        "p99",
        "throughput",
        "vs direct",
        "mean batch"
    );
    for row in &r.rows {
        println!(
            "{:>7}  {:>9}  {:>9}  {:>7}µs  {:>9}  {:>8.0}µs  {:>8.0}µs  {:>6.1}k sig/s  {:>8.2}x  {:>10.1}",
            row.clients,
            row.depth,
            row.max_batch,
            row.max_delay_us,
            row.requests,
            row.p50_us,
            row.p99_us,
            row.signatures_per_second / 1e3,
            row.ratio,
            row.mean_batch
        );
    }
    Ok(0)
}
