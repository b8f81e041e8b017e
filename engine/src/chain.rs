//! The sequential chain rules: links, heights, timestamps, chain id and
//! per-sender nonces. This stage consumes per-block digests computed by the
//! parallel stages and never hashes or verifies anything itself.

use crate::format::BlockView;
use crate::hash::Digest;
use crate::report::{Failure, Rule};
use std::collections::HashMap;

/// What a later block is checked against: the last well-formed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub height: u64,
    pub hash: Digest,
    pub timestamp_ms: u64,
}

/// What the parallel stages found for one block.
#[derive(Debug, Clone)]
pub struct BlockFacts {
    pub hash: Digest,
    /// The Merkle root of the body as computed.
    pub computed_root: Digest,
    /// `Err(detail)` when the block signature rule fails.
    pub block_signature: Result<(), String>,
    /// Indices (ascending) of transactions whose signature does not verify.
    pub bad_tx_signatures: Vec<u32>,
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
    nonces: HashMap<[u8; 32], Option<u64>>,
}

impl ChainState {
    pub fn new(chain_id: Option<Digest>) -> Self {
        ChainState {
            chain_id,
            ..Default::default()
        }
    }

    /// The next nonce `sender` may use (`None`: none is valid any more).
    pub fn next_nonce(&self, sender: &[u8; 32]) -> Option<u64> {
        self.nonces.get(sender).copied().unwrap_or(Some(0))
    }

    /// Every sender seen, with its next expected nonce.
    pub fn nonces(&self) -> impl Iterator<Item = (&[u8; 32], Option<u64>)> {
        self.nonces.iter().map(|(k, v)| (k, *v))
    }

    /// Sets a sender's next expected nonce (a starting state).
    pub fn set_next_nonce(&mut self, sender: [u8; 32], next: Option<u64>) {
        self.nonces.insert(sender, next);
    }

    /// Applies the chain rules to `block` and advances the state. Failures
    /// are appended in table order: block rules, then per transaction.
    pub fn apply(&mut self, block: &BlockView<'_>, facts: &BlockFacts, failures: &mut Vec<Failure>) {
        let h = block.header;
        let height = h.height();
        let ts = h.timestamp_ms();

        let chain_id = *self.chain_id.get_or_insert(h.chain_id);
        if h.chain_id != chain_id {
            failures.push(block_failure(
                Rule::ChainId,
                format!(
                    "chain_id {}, the chain's is {}",
                    hex::encode(h.chain_id),
                    hex::encode(chain_id)
                ),
            ));
        }

        match self.parent {
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
            Some(parent) => {
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
                if h.prev_hash != parent.hash {
                    failures.push(block_failure(
                        Rule::PrevHash,
                        format!(
                            "prev_hash {}, parent's block_hash {}",
                            hex::encode(h.prev_hash),
                            hex::encode(parent.hash)
                        ),
                    ));
                }
                if ts < parent.timestamp_ms {
                    failures.push(block_failure(
                        Rule::Timestamp,
                        format!("timestamp_ms {ts} < parent's {}", parent.timestamp_ms),
                    ));
                }
            }
        }

        if facts.computed_root != h.tx_root {
            failures.push(block_failure(
                Rule::TxRoot,
                format!(
                    "tx_root {}, body's Merkle root {}",
                    hex::encode(h.tx_root),
                    hex::encode(facts.computed_root)
                ),
            ));
        }
        if let Err(detail) = &facts.block_signature {
            failures.push(block_failure(Rule::BlockSignature, detail.clone()));
        }

        let mut bad_sigs = facts.bad_tx_signatures.iter().copied().peekable();
        for (i, tx) in block.txs().enumerate() {
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
            let nonce = t.nonce();
            let slot = self.nonces.entry(t.sender).or_insert(Some(0));
            if *slot != Some(nonce) {
                let expected = match *slot {
                    Some(n) => n.to_string(),
                    None => "none (the sender used nonce 2^64-1)".to_string(),
                };
                failures.push(Failure {
                    rule: Rule::Nonce,
                    tx: Some(i),
                    detail: format!("nonce {nonce}, expected {expected}"),
                });
            }
            *slot = nonce.checked_add(1);
        }

        self.parent = Some(Parent {
            height,
            hash: facts.hash,
            timestamp_ms: ts,
        });
    }
}

fn block_failure(rule: Rule, detail: String) -> Failure {
    Failure { rule, tx: None, detail }
}
