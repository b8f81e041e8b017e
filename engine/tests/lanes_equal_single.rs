//! Differential test: every lane implementation this CPU runs gives exactly
//! the single verifier's verdict (`sig::verify`), under both rule sets, on
//! every family of `vigil_engine::test_utils::sig_cases` (fresh signatures from few and many
//! senders, one-bit flips of R, S, A and the message, S = L, S + L, high
//! bits of S, small-order, mixed-order, non-canonical and non-decodable A
//! and R), in shuffled groups so that every kind of signature shares lanes
//! with every other.
//!
//! 40,000 signatures by default (the portable emulation checks 4,000);
//! `VIGIL_LANES_SIGS` scales it (10^6 is the long run, see the README) and
//! `VIGIL_DIFF_SEED` picks another seed. A lane implementation the CPU
//! cannot run prints SKIPPING, or fails under `VIGIL_REQUIRE_LANES`.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;
use vigil_engine::sig::lanes::{Lanes, verify_lanes};
use vigil_engine::sig::{RuleSet, SigItem, verify};

use crate::common;
use common::env_or;
use common::sig_cases::*;

#[test]
fn lane_verdicts_equal_single_verdicts_on_every_family() {
    let n: usize = env_or("VIGIL_LANES_SIGS", 40_000);
    let seed: u64 = env_or("VIGIL_DIFF_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let sigs = generate_all(n, seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
    let items: Vec<SigItem<'_>> = order.iter().map(|&i| sigs[i].item()).collect();
    println!("lanes_equal_single: {n} signatures, seed {seed:#x}, generated in {:.1?}", started.elapsed());
    for rules in RuleSet::ALL {
        let want: Vec<bool> =
            items.par_iter().map(|it| verify(rules, it.public_key, it.message, it.signature)).collect();
        // The single verdicts are the ones the signatures were built to have.
        for (&i, &w) in order.iter().zip(&want) {
            let built = if rules == RuleSet::Zip215 { sigs[i].want_zip215 } else { sigs[i].want_strict };
            assert_eq!(w, built, "single {rules} differs from the construction: {}", sigs[i].dump());
        }
        for lanes in common::lanes::runnable("lanes_equal_single") {
            let count = if lanes == Lanes::Portable { n.min(4_000) } else { n };
            let t = Instant::now();
            // Start from the wrong answers, so an unwritten verdict shows.
            let mut got: Vec<bool> = want[..count].iter().map(|v| !v).collect();
            got.par_chunks_mut(512).zip(items[..count].par_chunks(512)).for_each(|(out, items)| {
                verify_lanes(lanes, rules, items, out).unwrap();
            });
            let mut per_family: BTreeMap<String, [usize; 3]> = BTreeMap::new();
            let mut wrong = Vec::new();
            for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let s = &sigs[order[j]];
                let row = per_family.entry(format!("{:?}", s.family)).or_default();
                row[usize::from(!w)] += 1;
                if g != w {
                    row[2] += 1;
                    wrong.push(format!("  {lanes} {rules}: got {g}, want {w}: {}", s.dump()));
                }
            }
            println!("  {lanes} lanes, {rules}: {count} signatures in {:.1?}", t.elapsed());
            for (f, [ok, bad, mismatched]) in &per_family {
                println!("    {f:<16} {ok:>7} valid {bad:>7} invalid {mismatched:>3} mismatched");
            }
            assert!(
                wrong.is_empty(),
                "{} lane verdicts differ:\n{}",
                wrong.len(),
                wrong[..wrong.len().min(20)].join("\n")
            );
            // Not vacuous: both verdicts occur.
            assert!(want[..count].iter().any(|&v| v) && want[..count].iter().any(|&v| !v));
        }
    }
}
