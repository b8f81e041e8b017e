//! The four keyed BLAKE3 hashes of format v1: tx_id, leaf, Merkle node and
//! block hash, one message at a time (`vigil-engine` computes many at once
//! with SIMD lanes, and its tests check them against these).

use crate::BlockHeader;

/// A 32-byte BLAKE3 output: a hash, a Merkle node or a key.
pub type Digest = [u8; 32];

/// `blake3::derive_key("vigil v1 transaction id", b"")`.
pub const K_TX: Digest = hex32("11fb662fb003661f81ef5f03cafff7f42942fadbed774218168631dd5e7068d1");
/// `blake3::derive_key("vigil v1 merkle leaf", b"")`.
pub const K_LEAF: Digest = hex32("bd6d000455f6d7ae36cb0e4da3ef31cd199c127d42e9eb69c726d0f981496d28");
/// `blake3::derive_key("vigil v1 merkle node", b"")`.
pub const K_NODE: Digest = hex32("0f61b15994b8fde49d6cbb29fc09cb38a38f405221de8cbda5cba124304d5ace");
/// `blake3::derive_key("vigil v1 block hash", b"")`.
pub const K_BLOCK: Digest = hex32("8cc2fa85980c4a506dc0573a46b678f16da726825d77acd1d44176326a8cfd45");

/// `tx_root` of a block with no transactions: `H(K_NODE, b"")`.
pub const EMPTY_TX_ROOT: Digest = hex32("e5283623d6d2e2fc2687a2ce5e63c8a70b2fdb91e28166fd3fe17b69b77f5ad7");

const fn hex32(s: &str) -> Digest {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lowercase hex"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// `tx_id = H(K_TX, chain_id ‖ signed_part)`.
pub fn tx_id(chain_id: &Digest, signed_part: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new_keyed(&K_TX);
    h.update(chain_id);
    h.update(signed_part);
    *h.finalize().as_bytes()
}

/// `leaf = H(K_LEAF, tx_id ‖ signature)`.
pub fn leaf(tx_id: &Digest, signature: &[u8; 64]) -> Digest {
    let mut buf = [0u8; 96];
    buf[..32].copy_from_slice(tx_id);
    buf[32..].copy_from_slice(signature);
    *blake3::keyed_hash(&K_LEAF, &buf).as_bytes()
}

/// `H(K_NODE, left ‖ right)`.
pub fn node(left: &Digest, right: &Digest) -> Digest {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    *blake3::keyed_hash(&K_NODE, &buf).as_bytes()
}

/// The Merkle root over `leaves`, reducing them in place (the slice is
/// scratch afterwards). An odd last node is carried up unchanged.
pub fn merkle_root_in_place(leaves: &mut [Digest]) -> Digest {
    let mut n = leaves.len();
    if n == 0 {
        return EMPTY_TX_ROOT;
    }
    while n > 1 {
        let pairs = n / 2;
        for i in 0..pairs {
            leaves[i] = node(&leaves[2 * i], &leaves[2 * i + 1]);
        }
        if n % 2 == 1 {
            leaves[pairs] = leaves[n - 1];
        }
        n = pairs + n % 2;
    }
    leaves[0]
}

/// `block_hash = H(K_BLOCK, header[0..160])`.
pub fn block_hash(header: &BlockHeader) -> Digest {
    *blake3::keyed_hash(&K_BLOCK, header.hashed_bytes()).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_derived_keys() {
        assert_eq!(K_TX, blake3::derive_key("vigil v1 transaction id", b""));
        assert_eq!(K_LEAF, blake3::derive_key("vigil v1 merkle leaf", b""));
        assert_eq!(K_NODE, blake3::derive_key("vigil v1 merkle node", b""));
        assert_eq!(K_BLOCK, blake3::derive_key("vigil v1 block hash", b""));
        assert_eq!(EMPTY_TX_ROOT, *blake3::keyed_hash(&K_NODE, b"").as_bytes());
    }

    /// A recursive statement of the rule, to check the in-place loop against.
    fn reference_root(level: &[Digest]) -> Digest {
        match level.len() {
            0 => EMPTY_TX_ROOT,
            1 => level[0],
            _ => {
                let next: Vec<Digest> =
                    level.chunks(2).map(|c| if c.len() == 2 { node(&c[0], &c[1]) } else { c[0] }).collect();
                reference_root(&next)
            }
        }
    }

    #[test]
    fn merkle_carries_odd_node_up() {
        for n in 0..300u16 {
            let leaves: Vec<Digest> = (0..n).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
            let mut scratch = leaves.clone();
            let want = reference_root(&leaves);
            assert_eq!(merkle_root_in_place(&mut scratch), want, "n={n}");
        }
        let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
        assert_eq!(merkle_root_in_place(&mut [a, b, c]), node(&node(&a, &b), &c));
    }
}
