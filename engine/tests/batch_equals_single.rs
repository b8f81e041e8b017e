//! Differential test: the zip215 batch verifier gives exactly the single
//! verifier's verdict for every signature, in every batch composition.
//!
//! Signatures (100,000 by default; `VIGIL_DIFF_SIGS` scales it,
//! `VIGIL_DIFF_SEED` picks another seed) come from a seeded ChaCha RNG in
//! families: fresh valid signatures, one-bit flips, S ≥ L, small-order,
//! mixed-order, non-canonical and non-decodable A and R. Each is built to a
//! known verdict under both rule sets (checked against single
//! verification), then they are shuffled into batches of 1..=600 with varied
//! shares of invalid signatures, and `verify_zip215_batch` and `verify_many`
//! must agree with `verify` everywhere. `verify_many(Strict, ..)` must agree
//! with strict single verification.

use curve25519_dalek::scalar::Scalar;
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;
use vigil_engine::sig::{RuleSet, SigItem, verify, verify_many, verify_zip215_batch};

const DEFAULT_SIGS: usize = 100_000;

use crate::common;
use common::env_or;
use common::sig_cases::*;

/// Batches (lists of indices into the signatures) of varied sizes and shares
/// of invalid signatures, covering every signature at least once.
fn mixed_batches(rng: &mut impl Rng, valid: &[bool]) -> Vec<Vec<usize>> {
    let mut good: Vec<usize> = (0..valid.len()).filter(|&i| valid[i]).collect();
    let mut bad: Vec<usize> = (0..valid.len()).filter(|&i| !valid[i]).collect();
    good.shuffle(rng);
    bad.shuffle(rng);
    let mut batches = Vec::new();
    while !good.is_empty() || !bad.is_empty() {
        let size = match rng.random_range(0..10) {
            0..=1 => rng.random_range(1..=8),
            2..=5 => rng.random_range(9..=128),
            _ => rng.random_range(129..=600),
        };
        // Share of invalid signatures: none, exactly one, a few, half, most, all.
        let n_bad = match rng.random_range(0..6) {
            0 => 0,
            1 => 1.min(size),
            2 => (size / 50).max(1),
            3 => size / 2,
            4 => size * 9 / 10,
            _ => size,
        };
        let n_bad = n_bad.min(bad.len());
        let n_good = (size - n_bad).min(good.len());
        let mut batch: Vec<usize> = bad.split_off(bad.len() - n_bad);
        batch.extend(good.split_off(good.len() - n_good));
        if batch.is_empty() {
            // One pool ran dry: take from the other.
            let pool = if good.is_empty() { &mut bad } else { &mut good };
            let take = size.min(pool.len());
            batch.extend(pool.split_off(pool.len() - take));
        }
        // Now and then the same signature twice in one batch.
        if batch.len() > 1 && rng.random_bool(0.05) {
            let dup = batch[rng.random_range(0..batch.len())];
            batch.push(dup);
        }
        batch.shuffle(rng);
        batches.push(batch);
    }
    batches
}

/// Uniformly shuffled signatures cut into batches of random sizes 1..=600.
fn shuffled_batches(rng: &mut impl Rng, n: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut batches = Vec::new();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let size = rng.random_range(1..=600usize).min(rest.len());
        batches.push(rest[..size].to_vec());
        rest = &rest[size..];
    }
    batches
}

