//! ed25519 signature verification on the GPU (`shaders/field25519.wgsl` +
//! `shaders/ed25519.wgsl`), one invocation a signature, with verdicts equal
//! to [`crate::sig::verify`] under both rule sets.
//!
//! Split of work: the CPU checks that S is canonical (S < L; otherwise the
//! verdict is false under both rule sets, whatever the GPU computes for it)
//! and computes `k = SHA-512(R ‖ A ‖ M) mod L`. The GPU decompresses A and R
//! exactly as curve25519-dalek does, computes `P = [S]B − [k]A` (S in
//! radix-256 windows over the precomputed table of `basepoint.rs`, k in
//! radix-16 windows) and returns both verdicts: zip215 (`[8](P − R)` is the
//! identity) and strict (A and R not of small order, and the canonical
//! encoding of P equals R's bytes).
//!
//! Device buffers are made once and reused: two slots (input, parameters,
//! output, read-back), so while the GPU works on one chunk of a call the CPU
//! prepares (SHA-512, packing) and uploads the next into the other. A call
//! is split into chunks of a quarter of its size (at least 4,096, at most
//! 262,144 signatures: enough to fill a large GPU, about 13 ms of an H200's
//! time, and bounded so no dispatch meets a driver's watchdog).

use super::{GpuContext, GpuError, basepoint};
use crate::sig::{RuleSet, SigItem};
use rayon::prelude::*;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use wgpu::util::DeviceExt;

const LIMBS_U32: &str = vigil_shaders::FIELD25519_U32;
const LIMBS_U64: &str = vigil_shaders::FIELD25519_U64;
/// Signatures per dispatch: bounded so no dispatch runs long enough to meet a
/// driver's watchdog.
const MAX_PER_DISPATCH: usize = 1 << 18;
/// The smallest chunk a call is split into for overlap.
const MIN_CHUNK: usize = 4096;
/// Bytes uploaded per signature: A, R, S, k.
const BYTES_PER_SIG: usize = 128;

/// Verdict bits in the shader's output word.
const ZIP215_BIT: u32 = 1;
const STRICT_BIT: u32 = 2;

/// How field elements are multiplied on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// 16 limbs of 16 bits, 16×16→32-bit products: any adapter.
    U32,
    /// 10 limbs in radix 2^25.5, 32×32→64-bit products: adapters with
    /// `SHADER_INT64`.
    U64,
}

/// One build of the verification kernel. Every build gives the same
/// verdicts (tests/gpu_ed25519.rs runs each); they differ in speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    /// How it multiplies field elements.
    pub field: Field,
    /// Invocations per workgroup.
    pub workgroup: u32,
    /// wgpu's run-time checks (clamped indices, bounded loops) left in the
    /// shader. Without them the shader is trusted: every index in it is in
    /// range by construction and every loop has a constant trip count.
    pub checked: bool,
}

impl Kernel {
    /// The fastest build for `ctx`'s adapter as measured (benches/GPU-NOTES.md);
    /// another is chosen with [`GpuOptions::kernel`](super::GpuOptions).
    pub fn for_adapter(ctx: &GpuContext) -> Kernel {
        let int64 = ctx.features.contains(wgpu::Features::SHADER_INT64);
        // Measured on an NVIDIA H200 (benches/GPU-NOTES.md): the 64-bit field
        // is 17× the 16-bit one, and without wgpu's run-time checks the
        // kernel runs 21× faster (they keep the compiler from unrolling the
        // limb loops, which then index arrays in local memory); workgroup
        // sizes 32..256 are within 1%.
        Kernel { field: if int64 { Field::U64 } else { Field::U32 }, workgroup: 64, checked: false }
    }

    /// Whether `ctx`'s device can run this build.
    pub fn runs_on(&self, ctx: &GpuContext) -> bool {
        self.field == Field::U32 || ctx.features.contains(wgpu::Features::SHADER_INT64)
    }

    fn source(&self) -> String {
        let limbs = match self.field {
            Field::U32 => LIMBS_U32,
            Field::U64 => LIMBS_U64,
        };
        // The curve and verification code, after one of the limb layers.
        format!("{limbs}\n{}{}", vigil_shaders::FIELD25519, vigil_shaders::ED25519)
    }

