//! ed25519 signature verification on the GPU (`shaders/field25519.wgsl` +
//! `shaders/ed25519.wgsl`), one invocation a signature, with verdicts equal
//! to [`crate::sig::verify`] under both rule sets.
//!
//! Split of work: the CPU checks that S is canonical (S < L; otherwise the
//! verdict is false under both rule sets and the GPU never sees the item) and
//! computes `k = SHA-512(R ‖ A ‖ M) mod L`. The GPU decompresses A and R
//! exactly as curve25519-dalek does, computes `P = [S]B − [k]A` and returns
//! both verdicts: zip215 (`[8](P − R)` is the identity) and strict (A and R
//! not of small order, and the canonical encoding of P equals R's bytes).

use super::{GpuContext, GpuError};
use crate::sig::{RuleSet, SigItem};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use std::sync::OnceLock;

const SOURCE: &str =
    concat!(include_str!("../../../shaders/field25519.wgsl"), include_str!("../../../shaders/ed25519.wgsl"));
/// Invocations per workgroup (the shader's `@workgroup_size`).
const WORKGROUP: usize = 64;
/// Signatures per dispatch: bounded so no dispatch runs long enough to meet a
/// driver's watchdog.
const MAX_PER_DISPATCH: usize = 1 << 16;
/// Words uploaded per signature: A, R, S, k.
const WORDS_PER_SIG: usize = 32;

/// Verdict bits in the shader's output word.
const ZIP215_BIT: u32 = 1;
const STRICT_BIT: u32 = 2;

pub struct GpuEd25519 {
    verify: wgpu::ComputePipeline,
    /// Debug kernels, compiled on first use.
    debug_field: OnceLock<wgpu::ComputePipeline>,
    debug_point: OnceLock<wgpu::ComputePipeline>,
}

/// Both verdicts for one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdicts {
    pub zip215: bool,
    pub strict: bool,
}

impl Verdicts {
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
    pub add: [u8; 32],
    pub sub: [u8; 32],
    pub mul: [u8; 32],
    pub square: [u8; 32],
    pub invert: [u8; 32],
    pub sqrt_ratio: (bool, [u8; 32]),
}

/// The debug point kernel's results for one encoding E and scalars a, b,
/// with P = decompress(E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointResults {
    pub decodes: bool,
    pub compress: [u8; 32],
    pub double: [u8; 32],
    pub plus_base: [u8; 32],
    /// `[a]B + [b]P`.
    pub double_scalar: [u8; 32],
    pub times_eight: [u8; 32],
    pub times_eight_is_identity: bool,
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
    pub fn new(ctx: &GpuContext) -> Self {
        GpuEd25519 {
            verify: ctx.pipeline("ed25519-verify", SOURCE, "verify"),
            debug_field: OnceLock::new(),
            debug_point: OnceLock::new(),
        }
    }

    /// Verdict per item, exactly `vigil_engine::sig::verify(rules, ..)` for each.
    pub fn verify(&self, ctx: &GpuContext, rules: RuleSet, items: &[SigItem<'_>]) -> Result<Vec<bool>, GpuError> {
        Ok(self.verify_both(ctx, items)?.into_iter().map(|v| v.get(rules)).collect())
    }

    /// Both rule sets' verdicts per item from one pass (the curve work is
    /// shared).
    pub fn verify_both(&self, ctx: &GpuContext, items: &[SigItem<'_>]) -> Result<Vec<Verdicts>, GpuError> {
        let mut out = vec![Verdicts::default(); items.len()];
        // Items with a canonical S go to the GPU; the rest fail both rule sets.
        let mut upload: Vec<u8> = Vec::new();
        let mut slots: Vec<usize> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let s_bytes: [u8; 32] = it.signature[32..].try_into().expect("32 bytes");
            if Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).is_none() {
                continue;
            }
            let r_bytes = &it.signature[..32];
            let mut h = Sha512::new();
            h.update(r_bytes);
            h.update(it.public_key);
            h.update(it.message);
            let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
            upload.extend_from_slice(it.public_key);
            upload.extend_from_slice(r_bytes);
            upload.extend_from_slice(&s_bytes);
            upload.extend_from_slice(k.as_bytes());
            slots.push(i);
        }
        let per = WORDS_PER_SIG * 4;
        for (chunk, idx) in upload.chunks(MAX_PER_DISPATCH * per).zip(slots.chunks(MAX_PER_DISPATCH)) {
            let n = idx.len();
            let groups = n.div_ceil(WORKGROUP) as u32;
            let raw = ctx.run(&self.verify, &[chunk], &params(n), n * 4, groups)?;
            for (j, &i) in idx.iter().enumerate() {
                let w = u32::from_le_bytes(raw[j * 4..j * 4 + 4].try_into().expect("4 bytes"));
                out[i] = Verdicts { zip215: w & ZIP215_BIT != 0, strict: w & STRICT_BIT != 0 };
            }
        }
        Ok(out)
    }

    /// Debug kernel: field operations on encodings (bit 255 ignored).
    pub fn debug_field(&self, ctx: &GpuContext, pairs: &[([u8; 32], [u8; 32])]) -> Result<Vec<FieldResults>, GpuError> {
        let pipeline = self.debug_field.get_or_init(|| ctx.pipeline("ed25519-debug-field", SOURCE, "debug_field"));
        let mut out = Vec::with_capacity(pairs.len());
        for part in pairs.chunks(MAX_PER_DISPATCH) {
            let input: Vec<u8> = part.iter().flat_map(|(a, b)| a.iter().chain(b).copied()).collect();
            let n = part.len();
            let raw = ctx.run(pipeline, &[&input], &params(n), n * 224, n.div_ceil(WORKGROUP) as u32)?;
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
        let pipeline = self.debug_point.get_or_init(|| ctx.pipeline("ed25519-debug-point", SOURCE, "debug_point"));
        let mut out = Vec::with_capacity(items.len());
        for part in items.chunks(MAX_PER_DISPATCH) {
            let input: Vec<u8> = part.iter().flat_map(|(e, a, b)| e.iter().chain(a).chain(b).copied()).collect();
            let n = part.len();
            let raw = ctx.run(pipeline, &[&input], &params(n), n * 224, n.div_ceil(WORKGROUP) as u32)?;
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
