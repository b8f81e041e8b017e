//! The bounded fuzz run CI does (docs/FUZZING.md): every target over its
//! seed corpus (`fuzz/corpus/<target>`, plus `fuzz/regressions/<target>`:
//! inputs that once failed) and over seeded structure-aware mutations of
//! it, checking that no input panics and that none makes the target hold
//! more memory than its length justifies (a counting allocator).
//!
//! `VIGIL_FUZZ_ROUNDS` scales the number of mutations (default 1: 10,000
//! inputs a target, 1,000 for `stitch`); `VIGIL_FUZZ_SEED` changes the seed. A failing input is
//! written to the temporary directory, for libFuzzer (`run.sh TARGET FILE`)
//! or a regression file.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use vigil_engine::format::blocks;
use vigil_protocol as proto;

/// Counts live heap bytes and their high-water mark.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new) };
        if !q.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap a target may hold at once on an input of `len` bytes: a constant
/// (the protocol target's frame buffer, formatted errors) and a multiple of
/// the input (its copies, decoded values and their re-encodings).
fn allowed(len: usize) -> usize {
    (1 << 20) + 32 * len
}

/// Runs `target` on `input` and checks its memory; on a panic or too much
/// memory, keeps the input and fails naming it.
fn check(name: &str, target: vigil_fuzz::Target, input: &[u8], what: &str) -> bool {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let outcome = std::panic::catch_unwind(|| target(input));
    let held = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let problem = match outcome {
        Err(_) => Some("panicked".to_string()),
        Ok(_) if held > allowed(input.len()) => Some(format!("held {held} bytes")),
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        let keep = std::env::temp_dir().join(format!("vigil-fuzz-{name}-{}.bin", blake3::hash(input).to_hex()));
        std::fs::write(&keep, input).unwrap();
        panic!("{name} {problem} on {what} ({} bytes), kept in {}", input.len(), keep.display());
    }
    outcome.unwrap_or(false)
}

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Protocol messages, one frame each (and one stream of several), made by
/// the protocol crate's encoders: `corpus/protocol`, written by
/// `write_protocol_seeds`.
fn protocol_seeds() -> Vec<Vec<u8>> {
    use proto::{BlockVerdict, ErrorCode, Failure, Outcome, Request, Response, Rules, Signature};
    let block = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/frame/sample-1block.vblk")).unwrap();
    let requests = [
        Request::SubmitBlock(block[..block.len().min(1024)].to_vec()),
        Request::VerifySignatures {
            rules: Rules::Zip215,
            signatures: vec![
                Signature { public_key: [7; 32], signature: [9; 64], message: b"hello".to_vec() },
                Signature { public_key: [1; 32], signature: [2; 64], message: Vec::new() },
            ],
        },
        Request::VerifySignatures { rules: Rules::Strict, signatures: Vec::new() },
        Request::Hash { key: None, messages: vec![b"a".to_vec(), Vec::new(), vec![5; 70]] },
        Request::Hash { key: Some([3; 32]), messages: vec![b"keyed".to_vec()] },
        Request::Status,
        Request::Auth(b"0123456789abcdef-token".to_vec()),
    ];
    let responses = [
        Response::BlockVerdict(BlockVerdict {
            outcome: Outcome::Invalid,
            position: 5,
            height: 6,
            hash: [4; 32],
            tx_count: 3,
            failures: vec![
                Failure { rule: 7, tx: Some(2), detail: "bad signature ✓".into() },
                Failure { rule: 2, tx: None, detail: String::new() },
            ],
            message: String::new(),
        }),
        Response::BlockVerdict(BlockVerdict {
            outcome: Outcome::Malformed,
            position: 0,
            height: 0,
            hash: [0; 32],
            tx_count: 0,
            failures: Vec::new(),
            message: "bad magic".into(),
        }),
        Response::SignatureVerdicts(vec![true, false, true]),
        Response::Digests(vec![[5; 32], [6; 32]]),
        Response::Status("{\"requests\":1,\"chains\":0}".into()),
        Response::error(ErrorCode::BadBody, "nope"),
        Response::Authenticated,
        Response::error(ErrorCode::Unauthorized, "this server needs an auth frame first"),
        Response::error(ErrorCode::ResponseTooLarge, "the response would exceed max-frame"),
    ];
    let mut seeds: Vec<Vec<u8>> = requests.iter().map(|r| r.encode(1)).collect();
    seeds.extend(responses.iter().map(|r| r.encode(2)));
    // A stream of several frames, as a connection carries them.
    seeds.push(seeds[1..6].concat());
    seeds
}

/// Writes the encoder-made protocol seeds into `corpus/protocol` (run when
/// the protocol changes: `cargo test -p vigil-fuzz -- --ignored`).
#[test]
#[ignore]
fn write_protocol_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/protocol");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in protocol_seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("encoded-{i:02}.bin")), seed).unwrap();
    }
}

const INTERESTING: [u64; 14] =
    [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x1_0000, 0x1_0001, 0x10_0000, 0x10_0001, 0xffff_ffff, 1 << 32, u64::MAX];

