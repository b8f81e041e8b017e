//! The GPU backend: one wgpu device, compute pipelines over the WGSL in
//! `shaders/`. This module finds the device and runs compute passes; the
//! primitives (BLAKE3, ed25519) live in their own modules.
//!
//! Adapters are looked for on Vulkan, Metal and DX12. With no adapter,
//! [`GpuContext::new`] is an error the caller turns into "use the CPU" (or,
//! for `--backend gpu`, a clear failure).

pub mod basepoint;
pub mod blake3;
pub mod ed25519;
mod faults;
pub mod selftest;

pub use faults::{GpuFaults, ParseFaultsError};
pub use selftest::SelfTest;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use wgpu::util::DeviceExt;

/// An adapter as `vigil devices` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct AdapterSummary {
    /// The adapter's name as the driver reports it.
    pub name: String,
    /// The graphics API used (Vulkan, Metal, Dx12, Gl), in wgpu's words.
    pub backend: String,
    /// Discrete, integrated, virtual GPU or CPU (software), in wgpu's words.
    pub device_type: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version string.
    pub driver_info: String,
    /// 64-bit integers in shaders (`u64(a) * u64(b)` products).
    pub shader_int64: bool,
    /// The largest storage buffer a shader can bind, in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// The most invocations a workgroup has along x.
    pub max_compute_workgroup_size_x: u32,
}

/// Why a GPU could not be opened or a GPU call failed. A failed signature
/// call is redone on the CPU by [`Signer`](crate::sig::Signer), so a
/// verdict never depends on it.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter at all (no driver).
    #[error("no GPU adapter found (Vulkan, Metal or DX12); install a driver, or mesa-vulkan-drivers for lavapipe")]
    NoAdapter,
    /// The adapter refused to open a device.
    #[error("could not open the GPU device {adapter}: {source}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// wgpu's reason.
        source: wgpu::RequestDeviceError,
    },
    /// A call on an open device failed (a wgpu error, a failed read-back)
    /// or was given work it cannot take (a message too long, more than one
    /// dispatch holds), with what went wrong.
    #[error("GPU error: {0}")]
    Failed(String),
    /// The device was lost (a driver reset, a GPU removed or hung): no
    /// later call runs on it.
    #[error("the GPU device was lost: {0}")]
    Lost(String),
    /// The adapter gave a wrong answer in the known-answer self-test run
    /// when it was opened ([`selftest`]): it is not used.
    #[error("the GPU adapter \"{adapter}\", driver \"{driver}\", failed its self-test: {detail}; it is not used")]
    SelfTest {
        /// The adapter's name.
        adapter: String,
        /// The driver's name and version.
        driver: String,
        /// What was wrong (how many answers, the first of them).
        detail: String,
    },
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
        ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
    })
}

fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterSummary {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        shader_int64: adapter.features().contains(wgpu::Features::SHADER_INT64),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_compute_workgroup_size_x: limits.max_compute_workgroup_size_x,
    }
}

/// Every adapter wgpu can see, best first.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let mut adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| rank(&a.get_info()));
    adapters.iter().map(summarize).collect()
}

/// Lower is better: a discrete GPU before an integrated one before a
/// software rasteriser.
fn rank(info: &wgpu::AdapterInfo) -> u8 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// How a GPU is opened: which ed25519 kernel build, and where compiled
/// pipelines are kept. The engine reads no environment variable: the CLI
/// fills these from `VIGIL_GPU_KERNEL` and [`default_cache_dir`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GpuOptions {
    /// The ed25519 kernel build; `None`: the fastest for the adapter
    /// ([`ed25519::Kernel::for_adapter`]). A build the adapter cannot run
    /// (the 64-bit field without `SHADER_INT64`) is replaced by that one:
    /// [`GpuSigner::kernel`] says which runs.
    pub kernel: Option<ed25519::Kernel>,
    /// Where compiled pipelines are kept between runs (large shaders
    /// compile slowly), where the adapter supports it; `None`: not kept.
    pub cache_dir: Option<PathBuf>,
    /// Failures to inject into [`GpuSigner`]'s calls (tests of the CPU
    /// fallback and of the self-test, on any adapter); none by default.
    pub faults: GpuFaults,
}

impl GpuOptions {
    /// The fastest kernel, no pipeline cache on disk.
    pub fn new() -> Self {
        GpuOptions::default()
    }

    /// This kernel build (`None`: the fastest for the adapter).
    pub fn with_kernel(mut self, kernel: Option<ed25519::Kernel>) -> Self {
        self.kernel = kernel;
        self
    }

