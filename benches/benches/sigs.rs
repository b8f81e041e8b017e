//! Signature verification per core (one thread), signatures/s, on the same
//! 4,096 signatures (32-byte messages) for every verifier:
//!
//! - ed25519-dalek `verify_strict` and ed25519-zebra `verify`, one at a time;
//! - ed25519-zebra's batch verifier over batches of 64, each signature of a
//!   failed batch checked on its own (what a user of zebra would write);
//! - vigil's lanes (`sig::lanes`, both rule sets; every lane implementation
//!   this CPU runs);
//! - vigil's zip215 path as the product runs it (`verify_many_tuned`: lanes
//!   or batch equations, chosen by measurement) and its batch equation at a
//!   fixed 64 and 1024.
//!
//! Data: every key distinct, 64 keys (IoT devices sign many records each),
//! and every key distinct with 1% of signatures invalid (a flipped message
//! bit: well-formed, so only the equation rejects them). Keys decompressed
//! per signature. ed25519-simd needs AVX-512 for the whole build: it is in
//! `benches/peers/` (see its README).
//!
//! `cargo bench -p vigil-benches --bench sigs`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use vigil_engine::sig::lanes::{Lanes, verify_lanes};
use vigil_engine::sig::{BatchSizer, RuleSet, SigItem, verify_many, verify_many_tuned};

struct Sig {
    pk: [u8; 32],
    msg: [u8; 32],
    sig: [u8; 64],
}

/// `n` signatures by `keys` keys; every `invalid_every`-th has a flipped
/// message bit (0: none).
fn signatures(n: usize, keys: usize, invalid_every: usize) -> Vec<Sig> {
    let keys: Vec<SigningKey> =
        (0..keys).map(|i| SigningKey::from_bytes(&blake3::hash(&i.to_le_bytes()).into())).collect();
    (0..n)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let mut msg: [u8; 32] = blake3::hash(&(i as u64 ^ 0xabcdef).to_le_bytes()).into();
            let sig = key.sign(&msg).to_bytes();
            if invalid_every > 0 && i % invalid_every == invalid_every / 2 {
                msg[i % 32] ^= 1;
            }
            Sig { pk: key.verifying_key().to_bytes(), msg, sig }
        })
        .collect()
}

fn items(sigs: &[Sig]) -> Vec<SigItem<'_>> {
    sigs.iter().map(|s| SigItem { public_key: &s.pk, message: &s.msg, signature: &s.sig }).collect()
}

fn bench(c: &mut Criterion) {
    eprintln!(
        "curve25519-dalek backend: {}; vigil lanes: {}",
        vigil_engine::sig::curve_backend(),
        Lanes::best().map_or("none".to_string(), |l| l.to_string())
    );
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    const N: usize = 4096;
    for (label, keys, invalid_every) in [("distinct_keys", N, 0), ("64_keys", 64, 0), ("1pct_invalid", N, 100)] {
        let sigs = signatures(N, keys, invalid_every);
        let valid: Vec<bool> =
            sigs.iter().map(|s| vigil_engine::sig::verify(RuleSet::Zip215, &s.pk, &s.msg, &s.sig)).collect();
        let n_valid = valid.iter().filter(|&&v| v).count();
        let mut g = c.benchmark_group(format!("sigs_per_core/{label}"));
        g.sample_size(10);
        g.measurement_time(std::time::Duration::from_secs(3));
        g.warm_up_time(std::time::Duration::from_millis(500));
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function("dalek_verify_strict", |b| {
            b.iter(|| {
                let ok = sigs
                    .iter()
                    .filter(|s| {
                        let key = ed25519_dalek::VerifyingKey::from_bytes(&s.pk).unwrap();
                        key.verify_strict(&s.msg, &ed25519_dalek::Signature::from_bytes(&s.sig)).is_ok()
                    })
                    .count();
                assert_eq!(ok, n_valid);
            })
        });
        let items = items(&sigs);
        g.bench_function("zebra_batch_64_then_singles", |b| {
            b.iter(|| assert_eq!(vigil_benches::zebra_batch_64(&items), n_valid))
        });
        let mut out = vec![false; N];
        for lanes in Lanes::ALL.into_iter().filter(|l| l.supported() && *l != Lanes::Portable) {
            for rules in RuleSet::ALL {
                g.bench_function(format!("vigil_lanes_{lanes}_{rules}"), |b| {
                    b.iter(|| {
                        verify_lanes(lanes, rules, &items, &mut out).unwrap();
                        assert_eq!(out.iter().filter(|&&v| v).count(), n_valid);
                    })
                });
            }
        }
        g.bench_function("vigil_zip215_tuned", |b| {
            let mut sizer = BatchSizer::new();
            b.iter(|| {
                one_thread.install(|| verify_many_tuned(RuleSet::Zip215, &items, &mut out, &mut sizer));
                assert_eq!(out.iter().filter(|&&v| v).count(), n_valid);
            })
        });
        for size in [64, 1024] {
            g.bench_function(format!("vigil_zip215_batch_{size}"), |b| {
                b.iter(|| {
                    one_thread.install(|| verify_many(RuleSet::Zip215, &items, &mut out, size));
                    assert_eq!(out.iter().filter(|&&v| v).count(), n_valid);
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