    fn groups(&self, n: usize) -> u32 {
        n.div_ceil(self.workgroup as usize) as u32
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = match self.field {
            Field::U32 => "u32",
            Field::U64 => "u64",
        };
        write!(f, "{field}:{}:{}", self.workgroup, if self.checked { "checked" } else { "unchecked" })
    }
}

/// Why a kernel description did not parse (see [`Kernel`]'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseKernelError {
    /// FIELD is missing or not `u32`/`u64` (the part given, if any).
    #[error("field {0:?}: expected u32 or u64")]
    Field(Option<String>),
    /// WORKGROUP is not a number in 1..=1024 (the part given).
    #[error("workgroup {0:?}: expected 1..=1024")]
    Workgroup(String),
    /// The third part is neither `checked` nor `unchecked` (the part given,
    /// trimmed).
    #[error("{0:?}: expected checked or unchecked")]
    Checks(String),
    /// More than three parts (the whole description).
    #[error("{0:?}: expected FIELD[:WORKGROUP[:checked|unchecked]]")]
    TooManyParts(String),
}

impl std::str::FromStr for Kernel {
    type Err = ParseKernelError;

    /// `FIELD[:WORKGROUP[:checked|unchecked]]`, FIELD `u32` or `u64`
    /// (defaults 64, unchecked, as the builds vigil picks): `u64:128:checked`.
    fn from_str(s: &str) -> Result<Kernel, ParseKernelError> {
        let mut parts = s.split(':');
        let field = match parts.next().map(str::trim) {
            Some("u32") => Field::U32,
            Some("u64") => Field::U64,
            other => return Err(ParseKernelError::Field(other.map(str::to_owned))),
        };
        let workgroup = match parts.next() {
            None => 64,
            Some(w) => match w.trim().parse::<u32>() {
                Ok(w) if (1..=1024).contains(&w) => w,
                _ => return Err(ParseKernelError::Workgroup(w.to_owned())),
            },
        };
        let checked = match parts.next().map(str::trim) {
            Some("checked") => true,
            None | Some("unchecked") => false,
            Some(c) => return Err(ParseKernelError::Checks(c.to_owned())),
        };
        if parts.next().is_some() {
            return Err(ParseKernelError::TooManyParts(s.to_owned()));
        }
        Ok(Kernel { field, workgroup, checked })
    }
}

/// The ed25519 verification kernel, compiled on one device: both verdicts
/// (zip215 and strict) for each signature, exactly the CPU's.
pub struct GpuEd25519 {
    kernel: Kernel,
    verify: wgpu::ComputePipeline,
    /// `basepoint::table()`, resident on the device.
    btable: wgpu::Buffer,
    /// Two sets of buffers, made on first use and regrown when a call needs
    /// bigger chunks.
    slots: Mutex<Vec<Slot>>,
    /// Where the time of `verify` calls went, summed over the process.
    stats: Mutex<CallStats>,
    /// Debug kernels, compiled on first use.
    debug_field: OnceLock<wgpu::ComputePipeline>,
    debug_point: OnceLock<wgpu::ComputePipeline>,
}

/// Where the time of [`GpuEd25519::verify`] calls went, summed: the host's
/// part (SHA-512 and packing; copying into wgpu's staging memory and
/// submitting) and its waits for the device (kernel, transfers, read-back).
/// A GPU that keeps up leaves `waiting` small; a host that does not feed it
/// fast enough shows as `prepare + upload` near `total`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CallStats {
    /// `verify` calls.
    pub calls: u64,
    /// Chunks (dispatches of at most 2^18 signatures) they were cut into.
    pub chunks: u64,
    /// Signatures verified.
    pub signatures: u64,
    /// Host time hashing (SHA-512) and packing signatures.
    pub prepare: Duration,
    /// Host time copying into staging memory and submitting.
    pub upload: Duration,
    /// Time waiting for the device.
    pub waiting: Duration,
    /// Wall time of the calls.
    pub total: Duration,
}

impl std::ops::AddAssign for CallStats {
    fn add_assign(&mut self, o: CallStats) {
        self.calls += o.calls;
        self.chunks += o.chunks;
        self.signatures += o.signatures;
        self.prepare += o.prepare;
        self.upload += o.upload;
        self.waiting += o.waiting;
        self.total += o.total;
    }
}

impl std::fmt::Display for CallStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} calls, {} chunks, {} signatures in {:.3} s: prepare {:.3}, upload {:.3}, waiting for the device {:.3}",
            self.calls,
            self.chunks,
            self.signatures,
            self.total.as_secs_f64(),
            self.prepare.as_secs_f64(),
            self.upload.as_secs_f64(),
            self.waiting.as_secs_f64()
        )
    }
}

