//! GPU ed25519 (WGSL) against the CPU verifier, bit for bit, under both rule
//! sets: field operations and point decompression/arithmetic against a
//! reference (field) and curve25519-dalek (points), every shared vector
//! (RFC 8032, speccheck, Wycheproof), and a differential test of random and
//! mutated signatures built with the same families as
//! `batch_equals_single.rs` (20,000 by default; `VIGIL_GPU_DIFF_SIGS` scales
//! it, `VIGIL_DIFF_SEED` picks another seed). Needs a GPU adapter: on a
//! machine without one the tests say so and pass; with `VIGIL_REQUIRE_GPU=1`
//! (CI, on lavapipe) a missing adapter fails them.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;
use vigil_engine::gpu::GpuContext;
use vigil_engine::gpu::ed25519::{Field, GpuEd25519, Kernel};
use vigil_engine::sig::lanes::verify_lanes;
use vigil_engine::sig::{RuleSet, SigItem, verify};

const DEFAULT_DIFF_SIGS: usize = 20_000;

use crate::common;
use common::data::{read_vectors as read, unhex, vectors_json as json};
use common::env_or;
use common::sig_cases::*;

// ---------------------------------------------------------------------------
// Set-up

fn context() -> Option<GpuContext> {
    let ctx = common::gpu::or_skip(GpuContext::with_options(&common::gpu::options()))?;
    eprintln!("GPU adapter: {} ({}, {})", ctx.adapter.name, ctx.adapter.backend, ctx.adapter.device_type);
    Some(ctx)
}

/// One verifier per build of the kernel: the 16-bit-limb field on every
/// adapter, the 64-bit-product field where the adapter has SHADER_INT64
/// (both as vigil picks them: workgroup 64, without wgpu's run-time
/// checks), and the latter with another workgroup size and the checks.
/// Each must give the CPU's verdicts.
fn builds(ctx: &GpuContext) -> Vec<GpuEd25519> {
    let mut kernels = vec![Kernel { field: Field::U32, workgroup: 64, checked: false }];
    for k in [
        Kernel { field: Field::U64, workgroup: 64, checked: false },
        Kernel { field: Field::U64, workgroup: 128, checked: true },
    ] {
        if k.runs_on(ctx) {
            kernels.push(k);
        } else {
            eprintln!("kernel {k}: the adapter has no SHADER_INT64; not tested here");
        }
    }
    kernels.into_iter().map(|k| GpuEd25519::with_kernel(ctx, k)).collect()
}

