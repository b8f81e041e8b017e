//! `vigil devices`: the GPU adapters wgpu can see, best first, and the
//! known-answer self-test of the one vigil opens.

use crate::Fatal;
use clap::Args;
#[cfg(feature = "gpu")]
use vigil_engine::gpu::list_adapters;

#[derive(Args)]
pub struct DevicesArgs {
    /// One JSON object a line.
    #[arg(long)]
    json: bool,
}

/// A build without the cargo feature `gpu` sees no adapter, and says why.
#[cfg(not(feature = "gpu"))]
pub fn run(a: DevicesArgs) -> Result<u8, Fatal> {
    if !a.json {
        println!("no GPU adapter: {}; `--backend auto` uses the CPU", crate::args::NO_GPU_BUILD);
    }
    Ok(0)
}

#[cfg(feature = "gpu")]
pub fn run(a: DevicesArgs) -> Result<u8, Fatal> {
    let adapters = list_adapters();
    // The one vigil opens is opened, which runs its self-test.
    let self_test = (!adapters.is_empty()).then(|| match crate::args::open_gpu() {
        Ok(gpu) => (true, gpu.self_test().to_string()),
        Err(e) => (false, e.to_string()),
    });
    if a.json {
        for (i, adapter) in adapters.iter().enumerate() {
            let mut line = serde_json::to_value(adapter)?;
            if let (0, Some((passed, detail))) = (i, &self_test) {
                line["self_test"] = serde_json::json!({"passed": passed, "detail": detail});
            }
            println!("{line}");
        }
        return Ok(0);
    }
    if adapters.is_empty() {
        println!("no GPU adapter (Vulkan, Metal or DX12); `--backend auto` uses the CPU");
        return Ok(0);
    }
    for (i, d) in adapters.iter().enumerate() {
        let best = if i == 0 { "  (the one vigil opens)" } else { "" };
        println!("{i}: {} — {}, {}{best}", d.name, d.backend, d.device_type);
        println!("   driver: {} {}", d.driver, d.driver_info);
        println!(
            "   features used: SHADER_INT64 {}; max storage binding {} MiB; max workgroup size {}",
            if d.shader_int64 { "yes" } else { "no" },
            d.max_storage_buffer_binding_size >> 20,
            d.max_compute_workgroup_size_x
        );
        if let (0, Some((passed, detail))) = (i, &self_test) {
            let refused = if *passed { "" } else { " (REFUSED: --backend gpu exits 2, auto uses the CPU)" };
            println!("   self-test: {detail}{refused}");
        }
    }
    Ok(0)
}
