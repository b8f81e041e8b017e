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
        let raw = ctx.run(&self.pipeline, &[&words, &descs], &params, messages.len() * 32, &[], groups)?;
        Ok(raw.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect())
    }
}
