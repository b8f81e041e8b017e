//! Keyed BLAKE3 of many messages on the GPU (`shaders/blake3.wgsl`), one
//! invocation a message, checked bit for bit against the blake3 crate; and
//! format v1's block digests (tx_ids, leaves, Merkle levels) built on it.
//!
//! `vigil verify` keeps hashing on the CPU's SIMD lanes (millions of
//! transactions a second a core, far from the bottleneck); shipping every
//! transaction's bytes to the device to hash them there is measured in the
//! GPU speed work, not assumed to pay.

use super::{GpuContext, GpuError};
use crate::format::TxView;
use crate::hash::{self, Digest};
use rayon::prelude::*;

const SOURCE: &str = vigil_shaders::BLAKE3;
/// Invocations per workgroup (the shader's `@workgroup_size`).
const WORKGROUP: usize = 64;
/// Messages per dispatch: bounded so no dispatch runs long enough to meet a
/// driver's watchdog, and within the 65,535-workgroup limit.
const MAX_PER_DISPATCH: usize = 1 << 18;
/// The longest message the shader takes: 2^16 chunks of 1 KiB (its
/// chaining-value stack holds MAX_DEPTH = 17 entries).
pub const MAX_MESSAGE: usize = 64 << 20;

/// BLAKE3 on the device: many messages hashed at once, one invocation per
/// message (a benchmark and cross-check of the CPU hash stage; the verifier
/// hashes on the CPU).
pub struct GpuBlake3 {
    pipeline: wgpu::ComputePipeline,
}

impl GpuBlake3 {
    /// Compiles the kernel on `ctx`'s device.
    pub fn new(ctx: &GpuContext) -> Self {
        // Without wgpu's run-time checks (measured on an NVIDIA H200: they
        // cost the kernel most of its speed). The shader's indices are in
        // range by construction for what `pack` builds: descriptors point
        // inside the words buffer, and messages of at most MAX_MESSAGE bytes
        // keep the chaining-value stack within MAX_DEPTH.
        GpuBlake3 { pipeline: ctx.pipeline_with("blake3", SOURCE, "main", &[], false) }
    }

    /// `out[i] = blake3::keyed_hash(key, messages[i])`. In chunks (a quarter
    /// of the call, 4,096 to 2^18 messages): while the device uploads,
    /// hashes and returns one, the CPU packs the next, so a large call is
    /// bound by the transfers, not by packing.
    pub fn keyed_hash_many(
        &self,
        ctx: &GpuContext,
        key: &[u8; 32],
        messages: &[&[u8]],
    ) -> Result<Vec<[u8; 32]>, GpuError> {
        let mut out = Vec::with_capacity(messages.len());
        let chunk = messages.len().div_ceil(4).clamp(4096, MAX_PER_DISPATCH);
        let mut pending: Option<(super::Bound, wgpu::SubmissionIndex, usize)> = None;
        for part in messages.chunks(chunk) {
            let (words, descs, params, groups) = pack(key, part)?;
            let bound = ctx.bind(&self.pipeline, &[&words, &descs], &params, part.len() * 32, &[]);
            let submission = ctx.queue.submit([bound.commands(ctx, &self.pipeline, groups, 1, true)]);
            if let Some((bound, submission, n)) = pending.replace((bound, submission, part.len())) {
                out.extend(digests(&ctx.read_back(&bound.readback, submission, n * 32)?));
            }
        }
        if let Some((bound, submission, n)) = pending {
            out.extend(digests(&ctx.read_back(&bound.readback, submission, n * 32)?));
        }
        Ok(out)
    }