/// Runs each batch through `verify_zip215_batch` (batches in parallel) and
/// returns the mismatches with the single verdicts as (batch, index, got).
fn run_batches(sigs: &[Sig], single: &[bool], batches: &[Vec<usize>]) -> Vec<(usize, usize, bool)> {
    batches
        .par_iter()
        .enumerate()
        .flat_map_iter(|(b, batch)| {
            let items: Vec<SigItem<'_>> = batch.iter().map(|&i| sigs[i].item()).collect();
            // Start from the wrong answers, so an unwritten verdict shows.
            let mut out: Vec<bool> = batch.iter().map(|&i| !single[i]).collect();
            verify_zip215_batch(&items, &mut out);
            batch
                .iter()
                .zip(out)
                .filter(|&(&i, got)| got != single[i])
                .map(move |(&i, got)| (b, i, got))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn report_mismatches(what: &str, sigs: &[Sig], single: &[bool], batches: &[Vec<usize>], bad: &[(usize, usize, bool)]) {
    if bad.is_empty() {
        return;
    }
    let mut msg = format!("{what}: {} batch verdicts differ from single verification:\n", bad.len());
    for &(b, i, got) in bad.iter().take(20) {
        msg += &format!(
            "  batch #{b} (size {}), sig #{i}: batch {got}, single {}\n    {}\n",
            batches[b].len(),
            single[i],
            sigs[i].dump()
        );
    }
    if let Some(&(b, _, _)) = bad.first() {
        msg += &format!("  first failing batch's members: {:?}\n", batches[b]);
    }
    panic!("{msg}");
}

#[test]
fn zip215_batch_verdicts_equal_single_verdicts() {
    let n: usize = env_or("VIGIL_DIFF_SIGS", DEFAULT_SIGS);
    let seed: u64 = env_or("VIGIL_DIFF_SEED", DEFAULT_SEED);
    println!("batch_equals_single: {n} signatures, seed {seed:#x} (VIGIL_DIFF_SIGS, VIGIL_DIFF_SEED)");
    let started = Instant::now();
    let lap = |what: &str| println!("  {:>7.2} s  {what}", started.elapsed().as_secs_f64());

    let sigs = generate_all(n, seed);
    lap("generated");

    let verdicts: Vec<(bool, bool)> = sigs
        .par_iter()
        .with_min_len(64)
        .map(|s| {
            (
                verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature),
                verify(RuleSet::Strict, &s.public_key, &s.message, &s.signature),
            )
        })
        .collect();
    let zip215: Vec<bool> = verdicts.iter().map(|v| v.0).collect();
    let strict: Vec<bool> = verdicts.iter().map(|v| v.1).collect();
    lap("single verification, both rule sets");

    // Per-family table.
    let mut table: BTreeMap<Family, [usize; 4]> = Family::ALL.iter().map(|&(f, _)| (f, [0; 4])).collect();
    for (s, (&z, &st)) in sigs.iter().zip(zip215.iter().zip(&strict)) {
        let row = table.get_mut(&s.family).unwrap();
        row[usize::from(!z)] += 1;
        row[2 + usize::from(!st)] += 1;
    }
    println!("  {:<16} {:>7} {:>7} {:>7} {:>7}", "family", "zip ok", "zip bad", "str ok", "str bad");
    for (f, [zv, zi, sv, si]) in &table {
        println!("  {:<16} {zv:>7} {zi:>7} {sv:>7} {si:>7}", format!("{f:?}"));
    }
    let total_valid = zip215.iter().filter(|&&v| v).count();
    println!("  total: {total_valid} zip215-valid, {} invalid", n - total_valid);

    // The signatures are what they were built to be (this also checks the
    // single verifiers against the construction).
    let wrong: Vec<String> = sigs
        .iter()
        .zip(zip215.iter().zip(&strict))
        .filter(|(s, (z, st))| **z != s.want_zip215 || **st != s.want_strict)
        .take(20)
        .map(|(s, (z, st))| {
            format!("  zip215 {z} (built {}), strict {st} (built {}): {}", s.want_zip215, s.want_strict, s.dump())
        })
        .collect();
    assert!(wrong.is_empty(), "single verdicts differ from the construction:\n{}", wrong.join("\n"));

    // Not vacuous: every family appears many times (at least half its
    // expected share), with each zip215 verdict it can have (at least a
    // twentieth of its expected share each; the rarest, NonCanonicalA's
    // valid ones, are about a sixth). Skipped for tiny runs.
    let total_weight: u32 = Family::ALL.iter().map(|(_, w)| w).sum();
    for (f, w) in Family::ALL {
        let [zv, zi, sv, si] = table[&f];
        let expected = n * w as usize / total_weight as usize;
        if expected < 200 {
            continue;
        }
        assert!(zv + zi >= expected / 2, "{f:?}: only {} signatures", zv + zi);
        let (can_valid, can_invalid) = f.possible_zip215();
        if can_valid {
            assert!(zv >= expected / 20, "{f:?}: only {zv} zip215-valid signatures");
        }
        if can_invalid {
            assert!(zi >= expected / 20, "{f:?}: only {zi} zip215-invalid signatures");
        }
        if f == Family::MixedOrderA {
            // Strict-valid exactly when [k]T = 0: both occur.
            assert!(sv >= expected / 20 && si >= expected / 20, "MixedOrderA strict: {sv} valid, {si} invalid");
        }
    }

    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x0ba7_c4e5);
    // Batches with controlled shares of invalid signatures.
    let batches = mixed_batches(&mut rng, &zip215);
    let bad = run_batches(&sigs, &zip215, &batches);
    report_mismatches("mixed batches", &sigs, &zip215, &batches, &bad);
    lap(&format!("verify_zip215_batch, {} mixed batches", batches.len()));

    // Uniformly shuffled, random sizes.
    let batches = shuffled_batches(&mut rng, n);
    let bad = run_batches(&sigs, &zip215, &batches);
    report_mismatches("shuffled batches", &sigs, &zip215, &batches, &bad);
    lap(&format!("verify_zip215_batch, {} shuffled batches", batches.len()));

    // verify_many over all signatures in a shuffled order, with a few batch
    // sizes (1 and 3: every sub-batch goes to the single fallback).
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let items: Vec<SigItem<'_>> = order.iter().map(|&i| sigs[i].item()).collect();
    let want_zip: Vec<bool> = order.iter().map(|&i| zip215[i]).collect();
    let want_strict: Vec<bool> = order.iter().map(|&i| strict[i]).collect();
    for batch in [1usize, 3, 5, 64, 600] {
        let mut out: Vec<bool> = want_zip.iter().map(|v| !v).collect();
        verify_many(RuleSet::Zip215, &items, &mut out, batch);
        let diff: Vec<usize> = (0..n).filter(|&j| out[j] != want_zip[j]).collect();
        assert!(
            diff.is_empty(),
            "verify_many(zip215, batch {batch}): {} verdicts differ from single, e.g.\n  {}",
            diff.len(),
            diff.iter().take(10).map(|&j| sigs[order[j]].dump()).collect::<Vec<_>>().join("\n  ")
        );
        lap(&format!("verify_many(zip215, batch {batch})"));
    }
    for batch in [1usize, 100] {
        let mut out: Vec<bool> = want_strict.iter().map(|v| !v).collect();
        verify_many(RuleSet::Strict, &items, &mut out, batch);
        let diff: Vec<usize> = (0..n).filter(|&j| out[j] != want_strict[j]).collect();
        assert!(
            diff.is_empty(),
            "verify_many(strict, batch {batch}): {} verdicts differ from single, e.g.\n  {}",
            diff.len(),
            diff.iter().take(10).map(|&j| sigs[order[j]].dump()).collect::<Vec<_>>().join("\n  ")
        );
        lap(&format!("verify_many(strict, batch {batch})"));
    }
}

/// 200 valid signatures of all the constructive families, and one invalid
/// signature moved through every 7th position: exactly that one is named.
#[test]
fn one_invalid_signature_in_every_position_is_named() {
    let seed = DEFAULT_SEED ^ 1;
    let sigs = generate_all(3000, seed);
    let valid: Vec<&Sig> = sigs.iter().filter(|s| s.want_zip215).take(200).collect();
    let invalid: Vec<&Sig> = sigs
        .iter()
        .filter(|s| !s.want_zip215 && matches!(s.family, Family::FlipS | Family::MixedOrderA | Family::SmallOrderR))
        .take(8)
        .collect();
    assert_eq!(valid.len(), 200);
    assert!(!invalid.is_empty());
    for bad in invalid {
        assert!(!verify(RuleSet::Zip215, &bad.public_key, &bad.message, &bad.signature));
        for pos in (0..=valid.len()).step_by(7) {
            let mut batch: Vec<&Sig> = valid.clone();
            batch.insert(pos, bad);
            let items: Vec<SigItem<'_>> = batch.iter().map(|s| s.item()).collect();
            let mut out = vec![false; items.len()];
            verify_zip215_batch(&items, &mut out);
            for (j, &ok) in out.iter().enumerate() {
                assert_eq!(ok, j != pos, "position {pos}, member {j}: {}", batch[j].dump());
            }
        }
    }
}

/// Invalid signatures whose errors cancel in an unweighted (or
/// small-weighted) sum: S_1 = s_1 + δ and S_2 = s_2 − c·δ (c in 1..=16), and
/// triples δ_1, δ_2, −(δ_1 + δ_2), hidden among valid ones. A batch
/// equation without unpredictable, independent coefficients would accept
/// them; each must still be named invalid.
#[test]
fn invalid_signatures_whose_errors_cancel_are_still_caught() {
    let sigs = generate_all(2000, DEFAULT_SEED ^ 2);
    let valid: Vec<&Sig> = sigs.iter().filter(|s| s.want_zip215).collect();
    assert!(valid.len() > 500);
    let mut rng = ChaCha20Rng::seed_from_u64(DEFAULT_SEED ^ 3);
    let shift = |sig: &Sig, by: Scalar| {
        let mut s = sig.clone();
        let old = Scalar::from_canonical_bytes(s.signature[32..].try_into().unwrap()).expect("canonical S");
        s.signature[32..].copy_from_slice((old + by).as_bytes());
        s
    };
    for round in 0..300 {
        let delta = random_scalar(&mut rng);
        let bases: Vec<&Sig> = (0..3).map(|_| valid[rng.random_range(0..valid.len())]).collect();
        let invalid: Vec<Sig> = if round % 3 == 2 {
            let delta2 = random_scalar(&mut rng);
            vec![shift(bases[0], delta), shift(bases[1], delta2), shift(bases[2], -(delta + delta2))]
        } else {
            let c = Scalar::from(rng.random_range(1u64..=16));
            vec![shift(bases[0], delta), shift(bases[1], -(c * delta))]
        };
        let mut batch: Vec<(Sig, bool)> = invalid.into_iter().map(|s| (s, false)).collect();
        for _ in 0..rng.random_range(2..=12) {
            batch.push(((*valid[rng.random_range(0..valid.len())]).clone(), true));
        }
        batch.shuffle(&mut rng);
        let items: Vec<SigItem<'_>> = batch.iter().map(|(s, _)| s.item()).collect();
        let mut out: Vec<bool> = batch.iter().map(|(_, want)| !want).collect();
        verify_zip215_batch(&items, &mut out);
        for ((s, want), got) in batch.iter().zip(&out) {
            assert_eq!(verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature), *want, "{}", s.dump());
            assert_eq!(got, want, "round {round}: {}", s.dump());
        }
    }
}