/// Runs `items` on the GPU (`verify_both`, one pass for both rule sets) and
/// returns the (zip215, strict) verdicts.
fn gpu_verdicts(ctx: &GpuContext, gpu: &GpuEd25519, items: &[SigItem<'_>]) -> (Vec<bool>, Vec<bool>) {
    let started = Instant::now();
    let both = gpu.verify_both(ctx, items).expect("GPU verify");
    eprintln!("  GPU: {} signatures in {:.2?}", items.len(), started.elapsed());
    let zip: Vec<bool> = both.iter().map(|v| v.zip215).collect();
    let strict: Vec<bool> = both.iter().map(|v| v.strict).collect();
    (zip, strict)
}

fn cpu_verdicts(rules: RuleSet, items: &[SigItem<'_>]) -> Vec<bool> {
    items.par_iter().map(|it| verify(rules, it.public_key, it.message, it.signature)).collect()
}

/// The GPU's verdicts equal those of every lane implementation this CPU runs.
fn assert_lanes_agree(what: &str, rules: RuleSet, items: &[SigItem<'_>], gpu: &[bool]) {
    for lanes in common::lanes::runnable(what) {
        let mut got = vec![false; items.len()];
        got.par_chunks_mut(512).zip(items.par_chunks(512)).for_each(|(out, items)| {
            verify_lanes(lanes, rules, items, out).unwrap();
        });
        assert_same(&format!("{what}, CPU = {lanes} lanes"), rules, items, gpu, &got);
        eprintln!("  {rules}: GPU == {lanes} lanes on {}", items.len());
    }
}

/// Panics naming every item where the GPU differs from the CPU.
fn assert_same(what: &str, rules: RuleSet, items: &[SigItem<'_>], gpu: &[bool], cpu: &[bool]) {
    assert_eq!(gpu.len(), items.len());
    let wrong: Vec<String> = items
        .iter()
        .zip(gpu.iter().zip(cpu))
        .enumerate()
        .filter(|(_, (_, (g, c)))| g != c)
        .map(|(i, (it, (g, c)))| {
            format!(
                "  #{i}: GPU {g}, CPU {c}: pk {} msg {} sig {}",
                hex::encode(it.public_key),
                hex::encode(it.message),
                hex::encode(it.signature)
            )
        })
        .take(50)
        .collect();
    assert!(wrong.is_empty(), "{what} ({rules}): GPU != CPU:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// A reference for GF(2^255 - 19): 32-bit digits in u64, canonical results.

type Fe = [u64; 8];

const PRIME: Fe =
    [0xffff_ffed, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0x7fff_ffff];

fn ge(a: &Fe, b: &Fe) -> bool {
    for i in (0..8).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

fn sub_raw(a: &Fe, b: &Fe) -> Fe {
    let mut r = [0u64; 8];
    let mut borrow = 0i64;
    for i in 0..8 {
        let v = a[i] as i64 - b[i] as i64 - borrow;
        borrow = i64::from(v < 0);
        r[i] = (v + (borrow << 32)) as u64;
    }
    assert_eq!(borrow, 0);
    r
}

/// Any number of 32-bit-weighted columns (each < 2^58) to the canonical value.
fn norm(cols: &[u64]) -> Fe {
    let mut cols = cols.to_vec();
    loop {
        let mut carry = 0u64;
        for c in cols.iter_mut() {
            let v = *c + carry;
            *c = v & 0xffff_ffff;
            carry = v >> 32;
        }
        if carry > 0 {
            cols.push(carry);
        }
        if cols.len() <= 8 {
            break;
        }
        let high: Vec<u64> = cols.split_off(8);
        for (i, h) in high.into_iter().enumerate() {
            if i < cols.len() {
                cols[i] += 38 * h;
            } else {
                cols.push(38 * h);
            }
        }
    }
    cols.resize(8, 0);
    let mut r: Fe = cols.try_into().unwrap();
    while ge(&r, &PRIME) {
        r = sub_raw(&r, &PRIME);
    }
    r
}

fn fe_bytes(b: &[u8; 32]) -> Fe {
    let mut w = [0u64; 8];
    for i in 0..8 {
        w[i] = u64::from(u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()));
    }
    w[7] &= 0x7fff_ffff;
    norm(&w)
}

fn fe_to_bytes(a: &Fe) -> [u8; 32] {
    let mut b = [0u8; 32];
    for i in 0..8 {
        b[4 * i..4 * i + 4].copy_from_slice(&(a[i] as u32).to_le_bytes());
    }
    b
}

fn fadd(a: &Fe, b: &Fe) -> Fe {
    let cols: Vec<u64> = (0..8).map(|i| a[i] + b[i]).collect();
    norm(&cols)
}

fn fneg(a: &Fe) -> Fe {
    norm(&sub_raw(&PRIME, a))
}

fn fsub(a: &Fe, b: &Fe) -> Fe {
    fadd(a, &fneg(b))
}

fn fmul(a: &Fe, b: &Fe) -> Fe {
    let mut cols = [0u64; 17];
    for i in 0..8 {
        for j in 0..8 {
            let p = a[i] * b[j];
            cols[i + j] += p & 0xffff_ffff;
            cols[i + j + 1] += p >> 32;
        }
    }
    norm(&cols)
}

/// a^e, e little-endian bytes.
fn fpow(a: &Fe, e: &[u8; 32]) -> Fe {
    let mut r = norm(&[1]);
    for bit in (0..256).rev() {
        r = fmul(&r, &r);
        if e[bit / 8] >> (bit % 8) & 1 == 1 {
            r = fmul(&r, a);
        }
    }
    r
}

fn exponent(minus: u8, shift: u32) -> [u8; 32] {
    // (p - minus) >> shift, for small `minus`.
    let mut v = fe_to_bytes(&PRIME);
    v[0] -= minus;
    let mut n = [0u8; 32];
    // Shift right by `shift` bits (< 8).
    for i in 0..32 {
        let hi = if i + 1 < 32 { v[i + 1] } else { 0 };
        n[i] = ((u16::from(v[i]) | (u16::from(hi) << 8)) >> shift) as u8;
    }
    n
}

fn sqrt_m1() -> Fe {
    // 2^((p-1)/4)
    fpow(&norm(&[2]), &exponent(1, 2))
}

/// curve25519-dalek's `sqrt_ratio_i`, step for step.
fn fsqrt_ratio(u: &Fe, v: &Fe) -> (bool, Fe) {
    let v3 = fmul(&fmul(v, v), v);
    let v7 = fmul(&fmul(&v3, &v3), v);
    let mut r = fmul(&fmul(u, &v3), &fpow(&fmul(u, &v7), &exponent(5, 3)));
    let check = fmul(v, &fmul(&r, &r));
    let i = sqrt_m1();
    let correct = check == *u;
    let flipped = check == fneg(u);
    let flipped_i = check == fmul(&fneg(u), &i);
    if flipped || flipped_i {
        r = fmul(&r, &i);
    }
    if r[0] & 1 == 1 {
        r = fneg(&r);
    }
    (correct || flipped, r)
}

fn random_bytes(rng: &mut impl Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

/// Field inputs with edge cases: 0, 1, p - 1, p, p + 1, 2^255 - 1 (= p + 18),
/// and all-ones (bit 255 ignored), then random values.
fn field_inputs(rng: &mut impl Rng, n: usize) -> Vec<[u8; 32]> {
    let p = fe_to_bytes(&PRIME);
    let plus = |k: u8| {
        let mut v = p;
        v[0] = v[0].wrapping_add(k);
        v
    };
    let mut zero = [0u8; 32];
    let mut v = vec![zero, plus(19), plus(18), p, plus(1), [0xff; 32], [0x7f; 32]];
    zero[0] = 1;
    v.push(zero);
    let mut pm1 = p;
    pm1[0] -= 1;
    v.push(pm1);
    while v.len() < n {
        v.push(random_bytes(rng));
    }
    v
}

#[test]
fn gpu_field_ops_equal_the_reference() {
    let Some(ctx) = context() else { return };
    for gpu in builds(&ctx) {
        eprintln!("-- kernel {}", gpu.kernel());
        let mut rng = ChaCha20Rng::seed_from_u64(0xf1e1d);
        let xs = field_inputs(&mut rng, 600);
        let mut pairs: Vec<([u8; 32], [u8; 32])> = Vec::new();
        for (i, a) in xs.iter().enumerate() {
            pairs.push((*a, xs[(i * 7 + 3) % xs.len()]));
            if i < 12 {
                for b in &xs[..12] {
                    pairs.push((*a, *b));
                }
            }
        }
        let started = Instant::now();
        let got = gpu.debug_field(&ctx, &pairs).unwrap();
        eprintln!("field ops: {} pairs in {:.2?}", pairs.len(), started.elapsed());
        let mut squares = 0;
        for ((a, b), g) in pairs.iter().zip(&got) {
            let (fa, fb) = (fe_bytes(a), fe_bytes(b));
            let ctx = format!("a {} b {}", hex::encode(a), hex::encode(b));
            assert_eq!(g.add, fe_to_bytes(&fadd(&fa, &fb)), "add: {ctx}");
            assert_eq!(g.sub, fe_to_bytes(&fsub(&fa, &fb)), "sub: {ctx}");
            assert_eq!(g.mul, fe_to_bytes(&fmul(&fa, &fb)), "mul: {ctx}");
            assert_eq!(g.square, fe_to_bytes(&fmul(&fa, &fa)), "square: {ctx}");
            let inv = fpow(&fa, &exponent(2, 0));
            assert_eq!(g.invert, fe_to_bytes(&inv), "invert: {ctx}");
            if fa != [0; 8] {
                assert_eq!(fmul(&fa, &inv), norm(&[1]), "reference inverse");
            }
            let (ok, r) = fsqrt_ratio(&fa, &fb);
            squares += usize::from(ok);
            assert_eq!(g.sqrt_ratio, (ok, fe_to_bytes(&r)), "sqrt_ratio_i: {ctx}");
        }
        eprintln!("sqrt_ratio_i: {squares} of {} ratios were squares", pairs.len());
        assert!(squares > pairs.len() / 4 && squares < pairs.len() * 3 / 4);
    }
}

/// Encodings: random bytes (about half decode), the torsion points, y ≥ p,
/// x = 0 with the sign bit, multiples of B.
fn point_inputs(rng: &mut impl Rng, n: usize) -> Vec<[u8; 32]> {
    let mut v: Vec<[u8; 32]> = EIGHT_TORSION.iter().map(|t| t.compress().to_bytes()).collect();
    let p = fe_to_bytes(&PRIME);
    for y in 0u8..19 {
        let mut e = p;
        e[0] += y;
        v.push(e);
        e[31] |= 0x80;
        v.push(e);
    }
    for base in [[0u8; 32], p] {
        for y in [0u8, 1] {
            let mut e = base;
            e[0] = e[0].wrapping_add(y);
            if base == p && y == 0 {
                e[0] = 0xec; // p - 1
            }
            e[31] |= 0x80;
            v.push(e);
        }
    }
    v.push([0xff; 32]);
    while v.len() < n {
        if rng.random_bool(0.5) {
            v.push(random_bytes(rng));
        } else {
            let s = Scalar::from_bytes_mod_order(random_bytes(rng));
            let mut pt = EdwardsPoint::mul_base(&s);
            if rng.random_bool(0.3) {
                pt += EIGHT_TORSION[rng.random_range(0..8)];
            }
            v.push(pt.compress().to_bytes());
        }
    }
    v
}

#[test]
fn gpu_points_equal_curve25519_dalek() {
    let Some(ctx) = context() else { return };
    for gpu in builds(&ctx) {
        eprintln!("-- kernel {}", gpu.kernel());
        let mut rng = ChaCha20Rng::seed_from_u64(0x90147);
        let encodings = point_inputs(&mut rng, 400);
        let items: Vec<([u8; 32], [u8; 32], [u8; 32])> = encodings
            .iter()
            .map(|e| {
                let a = Scalar::from_bytes_mod_order(random_bytes(&mut rng));
                let b = Scalar::from_bytes_mod_order(random_bytes(&mut rng));
                (*e, a.to_bytes(), b.to_bytes())
            })
            .collect();
        let started = Instant::now();
        let got = gpu.debug_point(&ctx, &items).unwrap();
        eprintln!("point ops: {} encodings in {:.2?}", items.len(), started.elapsed());
        let mut decoded = 0;
        let mut small = 0;
        for ((e, a, b), g) in items.iter().zip(&got) {
            let ctx = format!("E {} a {} b {}", hex::encode(e), hex::encode(a), hex::encode(b));
            let want = CompressedEdwardsY(*e).decompress();
            assert_eq!(g.decodes, want.is_some(), "decodes: {ctx}");
            let Some(p) = want else { continue };
            decoded += 1;
            assert_eq!(g.compress, p.compress().to_bytes(), "compress: {ctx}");
            assert_eq!(g.double, (p + p).compress().to_bytes(), "double: {ctx}");
            assert_eq!(g.plus_base, (p + ED25519_BASEPOINT_POINT).compress().to_bytes(), "plus B: {ctx}");
            let (sa, sb) = (Scalar::from_canonical_bytes(*a).unwrap(), Scalar::from_canonical_bytes(*b).unwrap());
            let want_ds = EdwardsPoint::mul_base(&sa) + p * sb;
            assert_eq!(g.double_scalar, want_ds.compress().to_bytes(), "[a]B + [b]P: {ctx}");
            assert_eq!(g.times_eight, p.mul_by_cofactor().compress().to_bytes(), "[8]P: {ctx}");
            assert_eq!(g.times_eight_is_identity, p.is_small_order(), "small order: {ctx}");
            small += usize::from(p.is_small_order());
        }
        eprintln!("{decoded} of {} encodings decoded, {small} of small order", items.len());
        assert!(decoded > items.len() / 2 && decoded < items.len());
    }
}

// ---------------------------------------------------------------------------
// Shared vectors

struct Case {
    public_key: [u8; 32],
    message: Vec<u8>,
    signature: [u8; 64],
}

impl Case {
    fn item(&self) -> SigItem<'_> {
        SigItem { public_key: &self.public_key, message: &self.message, signature: &self.signature }
    }
}

fn rfc_cases() -> Vec<Case> {
    let text = String::from_utf8(read("rfc8032-sign.input")).expect("utf-8");
    let cases: Vec<Case> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let (pk, sig) = (unhex(f[1]), unhex(f[3]));
            let msg = unhex(f[2]);
            Case { public_key: pk.try_into().unwrap(), signature: sig[..64].try_into().unwrap(), message: msg }
        })
        .collect();
    assert_eq!(cases.len(), 1024);
    cases
}

fn speccheck_cases() -> Vec<Case> {
    let file = json("speccheck-cases.json");
    file.as_array()
        .expect("array")
        .iter()
        .map(|c| Case {
            public_key: unhex(c["pub_key"].as_str().unwrap()).try_into().unwrap(),
            message: unhex(c["message"].as_str().unwrap()),
            signature: unhex(c["signature"].as_str().unwrap()).try_into().unwrap(),
        })
        .collect()
}

fn wycheproof_cases() -> Vec<Case> {
    let file = json("wycheproof-ed25519_test.json");
    let mut cases = Vec::new();
    for group in file["testGroups"].as_array().expect("testGroups") {
        let pk = unhex(group["publicKey"]["pk"].as_str().unwrap());
        for t in group["tests"].as_array().expect("tests") {
            let sig = unhex(t["sig"].as_str().unwrap());
            let (Ok(public_key), Ok(signature)) = (<[u8; 32]>::try_from(&pk[..]), <[u8; 64]>::try_from(&sig[..]))
            else {
                continue;
            };
            cases.push(Case { public_key, message: unhex(t["msg"].as_str().unwrap()), signature });
        }
    }
    cases
}

#[test]
fn gpu_equals_cpu_on_every_shared_vector() {
    let Some(ctx) = context() else { return };
    for gpu in builds(&ctx) {
        eprintln!("-- kernel {}", gpu.kernel());
        let speccheck = speccheck_cases();
        let expected = json("speccheck-expected.json");
        for (name, cases) in
            [("rfc8032", rfc_cases()), ("speccheck", speccheck_cases()), ("wycheproof", wycheproof_cases())]
        {
            let items: Vec<SigItem<'_>> = cases.iter().map(Case::item).collect();
            eprintln!("{name}: {} signatures", items.len());
            let (zip, strict) = gpu_verdicts(&ctx, &gpu, &items);
            for (rules, got) in [(RuleSet::Zip215, &zip), (RuleSet::Strict, &strict)] {
                let cpu = cpu_verdicts(rules, &items);
                assert_same(name, rules, &items, got, &cpu);
                assert_lanes_agree(name, rules, &items, got);
                // The per-rule API gives the same.
                assert_eq!(&gpu.verify(&ctx, rules, &items).unwrap(), got, "{name} {rules}: verify vs verify_both");
                let valid = got.iter().filter(|v| **v).count();
                eprintln!("  {rules}: {valid} valid, {} invalid, GPU == CPU", got.len() - valid);
            }
            if name == "speccheck" {
                assert_eq!(items.len(), speccheck.len());
                for (rules, got) in [(RuleSet::Zip215, &zip), (RuleSet::Strict, &strict)] {
                    let want: Vec<bool> =
                        expected[rules.name()].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
                    assert_eq!(got, &want, "speccheck {rules} expected verdicts");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Differential test

#[test]
fn gpu_equals_cpu_on_random_and_mutated_signatures() {
    let Some(ctx) = context() else { return };
    for gpu in builds(&ctx) {
        eprintln!("-- kernel {}", gpu.kernel());
        let n = env_or("VIGIL_GPU_DIFF_SIGS", DEFAULT_DIFF_SIGS);
        let seed = env_or("VIGIL_DIFF_SEED", DEFAULT_SEED);
        let started = Instant::now();
        let sigs = generate_all(n, seed);
        eprintln!("generated {n} signatures (seed {seed:#x}) in {:.2?}", started.elapsed());
        let items: Vec<SigItem<'_>> = sigs.iter().map(Sig::item).collect();
        // A small call first, so the big one regrows the device buffers and
        // runs in several chunks over both buffer slots; the prefix agrees.
        let prefix = items.len().min(1000);
        let (zip_prefix, strict_prefix) = gpu_verdicts(&ctx, &gpu, &items[..prefix]);
        let (zip, strict) = gpu_verdicts(&ctx, &gpu, &items);
        assert_eq!(zip_prefix, zip[..prefix], "zip215 verdicts depend on the call's size");
        assert_eq!(strict_prefix, strict[..prefix], "strict verdicts depend on the call's size");
        // The two calls, counted where their time went.
        let stats = gpu.stats();
        let chunk = n.div_ceil(4).clamp(4096, 1 << 18).min(n);
        assert_eq!((stats.calls, stats.signatures), (2, (prefix + n) as u64), "{stats}");
        assert_eq!(stats.chunks, 1 + n.div_ceil(chunk) as u64, "{stats}");
        assert!(stats.prepare + stats.upload + stats.waiting <= stats.total, "{stats}");
        for (rules, got) in [(RuleSet::Zip215, &zip), (RuleSet::Strict, &strict)] {
            let cpu = cpu_verdicts(rules, &items);
            // The generator's intended verdicts hold on the CPU (non-vacuous construction).
            for (s, c) in sigs.iter().zip(&cpu) {
                let want = if rules == RuleSet::Zip215 { s.want_zip215 } else { s.want_strict };
                assert_eq!(*c, want, "CPU {rules} verdict differs from construction: {}", s.dump());
            }
            let wrong: Vec<String> = sigs
                .iter()
                .zip(got.iter().zip(&cpu))
                .filter(|(_, (g, c))| g != c)
                .map(|(s, (g, c))| format!("  GPU {g}, CPU {c}: {}", s.dump()))
                .take(50)
                .collect();
            assert!(wrong.is_empty(), "{rules}: GPU != CPU on {} signatures:\n{}", wrong.len(), wrong.join("\n"));
            assert_lanes_agree("random and mutated signatures", rules, &items, got);
            let mut counts: BTreeMap<Family, (usize, usize)> = BTreeMap::new();
            for (s, g) in sigs.iter().zip(got.iter()) {
                let e = counts.entry(s.family).or_default();
                if *g {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
            eprintln!("{rules}: GPU == CPU on all {n}; per family (valid, invalid):");
            for (f, (v, i)) in &counts {
                eprintln!("  {f:?}: {v} valid, {i} invalid");
            }
            let valid = got.iter().filter(|v| **v).count();
            assert!(valid > 0 && valid < n, "{rules}: both verdicts occur");
            if rules == RuleSet::Zip215 && n >= 2000 {
                for (f, _) in Family::ALL {
                    let (can_valid, can_invalid) = f.possible_zip215();
                    let (v, i) = counts.get(&f).copied().unwrap_or_default();
                    assert!(!can_valid || v > 0, "{f:?}: no valid zip215 signature");
                    assert!(!can_invalid || i > 0, "{f:?}: no invalid zip215 signature");
                }
            }
        }
        eprintln!("differential test: {:.2?}", started.elapsed());
    }
}
