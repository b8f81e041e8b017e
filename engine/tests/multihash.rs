//! `vigil_engine::hash::lanes` against `blake3::keyed_hash`, bit for bit, on
//! every backend this CPU runs. A backend the CPU lacks is reported on
//! stderr past the test harness's output capture, so the line shows in a
//! plain `cargo test`; set `VIGIL_MULTIHASH_REQUIRE=avx2,avx512` to make a
//! missing backend a failure instead (CI on known hardware).

use std::io::Write;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_engine::hash::lanes::{
    Backend, backend, backend_name, keyed_hash_many, keyed_hash_many_prefixed, keyed_hash_many_prefixed_with,
    keyed_hash_many_with, keyed_hash_nodes, keyed_hash_nodes_with, keyed_hash_pairs, keyed_hash_pairs_with,
};

/// The backends to test; says loudly which ones this CPU lacks.
fn backends() -> Vec<Backend> {
    let required = std::env::var("VIGIL_MULTIHASH_REQUIRE").unwrap_or_default();
    Backend::ALL
        .into_iter()
        .filter(|b| {
            let ok = b.is_available();
            if !ok {
                let feature = match b {
                    Backend::Avx512 => "avx512f",
                    Backend::Avx2 => "avx2",
                    Backend::Portable => unreachable!(),
                };
                assert!(
                    !required.split(',').any(|r| r.trim() == b.name()),
                    "VIGIL_MULTIHASH_REQUIRE names {} but the CPU lacks {feature}",
                    b.name()
                );
                // Straight to the stream: libtest captures only `eprintln!`.
                let _ = writeln!(std::io::stderr(), "SKIPPING {} tests: CPU lacks {feature}", b.name());
            }
            ok
        })
        .collect()
}

fn bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

fn key(rng: &mut ChaCha8Rng) -> [u8; 32] {
    rng.random()
}

fn reference(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

#[test]
fn backends_available() {
    let all = backends();
    eprintln!(
        "multihash: detected backend {} ({} lanes); testing {:?}",
        backend_name(),
        backend().lanes(),
        all.iter().map(|b| b.name()).collect::<Vec<_>>()
    );
    assert!(all.contains(&Backend::Portable));
    assert!(all.contains(&backend()));
}

#[test]
fn every_length_up_to_2048() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let data = bytes(&mut rng, 2048 + 64);
    for b in backends() {
        let k = key(&mut rng);
        // All lengths in one batch, each message at a different alignment.
        let msgs: Vec<&[u8]> = (0..=2048).map(|n| &data[n % 64..n % 64 + n]).collect();
        let mut out = vec![[0u8; 32]; msgs.len()];
        keyed_hash_many_with(b, &k, &msgs, &mut out);
        for (m, o) in msgs.iter().zip(&out) {
            assert_eq!(o, blake3::keyed_hash(&k, m).as_bytes(), "{} len {}", b.name(), m.len());
        }
        // Every length alone, and as a full lane group plus one.
        for n in 0..=2048 {
            let want = *blake3::keyed_hash(&k, &data[..n]).as_bytes();
            let mut one = [[0u8; 32]];
            keyed_hash_many_with(b, &k, &[&data[..n]], &mut one);
            assert_eq!(one[0], want, "{} alone, len {n}", b.name());
            if n % 61 == 0 || n % 1024 <= 1 || n % 1024 >= 1023 {
                let group: Vec<&[u8]> = vec![&data[..n]; b.lanes() + 1];
                let mut out = vec![[0u8; 32]; group.len()];
                keyed_hash_many_with(b, &k, &group, &mut out);
                assert!(out.iter().all(|o| *o == want), "{} group, len {n}", b.name());
            }
        }
    }
}

#[test]
fn random_mixed_batches() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let data = bytes(&mut rng, 65_624 + 64);
    for b in backends() {
        for round in 0..60 {
            let k = key(&mut rng);
            let count = rng.random_range(0..=70);
            let msgs: Vec<&[u8]> = (0..count)
                .map(|_| {
                    let len = match rng.random_range(0..100) {
                        0 if round % 4 == 0 => 65_624,
                        1..=3 => rng.random_range(8_000..=9_000),
                        4..=8 => rng.random_range(1025..=8200),
                        9..=40 => rng.random_range(0..=3000),
                        _ => rng.random_range(88..=488),
                    };
                    let at = rng.random_range(0..=data.len() - len);
                    &data[at..at + len]
                })
                .collect();
            let mut out = vec![[0u8; 32]; count];
            keyed_hash_many_with(b, &k, &msgs, &mut out);
            for (i, (m, o)) in msgs.iter().zip(&out).enumerate() {
                assert_eq!(
                    o,
                    blake3::keyed_hash(&k, m).as_bytes(),
                    "{} round {round} msg {i} len {}",
                    b.name(),
                    m.len()
                );
            }
        }
    }
}

