//! The sequential chain rules: links, heights, timestamps, chain id and
//! per-sender nonces. This stage consumes per-block digests computed by the
//! parallel stages and never hashes or verifies anything itself.

use crate::format::{BlockView, TxView};
use crate::hash::Digest;
use crate::report::{Failure, Rule};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fmt;

/// What a later block is checked against: the last well-formed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// Its stored height.
    pub height: u64,
    /// Its block hash (what the next `prev_hash` must be).
    pub hash: Digest,
    /// Its `timestamp_ms` (the next block's may not be earlier).
    pub timestamp_ms: u64,
}

/// What the parallel stages found for one block.
#[derive(Debug, Clone)]
pub struct BlockFacts {
    /// The block hash.
    pub hash: Digest,
    /// The Merkle root of the body as computed.
    pub computed_root: Digest,
    /// `Err` when the `block_signature` rule fails, saying how.
    pub block_signature: Result<(), BlockSignatureFault>,
    /// Indices (ascending) of transactions whose signature does not verify.
    pub bad_tx_signatures: Vec<u32>,
    /// Transactions (ascending index) whose nonce is not the one expected,
    /// from [`ChainState::check_nonces`].
    pub nonce_misses: Vec<NonceMiss>,
}

/// How a block breaks the `block_signature` rule: its proposer's signature
/// does not verify, or its proposer is not one of the given authorities, or
/// both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct BlockSignatureFault {
    /// The block's proposer key.
    pub proposer: [u8; 32],
    /// `proposer_sig` does not verify for `proposer`.
    pub bad_signature: bool,
    /// `proposer` is not an authority (only when authorities are given).
    pub not_authority: bool,
}

impl BlockSignatureFault {
    /// The fault of a block whose signature verified or not
    /// (`signature_ok`) and whose proposer is an authority or not; `None`
    /// when neither is wrong.
    pub fn of(proposer: [u8; 32], signature_ok: bool, is_authority: bool) -> Option<BlockSignatureFault> {
        (!signature_ok || !is_authority).then_some(BlockSignatureFault {
            proposer,
            bad_signature: !signature_ok,
            not_authority: !is_authority,
        })
    }
}

impl fmt::Display for BlockSignatureFault {
    /// What the report says: each problem, `; `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proposer = hex::encode(self.proposer);
        if self.bad_signature {
            write!(f, "proposer_sig does not verify for proposer {proposer}")?;
        }
        if self.bad_signature && self.not_authority {
            f.write_str("; ")?;
        }
        if self.not_authority {
            write!(f, "proposer {proposer} is not an authority")?;
        }
        Ok(())
    }
}

/// A transaction whose nonce breaks the `nonce` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceMiss {
    /// Index of the transaction in what was checked (a block, or a batch).
    pub index: u32,
    /// The nonce it carries.
    pub nonce: u64,
    /// What was expected; `None` once the sender used 2^64 − 1.
    pub expected: Option<u64>,
}

/// Next expected nonce per sender, sharded by sender so that a batch's
/// nonces are checked on all cores: each shard sees its senders'
/// transactions in chain order, and no two shards share a sender.
#[derive(Debug, Clone)]
struct Nonces {
    shards: Vec<HashMap<[u8; 32], Option<u64>>>,
}

const NONCE_SHARDS: usize = 32;
/// Below this many transactions a batch is checked on one thread.
const PARALLEL_NONCES_FROM: usize = 4096;

impl Default for Nonces {
    fn default() -> Self {
        Nonces { shards: vec![HashMap::new(); NONCE_SHARDS] }
    }
}

fn shard_of(sender: &[u8; 32]) -> usize {
    // Keys are curve points, uniform in these bytes; a sender that grinds
    // keys into one shard only slows itself down, never changes a verdict.
    u16::from_le_bytes([sender[0], sender[1]]) as usize % NONCE_SHARDS
}

/// A sender's first transaction in a run. In a run that starts mid-chain
/// its nonce is checked later, against the previous ranges (`vigil
/// stitch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstNonce {
    /// Index of the transaction in what was checked.
    pub index: u32,
    /// Its sender's public key.
    pub sender: [u8; 32],
    /// The nonce it carries.
    pub nonce: u64,
}