/// Writes `value` little-endian over `width` bytes at `at`, if they fit.
fn put(data: &mut [u8], at: usize, width: usize, value: u64) {
    if let Some(dst) = data.get_mut(at..at + width) {
        dst.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// A value for a length or count field: interesting, near the input's own
/// length, near the old value, or random.
fn field_value(rng: &mut ChaCha8Rng, old: u64, len: usize) -> u64 {
    match rng.random_range(0..4) {
        0 => INTERESTING[rng.random_range(0..INTERESTING.len())],
        1 => (len as u64).wrapping_add(rng.random_range(0..9)).wrapping_sub(4),
        2 => old.wrapping_add(rng.random_range(0..9)).wrapping_sub(4),
        _ => rng.random(),
    }
}

/// Byte-level mutations any format gets; `other` is another seed to splice.
fn mutate_bytes(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    let at = if len == 0 { 0 } else { rng.random_range(0..len) };
    match rng.random_range(0..9) {
        0 if len > 0 => data[at] ^= 1 << rng.random_range(0..8),
        1 if len > 0 => data[at] = INTERESTING[rng.random_range(0..6)] as u8,
        2 => {
            let width = [2, 4, 8][rng.random_range(0..3)];
            let old = data.get(at..at + width).map_or(0, |b| b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x)));
            put(data, at, width, field_value(rng, old, len));
        }
        3 => {
            let n = rng.random_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            data.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let end = rng.random_range(at..=len.min(at + 64));
            data.drain(at..end);
        }
        5 => data.truncate(at),
        6 if len > 0 => {
            // Repeat a chunk (more items than a count says, a field twice).
            let end = rng.random_range(at..=len.min(at + 256));
            let chunk = data[at..end].to_vec();
            let to = rng.random_range(0..=len);
            data.splice(to..to, chunk);
        }
        7 if !other.is_empty() => {
            let cut = rng.random_range(0..=other.len());
            data.truncate(at);
            data.extend_from_slice(&other[cut..]);
        }
        _ if len > 0 => data[at] = rng.random(),
        _ => data.push(rng.random()),
    }
}

/// Rewrites the fields the frame parser's walk depends on: a block's
/// magic, version, flags, tx_count and body_len, a transaction's reserved
/// and payload_len (FORMAT.md offsets).
fn mutate_blocks(rng: &mut ChaCha8Rng, data: &mut [u8]) {
    let mut fields = Vec::new();
    for (offset, block) in blocks(data) {
        let offset = offset as usize;
        fields.extend([(offset, 4), (offset + 4, 2), (offset + 6, 2), (offset + 120, 4), (offset + 124, 4)]);
        if let Ok(view) = block {
            let mut at = offset + 224;
            for tx in view.txs() {
                fields.extend([(at + 50, 2), (at + 52, 4)]);
                at += tx.bytes.len();
            }
        }
    }
    if fields.is_empty() {
        return;
    }
    let (at, width) = fields[rng.random_range(0..fields.len())];
    let old = data.get(at..at + width).map_or(0, |b| b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x)));
    put(data, at, width, field_value(rng, old, data.len()));
}

/// Rewrites a protocol frame's length field or a u32 count in its body.
fn mutate_frames(rng: &mut ChaCha8Rng, data: &mut [u8]) {
    let len = data.len();
    if rng.random_bool(0.5) {
        put(data, 0, 4, field_value(rng, len.saturating_sub(4) as u64, len));
    } else if len > 16 {
        // Counts sit right after a one-byte mode (requests) or at the body's
        // start or after fixed fields (responses): any u32 slot will do.
        let at = rng.random_range(16..len);
        let old = data.get(at..at + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()) as u64);
        put(data, at, 4, field_value(rng, old, len));
    }
}

const JSON_TOKENS: [&str; 18] = [
    "-1",
    "0",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e308",
    "-0.0",
    "null",
    "true",
    "\"\"",
    "\"zz\"",
    "\"\\ud800\"",
    "[]",
    "{}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"a\":1}",
    "\"00\"",
];

const SAME_TYPE_NUMBERS: [&str; 7] = ["0", "1", "7", "4294967295", "9007199254740993", "18446744073709551615", "2.5"];
const SAME_TYPE_STRINGS: [&str; 8] = [
    "\"\"",
    "\"00\"",
    "\"é\\n\\u00e9\"",
    "\"zip215\"",
    "\"malformed\"",
    "\"6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd6dbd\"",
    "\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"",
    "\"\\ud83d\\ude00\"",
];