/// Both verdicts for one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdicts {
    /// Valid under [`RuleSet::Zip215`].
    pub zip215: bool,
    /// Valid under [`RuleSet::Strict`].
    pub strict: bool,
}

impl Verdicts {
    /// The verdict under `rules`.
    pub fn get(self, rules: RuleSet) -> bool {
        match rules {
            RuleSet::Zip215 => self.zip215,
            RuleSet::Strict => self.strict,
        }
    }
}

/// The debug field kernel's results for one pair (a, b), canonical
/// encodings: a+b, a−b, a·b, a², 1/a, `sqrt_ratio_i(a, b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldResults {
    /// a+b.
    pub add: [u8; 32],
    /// a−b.
    pub sub: [u8; 32],
    /// a·b.
    pub mul: [u8; 32],
    /// a².
    pub square: [u8; 32],
    /// 1/a.
    pub invert: [u8; 32],
    /// `sqrt_ratio_i(a, b)`: whether a/b is a square, and the root.
    pub sqrt_ratio: (bool, [u8; 32]),
}

/// The debug point kernel's results for one encoding E and scalars a, b,
/// with P = decompress(E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointResults {
    /// Whether E decodes to a point (the other fields are meaningless
    /// when it does not).
    pub decodes: bool,
    /// P compressed again.
    pub compress: [u8; 32],
    /// 2P.
    pub double: [u8; 32],
    /// P + B.
    pub plus_base: [u8; 32],
    /// `[a]B + [b]P`.
    pub double_scalar: [u8; 32],
    /// 8P.
    pub times_eight: [u8; 32],
    /// Whether 8P is the identity (P of small order).
    pub times_eight_is_identity: bool,
}

/// One set of device buffers for a chunk of signatures.
struct Slot {
    input: wgpu::Buffer,
    params: wgpu::Buffer,
    output: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Signatures it holds.
    capacity: usize,
}

impl Slot {
    fn new(ctx: &GpuContext, pipeline: &wgpu::ComputePipeline, btable: &wgpu::Buffer, capacity: usize) -> Slot {
        use wgpu::BufferUsages as U;
        let buffer = |size: usize, usage: U| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ed25519-slot"),
                size: size as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let input = buffer(capacity * BYTES_PER_SIG, U::STORAGE | U::COPY_DST);
        let params = buffer(16, U::UNIFORM | U::COPY_DST);
        let output = buffer(capacity * 4, U::STORAGE | U::COPY_SRC);
        let readback = buffer(capacity * 4, U::MAP_READ | U::COPY_DST);
        let entries = [&input, &params, &output, btable]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect::<Vec<_>>();
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("ed25519-slot"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Slot { input, params, output, readback, bind_group, capacity }
    }
}

/// What the GPU gets for `items` (128 bytes each: A, R, S, k) and whether
/// each S is canonical. On all cores.
fn prepare(items: &[SigItem<'_>]) -> (Vec<u8>, Vec<bool>) {
    let mut data = vec![0u8; items.len() * BYTES_PER_SIG];
    let canonical = data
        .par_chunks_mut(BYTES_PER_SIG)
        .zip(items.par_iter())
        .map(|(row, it)| {
            // A, then the signature (R, S) as given, then k.
            row[..32].copy_from_slice(it.public_key);
            row[32..96].copy_from_slice(it.signature);
            row[96..].copy_from_slice(it.challenge().as_bytes());
            it.canonical_s().is_some()
        })
        .collect();
    (data, canonical)
}

fn pipeline(ctx: &GpuContext, kernel: Kernel, entry: &str) -> wgpu::ComputePipeline {
    let constants = [("WORKGROUP_SIZE", f64::from(kernel.workgroup))];
    ctx.pipeline_with(&format!("ed25519-{entry}-{kernel}"), &kernel.source(), entry, &constants, kernel.checked)
}

/// The kernel's output words as verdicts; a signature whose S is not
/// canonical is false under both rule sets, whatever the GPU computed.
fn read_verdicts(raw: &[u8], canonical: Vec<bool>) -> impl Iterator<Item = Verdicts> + '_ {
    raw.chunks_exact(4).zip(canonical).map(|(w, ok)| {
        let w = u32::from_le_bytes(w.try_into().expect("4 bytes"));
        Verdicts { zip215: ok && w & ZIP215_BIT != 0, strict: ok && w & STRICT_BIT != 0 }
    })
}

fn block(raw: &[u8], i: usize) -> [u8; 32] {
    raw[i * 32..i * 32 + 32].try_into().expect("32 bytes")
}

fn params(count: usize) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..4].copy_from_slice(&(count as u32).to_le_bytes());
    p
}

