//! Signature verification per core (one thread), signatures/s: ed25519-dalek
//! `verify_strict` and ed25519-zebra `verify` one at a time, ed25519-zebra's
//! batch verifier, and vigil's zip215 batch verifier, at batch sizes 1 to
//! 4096, with every key distinct and with 64 keys (IoT devices sign many
//! records each). 32-byte messages, keys decompressed per signature.
//!
//! `cargo bench -p vigil-benches --bench sigs`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use vigil_engine::sig::lanes::{Lanes, verify_lanes};
use vigil_engine::sig::{RuleSet, SigItem, verify_zip215_batch};

struct Sig {
    pk: [u8; 32],
    msg: [u8; 32],
    sig: [u8; 64],
}

fn signatures(n: usize, keys: usize) -> Vec<Sig> {
    let keys: Vec<SigningKey> =
        (0..keys).map(|i| SigningKey::from_bytes(&blake3::hash(&i.to_le_bytes()).into())).collect();
    (0..n)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let msg: [u8; 32] = blake3::hash(&(i as u64 ^ 0xabcdef).to_le_bytes()).into();
            Sig { pk: key.verifying_key().to_bytes(), msg, sig: key.sign(&msg).to_bytes() }
        })
        .collect()
}

fn items(sigs: &[Sig]) -> Vec<SigItem<'_>> {
    sigs.iter().map(|s| SigItem { public_key: &s.pk, message: &s.msg, signature: &s.sig }).collect()
}

fn bench(c: &mut Criterion) {
    eprintln!("curve25519-dalek backend: {}", vigil_engine::sig::curve_backend());
    const N: usize = 4096;
    for (label, keys) in [("distinct_keys", N), ("64_keys", 64)] {
        let sigs = signatures(N, keys);
        let mut g = c.benchmark_group(format!("sigs_per_core/{label}"));
        g.sample_size(10);
        g.measurement_time(std::time::Duration::from_secs(2));
        g.warm_up_time(std::time::Duration::from_millis(500));
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function("dalek_verify_strict", |b| {
            b.iter(|| {
                for s in &sigs {
                    let key = ed25519_dalek::VerifyingKey::from_bytes(&s.pk).unwrap();
                    assert!(key.verify_strict(&s.msg, &ed25519_dalek::Signature::from_bytes(&s.sig)).is_ok());
                }
            })
        });
        g.bench_function("zebra_verify", |b| {
            b.iter(|| {
                for s in &sigs {
                    let key = ed25519_zebra::VerificationKey::try_from(s.pk).unwrap();
                    assert!(key.verify(&ed25519_zebra::Signature::from_bytes(&s.sig), &s.msg).is_ok());
                }
            })
        });
        g.bench_function("zebra_batch_4096", |b| {
            b.iter(|| {
                let mut v = ed25519_zebra::batch::Verifier::new();
                for s in &sigs {
                    v.queue((s.pk.into(), ed25519_zebra::Signature::from_bytes(&s.sig), &s.msg));
                }
                assert!(v.verify(rand::rng()).is_ok());
            })
        });
        let items = items(&sigs);
        let mut out = vec![false; N];
        for lanes in Lanes::ALL.into_iter().filter(|l| l.supported() && *l != Lanes::Portable) {
            for rules in RuleSet::ALL {
                g.bench_function(format!("vigil_lanes_{lanes}_{rules}"), |b| {
                    b.iter(|| {
                        verify_lanes(lanes, rules, &items, &mut out).unwrap();
                        assert!(out.iter().all(|&ok| ok));
                    })
                });
            }
        }
        for size in [1, 4, 16, 64, 256, 1024, 4096] {
            g.bench_with_input(BenchmarkId::new("vigil_batch", size), &size, |b, &size| {
                b.iter(|| {
                    for (items, out) in items.chunks(size).zip(out.chunks_mut(size)) {
                        verify_zip215_batch(items, out);
                    }
                    assert!(out.iter().all(|&ok| ok));
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