/// Checks `txs` (sender, nonce) in order against one shard, advancing it. A
/// sender not seen before is recorded in `firsts` and expects 0, or with
/// `defer` is not checked.
fn check_shard(
    shard: &mut HashMap<[u8; 32], Option<u64>>,
    txs: impl Iterator<Item = (u32, [u8; 32], u64)>,
    defer: bool,
    misses: &mut Vec<NonceMiss>,
    firsts: &mut Vec<FirstNonce>,
) {
    for (index, sender, nonce) in txs {
        let slot = match shard.entry(sender) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                firsts.push(FirstNonce { index, sender, nonce });
                e.insert(Some(if defer { nonce } else { 0 }))
            }
        };
        if *slot != Some(nonce) {
            misses.push(NonceMiss { index, nonce, expected: *slot });
        }
        // Every transaction advances its sender, valid or not; no wrapping.
        *slot = nonce.checked_add(1);
    }
}

/// Chain state carried from block to block (and across calls).
#[derive(Debug, Clone, Default)]
pub struct ChainState {
    /// The chain id every block must carry: pinned by the caller, or taken
    /// from the first well-formed block.
    pub chain_id: Option<Digest>,
    /// The last well-formed block; `None` until the chain has started.
    pub parent: Option<Parent>,
    /// Next expected nonce per sender; `None` once a sender used
    /// 2^64 − 1 (no later nonce is valid). Absent senders expect 0.
    nonces: Nonces,
    /// The run starts mid-chain (a range of a longer chain): the first
    /// block's links and each sender's first nonce are left to `vigil
    /// stitch`, which knows what came before.
    mid_chain: bool,
    /// Senders' first transactions found by the last `check_nonces` call,
    /// by ascending index.
    firsts: Vec<FirstNonce>,
}

impl ChainState {
    /// A state for a run from the start of the chain; `chain_id` pins the
    /// chain id (else the first well-formed block's is taken).
    pub fn new(chain_id: Option<Digest>) -> Self {
        ChainState { chain_id, ..Default::default() }
    }

    /// A state for a range that starts mid-chain (see `mid_chain`).
    pub fn mid_chain(chain_id: Option<Digest>) -> Self {
        ChainState { chain_id, mid_chain: true, ..Default::default() }
    }

    /// Senders first seen by the last [`ChainState::check_nonces`] call, by
    /// ascending index (in a mid-chain run their nonces were not checked).
    pub fn firsts(&self) -> &[FirstNonce] {
        &self.firsts
    }

    /// The next nonce `sender` may use (`None`: none is valid any more).
    pub fn next_nonce(&self, sender: &[u8; 32]) -> Option<u64> {
        self.nonces.shards[shard_of(sender)].get(sender).copied().unwrap_or(Some(0))
    }

    /// Every sender seen, with its next expected nonce.
    pub fn nonces(&self) -> impl Iterator<Item = (&[u8; 32], Option<u64>)> {
        self.nonces.shards.iter().flat_map(|s| s.iter().map(|(k, v)| (k, *v)))
    }

    /// Sets a sender's next expected nonce (a starting state).
    pub fn set_next_nonce(&mut self, sender: [u8; 32], next: Option<u64>) {
        self.nonces.shards[shard_of(&sender)].insert(sender, next);
    }

