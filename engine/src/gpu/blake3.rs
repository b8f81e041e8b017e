//! Keyed BLAKE3 of many messages on the GPU (`shaders/blake3.wgsl`), one
//! invocation a message, checked bit for bit against the blake3 crate.

use super::{GpuContext, GpuError};

const SOURCE: &str = include_str!("../../../shaders/blake3.wgsl");
/// Invocations per workgroup (the shader's `@workgroup_size`).
const WORKGROUP: usize = 64;
/// Messages per dispatch: bounded so no dispatch runs long enough to meet a
/// driver's watchdog, and within the 65,535-workgroup limit.
const MAX_PER_DISPATCH: usize = 1 << 18;

pub struct GpuBlake3 {
    pipeline: wgpu::ComputePipeline,
}

impl GpuBlake3 {
    pub fn new(ctx: &GpuContext) -> Self {
        GpuBlake3 { pipeline: ctx.pipeline("blake3", SOURCE, "main") }
    }

    /// `out[i] = blake3::keyed_hash(key, messages[i])`.
    pub fn keyed_hash_many(
        &self,
        ctx: &GpuContext,
        key: &[u8; 32],
        messages: &[&[u8]],
    ) -> Result<Vec<[u8; 32]>, GpuError> {
        let mut out = Vec::with_capacity(messages.len());
        for part in messages.chunks(MAX_PER_DISPATCH) {
            out.extend(self.dispatch(ctx, key, part)?);
        }
        Ok(out)
    }

    fn dispatch(&self, ctx: &GpuContext, key: &[u8; 32], messages: &[&[u8]]) -> Result<Vec<[u8; 32]>, GpuError> {
        let mut words: Vec<u8> = Vec::new();
        let mut descs: Vec<u8> = Vec::with_capacity(messages.len() * 8);
        for m in messages {
            let first_word = (words.len() / 4) as u32;
            descs.extend_from_slice(&first_word.to_le_bytes());
            descs.extend_from_slice(&(m.len() as u32).to_le_bytes());
            words.extend_from_slice(m);
            // Zero-pad to whole blocks, at least one.
            let padded = m.len().div_ceil(64).max(1) * 64;
            words.resize(words.len() + padded - m.len(), 0);
        }
        let mut params = Vec::with_capacity(48);
        params.extend_from_slice(key);
        params.extend_from_slice(&(messages.len() as u32).to_le_bytes());
        params.resize(48, 0);
        let groups = messages.len().div_ceil(WORKGROUP).max(1) as u32;
        let raw = ctx.run(&self.pipeline, &[&words, &descs], &params, messages.len() * 32, groups)?;
        Ok(raw.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect())
    }
}
