//! Keyed BLAKE3 over many short messages per core (one thread): the blake3
//! crate one call per message against `vigil_engine::hash::lanes` on each
//! backend this CPU runs, batches of 4096 messages of 64 to 1024 bytes, a
//! mixed 100-400-byte batch (transaction sizes), and the engine's fixed
//! shapes (tx_id with a 32-byte chain id prefix, 96-byte leaves, 64-byte
//! Merkle nodes). Throughput is reported in messages/s and bytes/s.
//!
//! `cargo bench -p vigil-benches --bench multihash`

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime};
use std::hint::black_box;
use std::time::Duration;
use vigil_engine::hash::lanes::{
    Backend, backend, keyed_hash_many_prefixed_with, keyed_hash_many_with, keyed_hash_nodes_with, keyed_hash_pairs_with,
};

const N: usize = 4096;
const KEY: [u8; 32] = [7; 32];

fn data(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| {
            let ok = b.is_available();
            if !ok {
                eprintln!("SKIPPING {} benches: CPU lacks it", b.name());
            }
            ok
        })
        .collect()
}

/// A group reporting both messages/s and bytes/s.
fn both(c: &mut Criterion, name: &str, bytes: usize, f: impl FnOnce(&mut BenchmarkGroup<'_, WallTime>)) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(300));
    g.throughput(Throughput::ElementsAndBytes { elements: N as u64, bytes: bytes as u64 });
    f(&mut g);
    g.finish();
}

fn bench(c: &mut Criterion) {
    eprintln!("multihash backend: {} ({} lanes)", backend().name(), backend().lanes());
    let backends = backends();
    let pool = data(N * 1100);
    let mut out = vec![[0u8; 32]; N];

    // Messages of one length, at varying alignment.
    let mut lens: Vec<(String, Vec<usize>)> =
        [64, 96, 128, 200, 300, 1024].iter().map(|&n| (format!("len_{n}"), vec![n; N])).collect();
    // Transaction-like sizes, 100 to 400 bytes.
    lens.push(("mixed_100_400".into(), (0..N).map(|i| 100 + (i * 7919) % 301).collect()));
    for (name, lens) in &lens {
        let mut at = 0;
        let msgs: Vec<&[u8]> = lens
            .iter()
            .map(|&n| {
                let m = &pool[at..at + n];
                at += n + 3;
                m
            })
            .collect();
        let total: usize = lens.iter().sum();
        both(c, &format!("multihash_per_core/{name}"), total, |g| {
            g.bench_function("blake3_keyed_hash_each", |b| {
                b.iter(|| {
                    for (m, o) in msgs.iter().zip(out.iter_mut()) {
                        *o = *blake3::keyed_hash(&KEY, m).as_bytes();
                    }
                    black_box(&out);
                })
            });
            for &be in &backends {
                g.bench_function(be.name(), |b| {
                    b.iter(|| {
                        keyed_hash_many_with(be, &KEY, &msgs, &mut out);
                        black_box(&out);
                    })
                });
            }
        });
    }

    // Ceiling: the blake3 crate on one long input (its own 16-chunk SIMD),
    // the same bytes as the 1024-byte batch.
    both(c, "multihash_per_core/ceiling_one_4MiB_input", N * 1024, |g| {
        g.bench_function("blake3_keyed_hash_once", |b| {
            b.iter(|| black_box(blake3::keyed_hash(&KEY, &pool[..N * 1024])))
        });
    });

    // tx_id = H(K_TX, chain_id ‖ tx), tx 100-400 bytes.
    let chain_id = [9u8; 32];
    let mut at = 0;
    let txs: Vec<&[u8]> = (0..N)
        .map(|i| {
            let n = 100 + (i * 7919) % 301;
            let m = &pool[at..at + n];
            at += n;
            m
        })
        .collect();
    let total: usize = txs.iter().map(|t| t.len() + 32).sum();
    both(c, "multihash_per_core/tx_id_prefixed_100_400", total, |g| {
        g.bench_function("blake3_hasher_each", |b| {
            b.iter(|| {
                for (m, o) in txs.iter().zip(out.iter_mut()) {
                    let mut h = blake3::Hasher::new_keyed(&KEY);
                    h.update(&chain_id);
                    h.update(m);
                    *o = *h.finalize().as_bytes();
                }
                black_box(&out);
            })
        });
        for &be in &backends {
            g.bench_function(be.name(), |b| {
                b.iter(|| {
                    keyed_hash_many_prefixed_with(be, &KEY, &chain_id, &txs, &mut out);
                    black_box(&out);
                })
            });
        }
    });

    // Leaves: H(K_LEAF, tx_id ‖ signature), 96 bytes.
    let ids: Vec<[u8; 32]> = (0..N).map(|i| pool[i * 32..i * 32 + 32].try_into().unwrap()).collect();
    let sigs: Vec<[u8; 64]> = (0..N).map(|i| pool[i * 64..i * 64 + 64].try_into().unwrap()).collect();
    both(c, "multihash_per_core/leaf_32_64", N * 96, |g| {
        g.bench_function("blake3_keyed_hash_each", |b| {
            b.iter(|| {
                for ((id, sig), o) in ids.iter().zip(&sigs).zip(out.iter_mut()) {
                    let mut buf = [0u8; 96];
                    buf[..32].copy_from_slice(id);
                    buf[32..].copy_from_slice(sig);
                    *o = *blake3::keyed_hash(&KEY, &buf).as_bytes();
                }
                black_box(&out);
            })
        });
        for &be in &backends {
            g.bench_function(be.name(), |b| {
                b.iter(|| {
                    keyed_hash_pairs_with(be, &KEY, &ids, &sigs, &mut out);
                    black_box(&out);
                })
            });
        }
    });

    // Merkle nodes: H(K_NODE, left ‖ right), 64 bytes, one level of 2N children.
    let children: Vec<[u8; 32]> = (0..2 * N).map(|i| pool[i * 32..i * 32 + 32].try_into().unwrap()).collect();
    both(c, "multihash_per_core/node_32_32", N * 64, |g| {
        g.bench_function("blake3_keyed_hash_each", |b| {
            b.iter(|| {
                for (pair, o) in children.chunks_exact(2).zip(out.iter_mut()) {
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(&pair[0]);
                    buf[32..].copy_from_slice(&pair[1]);
                    *o = *blake3::keyed_hash(&KEY, &buf).as_bytes();
                }
                black_box(&out);
            })
        });
        for &be in &backends {
            g.bench_function(be.name(), |b| {
                b.iter(|| {
                    keyed_hash_nodes_with(be, &KEY, &children, &mut out);
                    black_box(&out);
                })
            });
        }
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