    /// One block's tx_ids, leaves and Merkle root (format v1), every hash on
    /// the GPU: the tx_ids in one dispatch, the leaves in one, then one a
    /// Merkle level (an odd last node is carried up unchanged).
    pub fn block_digests(
        &self,
        ctx: &GpuContext,
        chain_id: &Digest,
        txs: &[TxView<'_>],
    ) -> Result<(Vec<Digest>, Vec<Digest>, Digest), GpuError> {
        let signed: Vec<Vec<u8>> = txs.iter().map(|tx| [&chain_id[..], tx.signed_part()].concat()).collect();
        let ids = self.keyed_hash_many(ctx, &hash::K_TX, &signed.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
        let pairs: Vec<Vec<u8>> = ids.iter().zip(txs).map(|(id, tx)| [&id[..], &tx.signature()[..]].concat()).collect();
        let leaves = self.keyed_hash_many(ctx, &hash::K_LEAF, &pairs.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
        if leaves.is_empty() {
            return Ok((ids, leaves, hash::EMPTY_TX_ROOT));
        }
        let mut level = leaves.clone();
        while level.len() > 1 {
            let nodes: Vec<&[u8]> = level.as_flattened().chunks_exact(64).collect();
            let mut next = self.keyed_hash_many(ctx, &hash::K_NODE, &nodes)?;
            if level.len() % 2 == 1 {
                next.push(level[level.len() - 1]);
            }
            level = next;
        }
        Ok((ids, leaves, level[0]))
    }

    /// Kernel throughput: `messages` packed and uploaded once, then hashed
    /// again and again on the device for about `seconds` (no upload or
    /// read-back in the timing). Returns the first run's digests (for
    /// checking) and messages a second. One dispatch holds every message:
    /// at most 65,535 workgroups.
    pub fn kernel_rate(
        &self,
        ctx: &GpuContext,
        key: &[u8; 32],
        messages: &[&[u8]],
        seconds: f64,
    ) -> Result<(Vec<[u8; 32]>, f64), GpuError> {
        if messages.is_empty() || messages.len() > 65_535 * WORKGROUP {
            return Err(GpuError::Failed(format!("kernel_rate: {} messages do not fit one dispatch", messages.len())));
        }
        let (words, descs, params, groups) = pack(key, messages)?;
        let (raw, dispatches) =
            ctx.dispatch_rate(&self.pipeline, &[&words, &descs], &params, messages.len() * 32, &[], groups, seconds)?;
        Ok((digests(&raw), dispatches * messages.len() as f64))
    }
}

/// Message words, descriptors, parameters, workgroups.
type Packed = (Vec<u8>, Vec<u8>, Vec<u8>, u32);

/// The shader's inputs for `messages`: message words (each message
/// zero-padded to whole 64-byte blocks, at least one), descriptors (first
/// word, length), parameters (key, count) and the workgroup count.
fn pack(key: &[u8; 32], messages: &[&[u8]]) -> Result<Packed, GpuError> {
    if let Some(m) = messages.iter().find(|m| m.len() > MAX_MESSAGE) {
        return Err(GpuError::Failed(format!("a {}-byte message: the GPU hashes at most {MAX_MESSAGE}", m.len())));
    }
    // Each message's place (first byte, padded length), then the copies on
    // all cores.
    let padded = |m: &[u8]| m.len().div_ceil(64).max(1) * 64;
    let total: usize = messages.iter().map(|m| padded(m)).sum();
    let mut words = vec![0u8; total];
    let mut descs = vec![0u8; messages.len() * 8];
    let mut places: Vec<&mut [u8]> = Vec::with_capacity(messages.len());
    let mut rest = &mut words[..];
    for m in messages {
        let (place, tail) = std::mem::take(&mut rest).split_at_mut(padded(m));
        places.push(place);
        rest = tail;
    }
    let mut first_word = 0u32;
    for (d, m) in descs.chunks_exact_mut(8).zip(messages) {
        d[..4].copy_from_slice(&first_word.to_le_bytes());
        d[4..].copy_from_slice(&(m.len() as u32).to_le_bytes());
        first_word += (padded(m) / 4) as u32;
    }
    places.into_par_iter().zip(messages.par_iter()).for_each(|(place, m)| place[..m.len()].copy_from_slice(m));
    let mut params = Vec::with_capacity(48);
    params.extend_from_slice(key);
    params.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    params.resize(48, 0);
    let groups = messages.len().div_ceil(WORKGROUP).max(1) as u32;
    Ok((words, descs, params, groups))
}

fn digests(raw: &[u8]) -> Vec<[u8; 32]> {
    raw.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect()
}