    /// Keep compiled pipelines in this directory (`None`: nowhere).
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Inject these failures ([`GpuFaults`]).
    pub fn with_faults(mut self, faults: GpuFaults) -> Self {
        self.faults = faults;
        self
    }
}

/// Where vigil keeps compiled pipelines, from environment variables looked
/// up with `var` (the caller's: the engine reads none): `$VIGIL_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/vigil`, else `$HOME/.cache/vigil` (empty values
/// are unset).
pub fn default_cache_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let env = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("VIGIL_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("vigil")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/vigil")))
}

fn open_pipeline_cache(
    device: &wgpu::Device,
    info: &wgpu::AdapterInfo,
    dir: &Path,
) -> Option<(wgpu::PipelineCache, PathBuf)> {
    let path = dir.join(wgpu::util::pipeline_cache_key(info)?);
    let data = std::fs::read(&path).ok();
    // SAFETY: `data` is what `PipelineCache::get_data` wrote for an adapter
    // with this cache key (the file name); wgpu checks its header and, with
    // `fallback`, ignores data it cannot use (another driver, a truncated
    // file) instead of failing.
    let cache = unsafe {
        device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
            label: Some("vigil"),
            data: data.as_deref(),
            fallback: true,
        })
    };
    Some((cache, path))
}

/// The device every GPU primitive runs on.
pub struct GpuContext {
    /// The opened device.
    pub device: wgpu::Device,
    /// Its queue, where every submission goes.
    pub queue: wgpu::Queue,
    /// The adapter it was opened on.
    pub adapter: AdapterSummary,
    /// The optional features this device was opened with.
    pub features: wgpu::Features,
    /// Compiled pipelines kept on disk between runs (large shaders compile
    /// slowly), where the adapter supports it.
    cache: Option<(wgpu::PipelineCache, PathBuf)>,
    /// Why the device was lost, once it is (wgpu's device-lost callback).
    lost: Arc<OnceLock<String>>,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish()
    }
}

impl GpuContext {
    /// Opens the best adapter, asking for `SHADER_INT64` where it exists;
    /// no pipeline cache on disk.
    pub fn new() -> Result<GpuContext, GpuError> {
        GpuContext::with_options(&GpuOptions::default())
    }

