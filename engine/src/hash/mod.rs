//! The format's hashes (`vigil_format::hash`), and the forms the pipeline
//! uses: many tx_ids, leaves and Merkle nodes per SIMD step
//! ([`lanes`]).

pub mod lanes;

pub use vigil_format::hash::*;

use crate::format::{BlockView, TxView};

/// Fills `ids` and `leaves` with the tx_id and leaf of each of `txs` (all of
/// one block, whose chain id is `chain_id`), many messages per SIMD step.
pub fn tx_ids_and_leaves(chain_id: &Digest, txs: &[TxView<'_>], ids: &mut [Digest], leaves: &mut [Digest]) {
    let signed: Vec<&[u8]> = txs.iter().map(|tx| tx.signed_part()).collect();
    lanes::keyed_hash_many_prefixed(&K_TX, chain_id, &signed, ids);
    let signatures: Vec<[u8; 64]> = txs.iter().map(|tx| *tx.signature()).collect();
    lanes::keyed_hash_pairs(&K_LEAF, ids, &signatures, leaves);
}

/// The Merkle root over `leaves`, a level at a time with many nodes per SIMD
/// step; `scratch` is reused between calls.
pub fn merkle_root(leaves: &[Digest], scratch: &mut Vec<Digest>) -> Digest {
    if leaves.len() <= 1 {
        return leaves.first().copied().unwrap_or(EMPTY_TX_ROOT);
    }
    scratch.clear();
    scratch.extend_from_slice(leaves);
    let mut next = vec![[0u8; 32]; leaves.len().div_ceil(2)];
    let mut n = leaves.len();
    while n > 1 {
        let pairs = n / 2;
        lanes::keyed_hash_nodes(&K_NODE, &scratch[..2 * pairs], &mut next[..pairs]);
        if n % 2 == 1 {
            // An odd last node is carried up unchanged.
            next[pairs] = scratch[n - 1];
        }
        n = pairs + n % 2;
        scratch[..n].copy_from_slice(&next[..n]);
    }
    scratch[0]
}

/// The Merkle root of a block's body, computed from scratch.
pub fn block_tx_root(block: &BlockView<'_>) -> Digest {
    let txs: Vec<TxView<'_>> = block.txs().collect();
    let (mut ids, mut leaves) = (vec![[0u8; 32]; txs.len()], vec![[0u8; 32]; txs.len()]);
    tx_ids_and_leaves(&block.header.chain_id, &txs, &mut ids, &mut leaves);
    merkle_root(&leaves, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_equals_the_one_message_form() {
        for n in 0..300u16 {
            let leaves: Vec<Digest> = (0..n).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
            let mut scratch = leaves.clone();
            let want = merkle_root_in_place(&mut scratch);
            assert_eq!(merkle_root(&leaves, &mut scratch), want, "n={n}");
        }
    }
}