#[test]
fn prefixed() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let data = bytes(&mut rng, 4096);
    for b in backends() {
        let k = key(&mut rng);
        // The tx_id shape: 32-byte chain id, every payload length to 2048.
        let chain_id = bytes(&mut rng, 32);
        let msgs: Vec<&[u8]> = (0..=2048).map(|n| &data[n % 7..n % 7 + n]).collect();
        let mut out = vec![[0u8; 32]; msgs.len()];
        keyed_hash_many_prefixed_with(b, &k, &chain_id, &msgs, &mut out);
        for (m, o) in msgs.iter().zip(&out) {
            assert_eq!(*o, reference(&k, &[&chain_id, m]), "{} len {}", b.name(), m.len());
        }
        // Other prefix lengths, random mixed payloads.
        for plen in [0, 1, 31, 33, 63, 64, 65, 100, 1023, 1024, 1025, 3000, 9000] {
            let prefix = bytes(&mut rng, plen);
            let count = rng.random_range(0..=70);
            let msgs: Vec<&[u8]> = (0..count)
                .map(|_| {
                    let len = rng.random_range(0..=1500);
                    let at = rng.random_range(0..=data.len() - len);
                    &data[at..at + len]
                })
                .collect();
            let mut out = vec![[0u8; 32]; count];
            keyed_hash_many_prefixed_with(b, &k, &prefix, &msgs, &mut out);
            for (m, o) in msgs.iter().zip(&out) {
                assert_eq!(*o, reference(&k, &[&prefix, m]), "{} prefix {plen} len {}", b.name(), m.len());
            }
        }
    }
}

fn check_pairs<const R: usize>(b: Backend, rng: &mut ChaCha8Rng, count: usize) {
    let k = key(rng);
    let left: Vec<[u8; 32]> = (0..count).map(|_| rng.random()).collect();
    let right: Vec<[u8; R]> = (0..count)
        .map(|_| {
            let mut r = [0u8; R];
            rng.fill(&mut r[..]);
            r
        })
        .collect();
    let mut out = vec![[0u8; 32]; count];
    keyed_hash_pairs_with(b, &k, &left, &right, &mut out);
    for i in 0..count {
        assert_eq!(out[i], reference(&k, &[&left[i], &right[i]]), "{} R={R} count {count} i {i}", b.name());
    }
}

#[test]
fn pairs_leaves_and_nodes() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for b in backends() {
        for count in 0..=70 {
            check_pairs::<64>(b, &mut rng, count); // leaf: tx_id ‖ signature
            check_pairs::<32>(b, &mut rng, count); // node: left ‖ right
        }
        for count in [1, 5, 17] {
            check_pairs::<0>(b, &mut rng, count);
            check_pairs::<1>(b, &mut rng, count);
            check_pairs::<31>(b, &mut rng, count);
            check_pairs::<33>(b, &mut rng, count);
            check_pairs::<992>(b, &mut rng, count);
            check_pairs::<993>(b, &mut rng, count);
            check_pairs::<1500>(b, &mut rng, count);
        }
        // One Merkle level, children side by side.
        for count in 0..=70 {
            let k = key(&mut rng);
            let children: Vec<[u8; 32]> = (0..2 * count).map(|_| rng.random()).collect();
            let mut out = vec![[0u8; 32]; count];
            keyed_hash_nodes_with(b, &k, &children, &mut out);
            for i in 0..count {
                assert_eq!(out[i], reference(&k, &[&children[2 * i], &children[2 * i + 1]]), "{} node {i}", b.name());
            }
        }
    }
}

#[test]
fn engine_keys_and_default_backend() {
    use vigil_engine::hash::{K_LEAF, K_NODE, K_TX, leaf, node, tx_id};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let chain_id: [u8; 32] = rng.random();
    let txs: Vec<Vec<u8>> = (0..37)
        .map(|_| {
            let n = rng.random_range(100..=400);
            bytes(&mut rng, n)
        })
        .collect();
    let tx_refs: Vec<&[u8]> = txs.iter().map(|t| &t[..]).collect();
    let mut ids = vec![[0u8; 32]; txs.len()];
    keyed_hash_many_prefixed(&K_TX, &chain_id, &tx_refs, &mut ids);
    for (t, id) in txs.iter().zip(&ids) {
        assert_eq!(*id, tx_id(&chain_id, t));
    }
    let sigs: Vec<[u8; 64]> = (0..txs.len())
        .map(|_| {
            let mut s = [0u8; 64];
            rng.fill(&mut s[..]);
            s
        })
        .collect();
    let mut leaves = vec![[0u8; 32]; txs.len()];
    keyed_hash_pairs(&K_LEAF, &ids, &sigs, &mut leaves);
    for i in 0..txs.len() {
        assert_eq!(leaves[i], leaf(&ids[i], &sigs[i]));
    }
    let mut nodes = vec![[0u8; 32]; txs.len() / 2];
    keyed_hash_nodes(&K_NODE, &leaves[..2 * nodes.len()], &mut nodes);
    for i in 0..nodes.len() {
        assert_eq!(nodes[i], node(&leaves[2 * i], &leaves[2 * i + 1]));
    }
    let mut plain = vec![[0u8; 32]; txs.len()];
    keyed_hash_many(&K_TX, &tx_refs, &mut plain);
    for (t, h) in txs.iter().zip(&plain) {
        assert_eq!(h, blake3::keyed_hash(&K_TX, t).as_bytes());
    }
}

#[test]
#[should_panic(expected = "output slice length")]
fn output_length_mismatch_panics() {
    let mut out = [[0u8; 32]; 2];
    keyed_hash_many(&[0; 32], &[b"a"], &mut out);
}