    /// [`GpuContext::new`], compiled pipelines kept in `options.cache_dir`.
    pub fn with_options(options: &GpuOptions) -> Result<GpuContext, GpuError> {
        let mut adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
        adapters.sort_by_key(|a| rank(&a.get_info()));
        let adapter = adapters.into_iter().next().ok_or(GpuError::NoAdapter)?;
        let summary = summarize(&adapter);
        let features = adapter.features() & (wgpu::Features::SHADER_INT64 | wgpu::Features::PIPELINE_CACHE);
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("vigil"),
            required_features: features,
            required_limits: wgpu::Limits {
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_buffer_size: limits.max_buffer_size,
                max_compute_workgroup_size_x: limits.max_compute_workgroup_size_x,
                max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
                ..wgpu::Limits::downlevel_defaults()
            },
            ..Default::default()
        }))
        .map_err(|source| GpuError::Device { adapter: summary.name.clone(), source })?;
        let cache = features
            .contains(wgpu::Features::PIPELINE_CACHE)
            .then_some(options.cache_dir.as_deref())
            .flatten()
            .and_then(|dir| open_pipeline_cache(&device, &adapter.get_info(), dir));
        let lost = Arc::new(OnceLock::new());
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            let _ = flag.set(format!("{reason:?}: {message}"));
        });
        Ok(GpuContext { device, queue, adapter: summary, features, cache, lost })
    }

    /// Why the device was lost, if it was: every later call fails.
    pub fn lost(&self) -> Option<&str> {
        self.lost.get().map(String::as_str)
    }

    /// Marks the device lost (a call found it gone, or a test says so).
    pub(crate) fn mark_lost(&self, why: String) {
        let _ = self.lost.set(why);
    }

    /// Compiles a compute pipeline from WGSL source.
    pub fn pipeline(&self, label: &str, source: &str, entry: &str) -> wgpu::ComputePipeline {
        self.pipeline_with(label, source, entry, &[], true)
    }

    /// Compiles a compute pipeline from WGSL source with values for its
    /// `override` constants; `checked: false` leaves out wgpu's run-time
    /// checks (index clamping, loop bounding), for shaders whose every index
    /// is in range by construction and whose every loop ends.
    pub fn pipeline_with(
        &self,
        label: &str,
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
        checked: bool,
    ) -> wgpu::ComputePipeline {
        let desc = wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(source.into()) };
        let module = if checked {
            self.device.create_shader_module(desc)
        } else {
            // SAFETY: only vigil's own shaders come here (`Kernel` with
            // `checked: false`); their loops have constant trip counts and
            // their indices are in range by construction (shaders/ed25519.wgsl
            // says why at each dynamic index), and tests/gpu_ed25519.rs runs
            // every build against the CPU.
            unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        };
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
            cache: self.cache.as_ref().map(|(cache, _)| cache),
        });
        self.save_pipeline_cache();
        pipeline
    }

    /// Writes the pipeline cache to disk (atomically); failures only cost
    /// compile time on the next run.
    fn save_pipeline_cache(&self) {
        let Some((cache, path)) = &self.cache else { return };
        let Some(data) = cache.get_data() else { return };
        let tmp = path.with_extension("tmp");
        if std::fs::create_dir_all(path.parent().unwrap_or(path)).is_ok() && std::fs::write(&tmp, data).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// Runs `pipeline` once: binding i < inputs.len() is a read-only storage
    /// buffer holding `inputs[i]`, the next binding a uniform holding
    /// `params`, the next a read-write storage buffer of `output_len` bytes,
    /// which is returned, then the buffers of `resident` (data kept on the
    /// device, such as tables). `workgroups` along x. Buffers are made for
    /// this one call: for tests and one-off work; hot paths keep theirs.
    pub fn run(
        &self,
        pipeline: &wgpu::ComputePipeline,
        inputs: &[&[u8]],
        params: &[u8],
        output_len: usize,
        resident: &[&wgpu::Buffer],
        workgroups: u32,
    ) -> Result<Vec<u8>, GpuError> {
        let bound = self.bind(pipeline, inputs, params, output_len, resident);
        self.run_bound(pipeline, &bound, workgroups, output_len)
    }

    /// One dispatch over `bound`, its output read back.
    fn run_bound(
        &self,
        pipeline: &wgpu::ComputePipeline,
        bound: &Bound,
        workgroups: u32,
        output_len: usize,
    ) -> Result<Vec<u8>, GpuError> {
        let submission = self.queue.submit([bound.commands(self, pipeline, workgroups, 1, true)]);
        self.read_back(&bound.readback, submission, output_len)
    }

    /// Kernel throughput with the data already on the device: runs
    /// `pipeline` as [`GpuContext::run`] does (same bindings), returns its
    /// output, then dispatches it again and again over the same buffers for
    /// about `seconds` and returns dispatches per second (wall clock from the
    /// first submission to the last one's completion; each submission holds
    /// several dispatches, so launch gaps count as little as they can).
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch_rate(
        &self,
        pipeline: &wgpu::ComputePipeline,
        inputs: &[&[u8]],
        params: &[u8],
        output_len: usize,
        resident: &[&wgpu::Buffer],
        workgroups: u32,
        seconds: f64,
    ) -> Result<(Vec<u8>, f64), GpuError> {
        let bound = self.bind(pipeline, inputs, params, output_len, resident);
        let output = self.run_bound(pipeline, &bound, workgroups, output_len)?;
        // One timed submission first, to size the rest to ~1/8 of `seconds`.
        let wait = |submission| {
            self.device
                .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
                .map_err(|e| GpuError::Failed(e.to_string()))
        };
        let once = std::time::Instant::now();
        wait(self.queue.submit([bound.commands(self, pipeline, workgroups, 1, false)]))?;
        let each = once.elapsed().as_secs_f64().max(1e-6);
        let per_submit = ((seconds / 8.0 / each) as u32).clamp(1, 1024);
        let started = std::time::Instant::now();
        let mut dispatches = 0u64;
        while started.elapsed().as_secs_f64() < seconds || dispatches == 0 {
            wait(self.queue.submit([bound.commands(self, pipeline, workgroups, per_submit, false)]))?;
            dispatches += u64::from(per_submit);
        }
        Ok((output, dispatches as f64 / started.elapsed().as_secs_f64()))
    }

    /// Host-to-device bandwidth of `queue.write_buffer` (bytes a second):
    /// `bytes` written to one device buffer again and again for about
    /// `seconds`, each write submitted and waited for.
    pub fn upload_rate(&self, bytes: usize, seconds: f64) -> Result<f64, GpuError> {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("upload-rate"),
            size: bytes as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let data: Vec<u8> = (0..bytes).map(|i| (i * 131 + 7) as u8).collect();
        let mut moved = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed().as_secs_f64() < seconds || moved == 0 {
            self.queue.write_buffer(&buffer, 0, &data);
            let submission = self.queue.submit([]);
            self.device
                .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
                .map_err(|e| GpuError::Failed(e.to_string()))?;
            moved += bytes as u64;
        }
        Ok(moved as f64 / started.elapsed().as_secs_f64())
    }

    /// The buffers and bind group for one pipeline run (see [`GpuContext::run`]).
    fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        inputs: &[&[u8]],
        params: &[u8],
        output_len: usize,
        resident: &[&wgpu::Buffer],
    ) -> Bound {
        let device = &self.device;
        let storage = |data: &[u8]| {
            // wgpu rejects empty bindings; a 4-byte pad is never read.
            let contents = if data.is_empty() { &[0u8; 4][..] } else { data };
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let buffers: Vec<wgpu::Buffer> = inputs.iter().map(|d| storage(d)).collect();
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: params,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let size = (output_len.max(4) as u64).next_multiple_of(4);
        let output = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        entries.push(wgpu::BindGroupEntry { binding: inputs.len() as u32, resource: uniform.as_entire_binding() });
        entries.push(wgpu::BindGroupEntry { binding: inputs.len() as u32 + 1, resource: output.as_entire_binding() });
        for (i, b) in resident.iter().enumerate() {
            entries
                .push(wgpu::BindGroupEntry { binding: (inputs.len() + 2 + i) as u32, resource: b.as_entire_binding() });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Bound { _buffers: buffers, _uniform: uniform, output, readback, bind_group, size }
    }

    /// Waits for `submission`, then copies the first `len` bytes out of
    /// `readback` (a MAP_READ buffer the submission wrote) and unmaps it.
    pub fn read_back(
        &self,
        readback: &wgpu::Buffer,
        submission: wgpu::SubmissionIndex,
        len: usize,
    ) -> Result<Vec<u8>, GpuError> {
        let failed = |e: &dyn fmt::Display| GpuError::Failed(e.to_string());
        let slice = readback.slice(..(len.max(4) as u64).next_multiple_of(4));
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
            .map_err(|e| failed(&e))?;
        rx.recv().map_err(|e| failed(&e))?.map_err(|e| failed(&e))?;
        let out = slice.get_mapped_range().map_err(|e| failed(&e))?[..len].to_vec();
        readback.unmap();
        Ok(out)
    }
}

/// A pipeline's buffers and bind group, made by [`GpuContext::bind`].
struct Bound {
    _buffers: Vec<wgpu::Buffer>,
    _uniform: wgpu::Buffer,
    output: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    size: u64,
}

impl Bound {
    /// `times` dispatches of `workgroups`, then (with `read`) the output
    /// copied to the read-back buffer.
    fn commands(
        &self,
        ctx: &GpuContext,
        pipeline: &wgpu::ComputePipeline,
        workgroups: u32,
        times: u32,
        read: bool,
    ) -> wgpu::CommandBuffer {
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            for _ in 0..times {
                pass.dispatch_workgroups(workgroups, 1, 1);
            }
        }
        if read {
            encoder.copy_buffer_to_buffer(&self.output, 0, &self.readback, 0, self.size);
        }
        encoder.finish()
    }
}