    /// Applies the `nonce` rule to `txs` (sender, nonce), in chain order,
    /// advancing each sender; returns the misses by ascending index. Large
    /// batches run one shard of senders per rayon task.
    pub fn check_nonces(&mut self, txs: &[([u8; 32], u64)]) -> Vec<NonceMiss> {
        let numbered = |i: u32| (i, txs[i as usize].0, txs[i as usize].1);
        let defer = self.mid_chain;
        let mut misses = Vec::new();
        self.firsts.clear();
        if txs.len() < PARALLEL_NONCES_FROM {
            for i in 0..txs.len() as u32 {
                let shard = &mut self.nonces.shards[shard_of(&txs[i as usize].0)];
                check_shard(shard, std::iter::once(numbered(i)), defer, &mut misses, &mut self.firsts);
            }
            return misses;
        }
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); NONCE_SHARDS];
        for (i, (sender, _)) in txs.iter().enumerate() {
            by_shard[shard_of(sender)].push(i as u32);
        }
        let per_shard: Vec<(Vec<NonceMiss>, Vec<FirstNonce>)> = self
            .nonces
            .shards
            .par_iter_mut()
            .zip(by_shard)
            .map(|(shard, indices)| {
                let (mut misses, mut firsts) = (Vec::new(), Vec::new());
                check_shard(shard, indices.into_iter().map(numbered), defer, &mut misses, &mut firsts);
                (misses, firsts)
            })
            .collect();
        for (m, f) in per_shard {
            misses.extend(m);
            self.firsts.extend(f);
        }
        misses.sort_unstable_by_key(|m| m.index);
        self.firsts.sort_unstable_by_key(|f| f.index);
        misses
    }

    /// Applies the chain rules to `block` and advances the state. Failures
    /// are appended in table order: block rules, then per transaction. The
    /// nonce rule's verdicts come in `facts.nonce_misses`: run
    /// [`ChainState::check_nonces`] over the block's transactions first.
    /// `txs` are the block's transactions, in body order.
    pub fn apply(
        &mut self,
        block: &BlockView<'_>,
        txs: &[TxView<'_>],
        facts: &BlockFacts,
        failures: &mut Vec<Failure>,
    ) {
        let h = block.header;
        let height = h.height();
        let ts = h.timestamp_ms();

        let chain_id = *self.chain_id.get_or_insert(h.chain_id);
        if h.chain_id != chain_id {
            failures.push(block_failure(
                Rule::ChainId,
                format!("chain_id {}, the chain's is {}", hex::encode(h.chain_id), hex::encode(chain_id)),
            ));
        }

        match self.parent {
            // A range's first block: its links are checked by `vigil stitch`.
            None if self.mid_chain => {}
            None => {
                // The first block starts the chain: height and timestamp are
                // not checked; prev_hash must be zeros only at height 0.
                if height == 0 && h.prev_hash != [0; 32] {
                    failures.push(block_failure(
                        Rule::PrevHash,
                        format!("prev_hash {} at height 0, not zeros", hex::encode(h.prev_hash)),
                    ));
                }
            }
            Some(parent) => link_failures(&parent, height, &h.prev_hash, ts, failures),
        }

        if facts.computed_root != h.tx_root {
            failures.push(block_failure(
                Rule::TxRoot,
                format!("tx_root {}, body's Merkle root {}", hex::encode(h.tx_root), hex::encode(facts.computed_root)),
            ));
        }
        if let Err(detail) = &facts.block_signature {
            failures.push(block_failure(Rule::BlockSignature, detail.to_string()));
        }

        let mut bad_sigs = facts.bad_tx_signatures.iter().copied().peekable();
        let mut nonce_misses = facts.nonce_misses.iter().peekable();
        for (i, tx) in txs.iter().enumerate() {
            let i = i as u32;
            let t = tx.header();
            if bad_sigs.next_if_eq(&i).is_some() {
                failures.push(Failure {
                    rule: Rule::TxSignature,
                    tx: Some(i),
                    detail: format!("signature does not verify for sender {}", hex::encode(t.sender)),
                });
            }
            if t.timestamp_ms() > ts {
                failures.push(Failure {
                    rule: Rule::TxTimestamp,
                    tx: Some(i),
                    detail: format!("timestamp_ms {} > block's {ts}", t.timestamp_ms()),
                });
            }
            if let Some(miss) = nonce_misses.next_if(|m| m.index == i) {
                failures.push(nonce_failure(i, miss.nonce, miss.expected));
            }
        }

        self.parent = Some(Parent { height, hash: facts.hash, timestamp_ms: ts });
    }
}

fn block_failure(rule: Rule, detail: String) -> Failure {
    Failure { rule, tx: None, detail }
}

