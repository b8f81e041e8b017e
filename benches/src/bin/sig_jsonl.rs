//! Signatures in the JSON lines `vigil sigs` reads, and the peers' rates on
//! them, for `benches/peers/run.sh`:
//!
//! ```text
//! sig_jsonl gen OUT N KEYS INVALID_EVERY   # INVALID_EVERY 0: all valid
//! sig_jsonl rate WHO FILE                  # one thread, parsing included
//! ```
//!
//! WHO: `dalek-strict` (ed25519-dalek `verify_strict`), `zebra-batch64`
//! (ed25519-zebra batches of 64, singles when one fails), `vigil-verify-only`
//! (vigil's zip215 path, `verify_many_tuned`, after parsing: the verifier's
//! own rate, which `vigil sigs --threads 1` is compared against). Prints
//! `WHO: N signatures, V valid, R signatures/s`.

use ed25519_dalek::{Signer, SigningKey};
use std::io::Write;
use std::time::Instant;
use vigil_engine::sig::{BatchSizer, RuleSet, SigItem, SigLine, parse_sig_line, verify, verify_many_tuned};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).unwrap_or_else(|| usage());
    match arg(0).as_str() {
        "gen" => {
            let num = |i: usize| arg(i).parse::<usize>().unwrap_or_else(|_| usage());
            generate(arg(1), num(2), num(3).max(1), num(4));
        }
        "rate" => rate(arg(1), arg(2)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: sig_jsonl gen OUT N KEYS INVALID_EVERY | sig_jsonl rate dalek-strict|zebra-batch64|vigil-verify-only FILE"
    );
    std::process::exit(2)
}

fn generate(path: &str, n: usize, keys: usize, invalid_every: usize) {
    let keys: Vec<SigningKey> =
        (0..keys).map(|i| SigningKey::from_bytes(&blake3::hash(&(i as u64).to_le_bytes()).into())).collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the output"));
    for i in 0..n {
        let key = &keys[i % keys.len()];
        let mut msg: [u8; 32] = blake3::hash(&(i as u64 ^ 0x5157).to_le_bytes()).into();
        let sig = key.sign(&msg).to_bytes();
        if invalid_every > 0 && i % invalid_every == invalid_every / 2 {
            msg[0] ^= 1;
        }
        let pk = hex::encode(key.verifying_key().to_bytes());
        writeln!(out, r#"{{"pubkey":"{pk}","msg":"{}","sig":"{}"}}"#, hex::encode(msg), hex::encode(sig))
            .expect("write");
    }
    out.flush().expect("write");
}

fn rate(who: &str, path: &str) {
    let started = Instant::now();
    let text = std::fs::read_to_string(path).expect("read the signatures");
    let lines: Vec<SigLine> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| parse_sig_line(l).expect("a signature line")).collect();
    let items: Vec<SigItem<'_>> = lines
        .iter()
        .map(|p| SigItem { public_key: &p.public_key, message: &p.message, signature: &p.signature })
        .collect();
    let valid = match who {
        "dalek-strict" => {
            items.iter().filter(|it| verify(RuleSet::Strict, it.public_key, it.message, it.signature)).count()
        }
        "zebra-batch64" => vigil_benches::zebra_batch_64(&items),
        "vigil-verify-only" => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread");
            let mut out = vec![false; items.len()];
            let mut sizer = BatchSizer::new();
            // The sizer learns as `vigil sigs` does: in chunks of 16K.
            let started = Instant::now();
            pool.install(|| {
                for (c, o) in items.chunks(16 * 1024).zip(out.chunks_mut(16 * 1024)) {
                    verify_many_tuned(RuleSet::Zip215, c, o, &mut sizer);
                }
            });
            let secs = started.elapsed().as_secs_f64();
            let valid = out.iter().filter(|&&v| v).count();
            println!("{who}: {} signatures, {valid} valid, {:.0} signatures/s", items.len(), items.len() as f64 / secs);
            return;
        }
        _ => usage(),
    };
    let secs = started.elapsed().as_secs_f64();
    println!("{who}: {} signatures, {valid} valid, {:.0} signatures/s", items.len(), items.len() as f64 / secs);
}