/// Rewrites a JSON text by tokens: a value replaced with an edge-case one,
/// a member dropped or repeated.
fn mutate_json(rng: &mut ChaCha8Rng, data: &mut Vec<u8>) {
    // Value starts: after ':' or '[' or ','.
    let starts: Vec<usize> =
        data.iter().enumerate().filter(|(_, b)| matches!(b, b':' | b'[' | b',')).map(|(i, _)| i + 1).collect();
    if starts.is_empty() {
        return;
    }
    let at = starts[rng.random_range(0..starts.len())];
    // The value runs to the next ',', '}' or ']' (a string with those
    // inside is cut short: also a useful mutation).
    let end = data[at..].iter().position(|b| matches!(b, b',' | b'}' | b']')).map_or(data.len(), |n| at + n);
    let old = data[at..end].trim_ascii_start();
    match rng.random_range(0..5) {
        // Same type, edge value: gets past the typed decode to what follows.
        0 | 1 if old.first().is_some_and(|b| b.is_ascii_digit() || *b == b'-') => {
            let token = SAME_TYPE_NUMBERS[rng.random_range(0..SAME_TYPE_NUMBERS.len())];
            data.splice(at..end, token.bytes());
        }
        0 | 1 if old.first() == Some(&b'"') => {
            let token = SAME_TYPE_STRINGS[rng.random_range(0..SAME_TYPE_STRINGS.len())];
            data.splice(at..end, token.bytes());
        }
        0 | 2 => {
            let token = JSON_TOKENS[rng.random_range(0..JSON_TOKENS.len())];
            data.splice(at..end, token.bytes());
        }
        3 => {
            // Drop "…": value (the member before `at`'s comma).
            let from = data[..at.saturating_sub(1)].iter().rposition(|&b| b == b',' || b == b'{').map_or(0, |n| n + 1);
            data.drain(from..end.min(data.len()));
        }
        _ => {
            let member = data[at..end].to_vec();
            data.splice(end..end, std::iter::once(b',').chain(member));
        }
    }
}

/// The JSON header of a `vigil index` file (between its 16-byte prefix and
/// the records) rewritten by tokens, its length field kept right; the
/// target reseals the checksum.
fn mutate_index(rng: &mut ChaCha8Rng, data: &mut Vec<u8>) {
    if data.len() < 16 + 32 {
        return;
    }
    let json_len = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
    let Some(json) = data.get(16..16 + json_len) else { return };
    if rng.random_bool(0.5) {
        let mut json = json.to_vec();
        mutate_json(rng, &mut json);
        data.splice(16..16 + json_len, json.iter().copied());
        put(data, 12, 4, json.len() as u64);
    } else {
        // A record field: block (24 bytes: file, offset, len, txs) or other.
        let records = data.len().saturating_sub(16 + json_len + 32);
        if records >= 8 {
            let at = 16 + json_len + rng.random_range(0..records / 4) * 4;
            let width = if rng.random_bool(0.5) { 4 } else { 8 };
            let old = data.get(at..at + width).map_or(0, |b| b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x)));
            let value = field_value(rng, old, data.len());
            put(data, at, width, value);
        }
    }
}

fn mutate(name: &str, rng: &mut ChaCha8Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    // A JSON text breaks at almost any byte: fewer, mostly token-wise edits.
    let json = matches!(name, "summary" | "stitch" | "sig_line");
    for _ in 0..rng.random_range(1..=if json { 2 } else { 4 }) {
        if rng.random_bool(if json { 0.2 } else { 0.4 }) {
            mutate_bytes(rng, &mut data, other);
            continue;
        }
        match name {
            "frame" => mutate_blocks(rng, &mut data),
            "protocol" => mutate_frames(rng, &mut data),
            "summary" | "stitch" | "sig_line" => mutate_json(rng, &mut data),
            "index" => mutate_index(rng, &mut data),
            _ => unreachable!("a target without a mutator"),
        }
    }
    data
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rounds: usize = std::env::var("VIGIL_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let seed: u64 = std::env::var("VIGIL_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    // Pools and other one-time state are made before anything is counted.
    for (_, target) in vigil_fuzz::TARGETS {
        target(&[]);
    }
    for (name, target) in vigil_fuzz::TARGETS {
        let started = std::time::Instant::now();
        let seeds = files_in(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seeds for {name}");
        let regressions = files_in(&root.join("regressions").join(name));
        for (i, input) in seeds.iter().chain(&regressions).enumerate() {
            check(name, target, input, &format!("corpus file {i}"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // The stitch target writes and reads files for each input: fewer.
        let n = if name == "stitch" { 1_000 } else { 10_000 } * rounds;
        let mut accepted = 0;
        for round in 0..n {
            let base = &seeds[rng.random_range(0..seeds.len())];
            let other = &seeds[rng.random_range(0..seeds.len())];
            let input = mutate(name, &mut rng, base, other);
            accepted += usize::from(check(name, target, &input, &format!("mutation {round}")));
        }
        let random: Vec<u8> = (0..rng.next_u32() % 512).map(|_| rng.random()).collect();
        check(name, target, &random, "random bytes");
        eprintln!(
            "{name}: {} corpus inputs, {n} mutations ({accepted} past the first checks), 0 failures, {:.1} s",
            seeds.len() + regressions.len(),
            started.elapsed().as_secs_f64()
        );
        // The mutations go both past the parser's checks and into them.
        assert!(accepted > n / 50 && accepted < n * 49 / 50, "{name}: {accepted} of {n} mutations accepted");
    }
}