impl GpuEd25519 {
    /// The build `Kernel::for_adapter` picks.
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_kernel(ctx, Kernel::for_adapter(ctx))
    }

    /// A given build (the caller checks `kernel.runs_on(ctx)`).
    pub fn with_kernel(ctx: &GpuContext, kernel: Kernel) -> Self {
        let btable = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ed25519-btable"),
            contents: basepoint::table(),
            usage: wgpu::BufferUsages::STORAGE,
        });
        GpuEd25519 {
            kernel,
            verify: pipeline(ctx, kernel, "verify"),
            btable,
            slots: Mutex::new(Vec::new()),
            stats: Mutex::new(CallStats::default()),
            debug_field: OnceLock::new(),
            debug_point: OnceLock::new(),
        }
    }

    /// The build it runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Where the time of this kernel's `verify` calls went so far.
    pub fn stats(&self) -> CallStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verdict per item, exactly `vigil_engine::sig::verify(rules, ..)` for each.
    pub fn verify(&self, ctx: &GpuContext, rules: RuleSet, items: &[SigItem<'_>]) -> Result<Vec<bool>, GpuError> {
        Ok(self.verify_both(ctx, items)?.into_iter().map(|v| v.get(rules)).collect())
    }

    /// Both rule sets' verdicts per item from one pass (the curve work is
    /// shared).
    pub fn verify_both(&self, ctx: &GpuContext, items: &[SigItem<'_>]) -> Result<Vec<Verdicts>, GpuError> {
        let mut out = vec![Verdicts::default(); items.len()];
        if items.is_empty() {
            return Ok(out);
        }
        let started = Instant::now();
        let mut stats = CallStats { calls: 1, signatures: items.len() as u64, ..CallStats::default() };
        let chunk = items.len().div_ceil(4).clamp(MIN_CHUNK, MAX_PER_DISPATCH).min(items.len());
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.first().is_none_or(|s| s.capacity < chunk) {
            *slots = (0..2).map(|_| Slot::new(ctx, &self.verify, &self.btable, chunk)).collect();
        }
        // The chunk on the GPU while the next is prepared: (slot, first
        // item, canonical S flags, submission).
        let mut pending: Option<(usize, usize, Vec<bool>, wgpu::SubmissionIndex)> = None;
        let mut collect = |(slot, start, canonical, submission): (usize, usize, Vec<bool>, wgpu::SubmissionIndex),
                           slots: &[Slot],
                           stats: &mut CallStats| {
            let t = Instant::now();
            let raw = ctx.read_back(&slots[slot].readback, submission, canonical.len() * 4)?;
            stats.waiting += t.elapsed();
            for (o, v) in out[start..].iter_mut().zip(read_verdicts(&raw, canonical)) {
                *o = v;
            }
            Ok::<(), GpuError>(())
        };
        for (c, part) in items.chunks(chunk).enumerate() {
            let slot = &slots[c % 2];
            let t = Instant::now();
            let (data, canonical) = prepare(part);
            stats.prepare += t.elapsed();
            let t = Instant::now();
            ctx.queue.write_buffer(&slot.input, 0, &data);
            ctx.queue.write_buffer(&slot.params, 0, &params(part.len()));
            let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass =
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                pass.set_pipeline(&self.verify);
                pass.set_bind_group(0, &slot.bind_group, &[]);
                pass.dispatch_workgroups(self.kernel.groups(part.len()), 1, 1);
            }
            encoder.copy_buffer_to_buffer(&slot.output, 0, &slot.readback, 0, (part.len() * 4) as u64);
            let submission = ctx.queue.submit([encoder.finish()]);
            stats.upload += t.elapsed();
            stats.chunks += 1;
            if let Some(previous) = pending.replace((c % 2, c * chunk, canonical, submission)) {
                collect(previous, &slots, &mut stats)?;
            }
        }
        if let Some(last) = pending {
            collect(last, &slots, &mut stats)?;
        }
        drop(slots);
        stats.total = started.elapsed();
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) += stats;
        Ok(out)
    }

    /// Kernel throughput: `items` prepared and uploaded once, then the kernel
    /// dispatched over them again and again for about `seconds` (no upload,
    /// no host work, no read-back in the timing). Returns the verdicts of
    /// the first run (for checking against the CPU) and signatures a second.
    /// One dispatch holds every item: at most 65,535 workgroups.
    pub fn kernel_rate(
        &self,
        ctx: &GpuContext,
        items: &[SigItem<'_>],
        seconds: f64,
    ) -> Result<(Vec<Verdicts>, f64), GpuError> {
        let n = items.len();
        let groups = self.kernel.groups(n);
        if n == 0 || groups > 65_535 {
            return Err(GpuError::Failed(format!("kernel_rate: {n} signatures do not fit one dispatch")));
        }
        let (data, canonical) = prepare(items);
        let (raw, dispatches) =
            ctx.dispatch_rate(&self.verify, &[&data], &params(n), n * 4, &[&self.btable], groups, seconds)?;
        Ok((read_verdicts(&raw, canonical).collect(), dispatches * n as f64))
    }

    /// Debug kernel: field operations on encodings (bit 255 ignored).
    pub fn debug_field(&self, ctx: &GpuContext, pairs: &[([u8; 32], [u8; 32])]) -> Result<Vec<FieldResults>, GpuError> {
        let pipeline = self.debug_field.get_or_init(|| pipeline(ctx, self.kernel, "debug_field"));
        let mut out = Vec::with_capacity(pairs.len());
        for part in pairs.chunks(MAX_PER_DISPATCH) {
            let input: Vec<u8> = part.iter().flat_map(|(a, b)| a.iter().chain(b).copied()).collect();
            let n = part.len();
            let raw = ctx.run(pipeline, &[&input], &params(n), n * 224, &[], self.kernel.groups(n))?;
            for r in raw.chunks_exact(224) {
                out.push(FieldResults {
                    add: block(r, 0),
                    sub: block(r, 1),
                    mul: block(r, 2),
                    square: block(r, 3),
                    invert: block(r, 4),
                    sqrt_ratio: (r[192] == 1, block(r, 5)),
                });
            }
        }
        Ok(out)
    }

    /// Debug kernel: decompression and point arithmetic on (E, a, b).
    pub fn debug_point(
        &self,
        ctx: &GpuContext,
        items: &[([u8; 32], [u8; 32], [u8; 32])],
    ) -> Result<Vec<PointResults>, GpuError> {
        let pipeline = self.debug_point.get_or_init(|| pipeline(ctx, self.kernel, "debug_point"));
        let mut out = Vec::with_capacity(items.len());
        for part in items.chunks(MAX_PER_DISPATCH) {
            let input: Vec<u8> = part.iter().flat_map(|(e, a, b)| e.iter().chain(a).chain(b).copied()).collect();
            let n = part.len();
            let raw = ctx.run(pipeline, &[&input], &params(n), n * 224, &[&self.btable], self.kernel.groups(n))?;
            for r in raw.chunks_exact(224) {
                out.push(PointResults {
                    decodes: r[0] == 1,
                    compress: block(r, 1),
                    double: block(r, 2),
                    plus_base: block(r, 3),
                    double_scalar: block(r, 4),
                    times_eight: block(r, 5),
                    times_eight_is_identity: r[192] == 1,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_parse_and_errors_say_what_they_expect() {
        let k: Kernel = "u64:128:checked".parse().unwrap();
        assert_eq!((k.field, k.workgroup, k.checked), (Field::U64, 128, true));
        assert_eq!(k.to_string().parse::<Kernel>(), Ok(k));
        let k: Kernel = "u32".parse().unwrap();
        assert_eq!((k.field, k.workgroup, k.checked), (Field::U32, 64, false));
        let cases = [
            ("u16", "field Some(\"u16\"): expected u32 or u64"),
            ("u32:0", "workgroup \"0\": expected 1..=1024"),
            ("u32:64:maybe", "\"maybe\": expected checked or unchecked"),
            ("u32:64:checked:x", "\"u32:64:checked:x\": expected FIELD[:WORKGROUP[:checked|unchecked]]"),
        ];
        for (input, message) in cases {
            assert_eq!(input.parse::<Kernel>().unwrap_err().to_string(), message, "{input}");
        }
    }
}
