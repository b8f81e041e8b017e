//! `vigil devices`: the GPU adapters wgpu can see, best first.

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
    if a.json {
        for adapter in &adapters {
            println!("{}", serde_json::to_string(adapter)?);
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
    }
    Ok(0)
}
