//! `vigil-peer-simd POLICY CACHE FILE`: ed25519-simd 0.1 on the signatures
//! of FILE (the JSON lines `vigil sigs` reads), one thread, reading and
//! parsing included as `vigil sigs` includes them. POLICY: `zip215`
//! (`Zip215Verifier`) or `dalek` (`DalekVerifier`, ed25519-dalek's strict
//! rules); CACHE: `none` or `hot` (`HotKeyCache` of 64 keys). Prints
//! `ed25519-simd POLICY CACHE: N signatures, V valid, R signatures/s`.

use ed25519_simd::{DalekVerifier, HotKeyCache, VerifyInput, Zip215Verifier};
use std::time::Instant;

#[derive(serde::Deserialize)]
struct Line {
    pubkey: String,
    msg: String,
    sig: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [policy, cache, path] = args.as_slice() else {
        eprintln!("usage: vigil-peer-simd zip215|dalek none|hot FILE");
        std::process::exit(2);
    };
    let started = Instant::now();
    let text = std::fs::read_to_string(path).expect("read the signatures");
    let parsed: Vec<([u8; 32], Vec<u8>, [u8; 64])> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l: Line = serde_json::from_str(l).expect("a JSON line");
            let pk = hex::decode(&l.pubkey).expect("hex").try_into().expect("32 bytes");
            let sig = hex::decode(&l.sig).expect("hex").try_into().expect("64 bytes");
            (pk, hex::decode(&l.msg).expect("hex"), sig)
        })
        .collect();
    let inputs: Vec<VerifyInput<'_>> =
        parsed.iter().map(|(pk, m, s)| VerifyInput { public_key: *pk, signature: *s, message: m }).collect();
    let mut out = vec![false; inputs.len()];
    match (policy.as_str(), cache.as_str()) {
        ("zip215", "none") => Zip215Verifier::new().verify_batch(&inputs, &mut out),
        ("zip215", "hot") => Zip215Verifier::with_cache(HotKeyCache::with_capacity(64)).verify_batch(&inputs, &mut out),
        ("dalek", "none") => DalekVerifier::new().verify_batch(&inputs, &mut out),
        ("dalek", "hot") => DalekVerifier::with_cache(HotKeyCache::with_capacity(64)).verify_batch(&inputs, &mut out),
        _ => {
            eprintln!("usage: vigil-peer-simd zip215|dalek none|hot FILE");
            std::process::exit(2);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let valid = out.iter().filter(|&&v| v).count();
    println!(
        "ed25519-simd {policy} {cache}: {} signatures, {valid} valid, {:.0} signatures/s",
        inputs.len(),
        inputs.len() as f64 / secs
    );
}