/// Signature verification on the GPU: the device and its pipelines, opened
/// once and shared (verdicts exactly the CPU's: `tests/gpu_ed25519.rs`).
///
/// Opening it runs the known-answer self-test ([`selftest`]) on the device,
/// once per adapter, driver and kernel in a process: an adapter that gets
/// one answer wrong is refused ([`GpuError::SelfTest`]).
///
/// The device is what its users share: one [`Signer`](crate::sig::Signer)'s
/// hybrid split at a time runs its GPU part on it (`GpuSigner::turn`),
/// and it is warmed up once.
pub struct GpuSigner {
    ctx: GpuContext,
    ed25519: ed25519::GpuEd25519,
    /// Held while a hybrid split's GPU part runs.
    turn: Mutex<()>,
    /// Whether the hybrid's untimed warm-up call was made.
    warm: AtomicBool,
    /// What the self-test found when it was opened.
    self_test: SelfTest,
    /// Injected failures, and the signature calls made so far (their numbers).
    faults: GpuFaults,
    calls: AtomicU64,
}

impl fmt::Debug for GpuSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuSigner").field("adapter", &self.ctx.adapter.name).finish()
    }
}

impl GpuSigner {
    /// Opens the best adapter and compiles the signature pipelines (the
    /// fastest kernel, no pipeline cache on disk), then self-tests it.
    pub fn open() -> Result<GpuSigner, GpuError> {
        GpuSigner::open_with(&GpuOptions::default())
    }