/// The height, prev_hash and timestamp rules of a block against its parent,
/// appended in table order.
pub fn link_failures(parent: &Parent, height: u64, prev_hash: &Digest, timestamp_ms: u64, failures: &mut Vec<Failure>) {
    match parent.height.checked_add(1) {
        Some(expected) if expected == height => {}
        Some(expected) => failures.push(block_failure(
            Rule::Height,
            format!("height {height}, parent's is {} (expected {expected})", parent.height),
        )),
        None => failures.push(block_failure(
            Rule::Height,
            format!("height {height} after a parent at height 2^64-1: no height follows it"),
        )),
    }
    if *prev_hash != parent.hash {
        failures.push(block_failure(
            Rule::PrevHash,
            format!("prev_hash {}, parent's block_hash {}", hex::encode(prev_hash), hex::encode(parent.hash)),
        ));
    }
    if timestamp_ms < parent.timestamp_ms {
        failures.push(block_failure(
            Rule::Timestamp,
            format!("timestamp_ms {timestamp_ms} < parent's {}", parent.timestamp_ms),
        ));
    }
}

/// The nonce rule's failure for transaction `tx`.
pub fn nonce_failure(tx: u32, nonce: u64, expected: Option<u64>) -> Failure {
    let expected = match expected {
        Some(n) => n.to_string(),
        None => "none (the sender used nonce 2^64-1)".to_string(),
    };
    Failure { rule: Rule::Nonce, tx: Some(tx), detail: format!("nonce {nonce}, expected {expected}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_signature_fault_says_each_problem_as_reports_always_have() {
        let p = [0xab; 32];
        let hex = "ab".repeat(32);
        assert_eq!(BlockSignatureFault::of(p, true, true), None);
        let bad = BlockSignatureFault::of(p, false, true).unwrap();
        assert_eq!(bad.to_string(), format!("proposer_sig does not verify for proposer {hex}"));
        let outsider = BlockSignatureFault::of(p, true, false).unwrap();
        assert_eq!(outsider.to_string(), format!("proposer {hex} is not an authority"));
        let both = BlockSignatureFault::of(p, false, false).unwrap();
        assert_eq!(
            both.to_string(),
            format!("proposer_sig does not verify for proposer {hex}; proposer {hex} is not an authority")
        );
    }

    /// The rule stated plainly, one sender map, one transaction at a time.
    fn reference(txs: &[([u8; 32], u64)]) -> Vec<NonceMiss> {
        let mut next: HashMap<[u8; 32], Option<u64>> = HashMap::new();
        let mut misses = Vec::new();
        for (i, (sender, nonce)) in txs.iter().enumerate() {
            let expected = *next.get(sender).unwrap_or(&Some(0));
            if expected != Some(*nonce) {
                misses.push(NonceMiss { index: i as u32, nonce: *nonce, expected });
            }
            next.insert(*sender, nonce.checked_add(1));
        }
        misses
    }

    #[test]
    fn sharded_nonces_equal_the_plain_rule() {
        // Mostly in-order nonces with gaps, repeats and the u64 edge, over
        // batch sizes on both sides of the parallel threshold.
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let senders: Vec<[u8; 32]> = (0..300u32)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.wrapping_mul(2654435761).to_le_bytes());
                k
            })
            .collect();
        let mut next = vec![0u64; senders.len()];
        let mut all = Vec::new();
        for _ in 0..30_000 {
            let s = (rand() % senders.len() as u64) as usize;
            let nonce = match rand() % 50 {
                0 => next[s] + 1,
                1 => next[s].saturating_sub(1),
                2 => u64::MAX,
                _ => next[s],
            };
            next[s] = nonce.wrapping_add(1);
            all.push((senders[s], nonce));
        }
        let want = reference(&all);
        assert!(want.len() > 100);
        for batch in [1usize, 100, 4095, 4096, 10_000, 30_000] {
            let mut chain = ChainState::default();
            let mut got = Vec::new();
            for (c, chunk) in all.chunks(batch).enumerate() {
                got.extend(chain.check_nonces(chunk).into_iter().map(|mut m| {
                    m.index += (c * batch) as u32;
                    m
                }));
            }
            assert_eq!(got, want, "batch {batch}");
        }
    }
}