    /// Opens the best adapter and compiles the signature pipelines as
    /// `options` say, then self-tests it: an adapter that gets a known
    /// answer wrong is [`GpuError::SelfTest`].
    pub fn open_with(options: &GpuOptions) -> Result<GpuSigner, GpuError> {
        let ctx = GpuContext::with_options(options)?;
        let kernel = match options.kernel {
            Some(k) if k.runs_on(&ctx) => k,
            _ => ed25519::Kernel::for_adapter(&ctx),
        };
        let ed25519 = ed25519::GpuEd25519::with_kernel(&ctx, kernel);
        let mut signer = GpuSigner {
            ctx,
            ed25519,
            turn: Mutex::new(()),
            warm: AtomicBool::new(false),
            self_test: SelfTest::default(),
            faults: options.faults.clone(),
            calls: AtomicU64::new(0),
        };
        signer.self_test = selftest::once(&signer, !signer.faults.is_none())?;
        if !signer.self_test.passed() {
            let a = &signer.ctx.adapter;
            return Err(GpuError::SelfTest {
                adapter: a.name.clone(),
                driver: format!("{} {}", a.driver, a.driver_info).trim().to_owned(),
                detail: signer.self_test.to_string(),
            });
        }
        Ok(signer)
    }

    /// Held while a hybrid split's GPU part runs: one at a time on this
    /// device, whichever signer runs it.
    pub(crate) fn turn(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True the first time only: the caller makes the device's untimed
    /// warm-up call.
    pub(crate) fn first_warm_up(&self) -> bool {
        !self.warm.swap(true, Ordering::Relaxed)
    }

    /// The adapter the signer runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.ctx.adapter
    }

    /// The device, for other kernels on it (benchmarks).
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The build of the ed25519 kernel in use.
    pub fn kernel(&self) -> ed25519::Kernel {
        self.ed25519.kernel()
    }

    /// What the known-answer self-test found when it was opened (it
    /// passed: a failing adapter is not opened).
    pub fn self_test(&self) -> &SelfTest {
        &self.self_test
    }

    /// Why the device was lost, if it was: every later call fails at once,
    /// and a [`Signer`](crate::sig::Signer) verifies on the CPU instead.
    pub fn lost(&self) -> Option<&str> {
        self.ctx.lost()
    }

    /// Where the time of the signature calls went so far (host work, waits
    /// for the device).
    pub fn call_stats(&self) -> ed25519::CallStats {
        self.ed25519.stats()
    }

    /// Whether the adapter is a software rasteriser (lavapipe): exact, but
    /// slower than the CPU it runs on.
    pub fn is_software(&self) -> bool {
        self.ctx.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu)
    }

    /// One verdict per item, exactly `sig::verify(rules, …)`'s.
    pub fn verify(&self, rules: crate::sig::RuleSet, items: &[crate::sig::SigItem<'_>]) -> Result<Vec<bool>, GpuError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        if self.faults.lost_at.is_some_and(|at| call >= at) {
            self.ctx.mark_lost(format!("injected: lost at call {call}"));
        }
        if let Some(why) = self.lost() {
            return Err(GpuError::Lost(why.to_owned()));
        }
        if self.faults.fail_calls.contains(&call) {
            return Err(GpuError::Failed(format!("injected failure of call {call}")));
        }
        match self.device_verify_both(items) {
            Ok(both) => Ok(both.into_iter().map(|v| v.get(rules)).collect()),
            // A call that failed because the device went away says so.
            Err(e) => Err(self.lost().map_or(e, |why| GpuError::Lost(why.to_owned()))),
        }
    }

    /// Both rule sets' verdicts from the device, as the kernel (and an
    /// injected miscomputation) gives them: what `verify` and the
    /// self-test use.
    fn device_verify_both(&self, items: &[crate::sig::SigItem<'_>]) -> Result<Vec<ed25519::Verdicts>, GpuError> {
        let mut both = self.ed25519.verify_both(&self.ctx, items)?;
        if self.faults.wrong_verdicts {
            faults::miscompute(&mut both);
        }
        Ok(both)
    }
}
