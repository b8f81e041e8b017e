//! Fuzz targets: each takes any bytes and checks that the parser of one
//! untrusted input neither panics nor disagrees with itself (a second
//! implementation, or a round trip through its encoder). Memory is bounded
//! by the harness: libFuzzer's `-malloc_limit_mb`/`-rss_limit_mb`, and the
//! replay test's counting allocator (`tests/corpus.rs`).
//!
//! Two drivers run the same functions (docs/FUZZING.md):
//! - `fuzz/libfuzzer`: coverage-guided libFuzzer on the stable toolchain
//!   (its own workspace: its instrumentation flags stay out of this one's
//!   builds);
//! - `tests/corpus.rs`: the seed corpus (`fuzz/corpus/<target>`) and
//!   seeded structure-aware mutations of it, as an ordinary `cargo test`
//!   (what CI runs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vigil_engine::IoMode;
use vigil_engine::format::{BlockView, HEADER_LEN, Malformation, blocks};
use vigil_engine::frame::{Limits, Source, frame_all};
use vigil_engine::shard::{Walk, parse_summary, stitch as stitch_files};
use vigil_engine::sig::parse_sig_line;
use vigil_protocol::{Request, Response, read_frame};

/// A fuzz target: any bytes in, whether they got past the first checks out.
pub type Target = fn(&[u8]) -> bool;

/// Every target, by the name its corpus directory and libFuzzer binary use.
/// Each returns whether the input got past the first checks (decoded whole;
/// for `frame`, a block body was walked), so tests can tell that mutations
/// reach the deeper code.
pub const TARGETS: [(&str, Target); 6] = [
    ("frame", frame),
    ("protocol", protocol),
    ("summary", summary),
    ("stitch", stitch),
    ("index", index),
    ("sig_line", sig_line),
];

/// Per well-formed block: its offset and each transaction's (start, length)
/// in the input; then the first malformation with its block's offset.
type Framing = (Vec<(u64, Vec<(usize, usize)>)>, Option<(u64, Malformation)>);

/// Where `part` lies in `whole` (both views of the fuzz input).
fn place(whole: &[u8], part: &[u8]) -> (usize, usize) {
    (part.as_ptr() as usize - whole.as_ptr() as usize, part.len())
}

/// Frames a segment file's bytes one block after another with
/// `format::blocks` (and `BlockView::parse`, `check_header`), then with the
/// parallel frame stage in small batches: in memory, and from a file in
/// read mode (whole, and from a block on), and checks that all find the
/// same blocks, transactions and first malformation (the differential test
/// of engine/tests/frame.rs, on any bytes). The file is the temporary
/// directory's `vigil-fuzz-frame-PID.vblk`, rewritten for each input.
pub fn frame(data: &[u8]) -> bool {
    let mut reference: Framing = (Vec::new(), None);
    let mut end = 0usize;
    for (offset, block) in blocks(data) {
        match block {
            Ok(view) => {
                let txs: Vec<(usize, usize)> = view.txs().map(|t| place(data, t.bytes)).collect();
                // A well-formed body is exactly its transactions.
                assert_eq!(txs.len(), view.header.tx_count() as usize);
                assert_eq!(txs.iter().map(|t| t.1).sum::<usize>(), view.body.len());
                for t in view.txs() {
                    assert_eq!(t.payload().len(), t.header().payload_len() as usize);
                    assert_eq!(t.signed_part().len() + t.signature().len(), t.bytes.len());
                }
                // The parse of a block alone agrees with the walk.
                let (again, len) = BlockView::parse(&data[offset as usize..], offset).expect("parsed once");
                assert_eq!((again.body.len(), len), (view.body.len(), view.len()));
                end = offset as usize + len;
                reference.0.push((offset, txs));
            }
            Err(reason) => reference.1 = Some((offset, reason)),
        }
    }
    assert!(reference.1.is_some() || end == data.len(), "blocks stopped early without a malformation");

    // Small batches, varied by input, so a malformed body falls mid-batch.
    let limits = Limits { txs: 1 + data.len() % 37, bytes: 256 + data.len() * 31 % 4096 };
    let whole = stage(Source::Bytes(Path::new("fuzz.vblk"), data), IoMode::Mmap, limits);
    assert_eq!(
        whole,
        (reference.clone(), data.len() as u64),
        "frame stage (in memory) and sequential framing disagree"
    );

    // Read mode (its own framer: headers read one by one into a buffer),
    // on the whole file and on a part of it that starts at a block.
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    let file = FILE.get_or_init(|| std::env::temp_dir().join(format!("vigil-fuzz-frame-{}.vblk", std::process::id())));
    std::fs::write(file, data).expect("a temporary file");
    let read = stage(Source::File(file), IoMode::Read, limits);
    assert_eq!(read, (reference.clone(), data.len() as u64), "frame stage (read mode) and sequential framing disagree");
    let from = reference.0.get(data.len() % (reference.0.len() + 1)).map_or(0, |b| b.0);
    let part = stage(Source::Part(file, from, data.len() as u64), IoMode::Read, limits);
    let expected: Framing = (reference.0.iter().filter(|b| b.0 >= from).cloned().collect(), reference.1.clone());
    assert_eq!(part, (expected, data.len() as u64 - from), "a part from offset {from} frames differently");

    // Whether any body was walked: a block came out well formed, or the
    // first malformation is in a body (its header checked out).
    !reference.0.is_empty() || reference.1.as_ref().is_some_and(|(_, m)| m.in_body())
}

/// Frames one source with the frame stage (bodies walked on two threads);
/// what it found, with transactions placed by file offset, and the bytes
/// its batches account for.
fn stage(source: Source<'_>, io: IoMode, limits: Limits) -> (Framing, u64) {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    let pool = POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool"));
    let mut framed: Framing = (Vec::new(), None);
    let mut accounted = 0u64;
    frame_all(&[source], io, limits, Some(pool), |batch| {
        let batch = batch.expect("a file the target wrote reads back");
        assert!(framed.1.is_none(), "a batch after the malformed one");
        let views = batch.views();
        let txs = batch.txs(&views);
        for (b, f) in batch.blocks.iter().enumerate() {
            // Body bytes start HEADER_LEN after the block in the file.
            let body = f.offset as usize + HEADER_LEN;
            let own = &txs[batch.first_tx[b]..batch.first_tx[b + 1]];
            framed.0.push((
                f.offset,
                own.iter().map(|t| (body + place(views[b].body, t.bytes).0, t.bytes.len())).collect(),
            ));
        }
        accounted += batch.bytes;
        framed.1 = batch.malformed.clone();
        true
    });
    (framed, accounted)
}

/// The largest frame the protocol target reads: a server's default, so a
/// length field may claim 64 MiB (the buffer must grow with the bytes that
/// come, not with the claim).
const MAX_FRAME: usize = vigil_protocol::DEFAULT_MAX_FRAME;

/// Reads the input as a stream of protocol frames and decodes each body as
/// a request and as a response; then decodes the whole input (first byte:
/// the kind) once more. Whatever decodes must encode back to the same
/// bytes, and its frame must read back to the same message.
pub fn protocol(data: &[u8]) -> bool {
    let mut stream = data;
    let mut decoded = false;
    while let Ok(Some(frame)) = read_frame(&mut stream, MAX_FRAME) {
        decoded |= protocol_body(frame.header.kind, &frame.body);
    }
    if let Some((&kind, body)) = data.split_first() {
        protocol_body(kind, body);
    }
    decoded
}

/// Decodes a body both ways; whether either decoded.
fn protocol_body(kind: u8, body: &[u8]) -> bool {
    let request = Request::decode(kind, body);
    if let Ok(request) = &request {
        assert_eq!(request.kind(), kind);
        assert_eq!(request.encode_body(), body, "request does not round-trip");
        let wire = request.encode(7);
        let frame = read_frame(&mut &wire[..], usize::MAX).expect("own frame").expect("a frame");
        assert_eq!(Request::decode(frame.header.kind, &frame.body).as_ref(), Ok(request));
    }
    let response = Response::decode(kind, body);
    if let Ok(response) = &response {
        assert_eq!(response.kind(), kind);
        assert_eq!(response.encode_body(), body, "response does not round-trip");
        let wire = response.encode(7);
        let frame = read_frame(&mut &wire[..], usize::MAX).expect("own frame").expect("a frame");
        assert_eq!(Response::decode(frame.header.kind, &frame.body).as_ref(), Ok(response));
    }
    request.is_ok() || response.is_ok()
}

/// A shard summary (`verify --summary`, read by `vigil stitch`): whatever
/// parses must survive a write and a read unchanged.
/// A summary's bytes with its checksum recomputed (if they decode as one at
/// all), so that mutations get past the checksum to the checks behind it.
fn resealed(data: &[u8]) -> Option<Vec<u8>> {
    let mut s: vigil_engine::shard::ShardSummary = serde_json::from_slice(data).ok()?;
    s.checksum = vigil_engine::shard::checksum(&s);
    serde_json::to_vec(&s).ok()
}

pub fn summary(data: &[u8]) -> bool {
    let path = Path::new("fuzz-summary.json");
    let _ = parse_summary(path, data);
    let Some(data) = resealed(data) else { return false };
    if let Ok(mut s) = parse_summary(path, &data) {
        let json = serde_json::to_vec(&s).expect("a summary serializes");
        let mut again = parse_summary(path, &json).expect("a written summary reads back");
        // serde_json parses floats to within an ulp only (no float_roundtrip).
        (s.seconds, again.seconds) = (0.0, 0.0);
        assert_eq!(again, s, "summary does not round-trip");
        return true;
    }
    false
}

/// Summaries joined by `vigil stitch`: the input is one or more summaries
/// separated by NUL bytes, written to temporary files
/// (`vigil-fuzz-stitch-PID-N.json`) and stitched.
pub fn stitch(data: &[u8]) -> bool {
    let dir = std::env::temp_dir();
    let paths: Vec<PathBuf> = data
        .split(|&b| b == 0)
        .take(8)
        .enumerate()
        .map(|(i, part)| {
            let path = dir.join(format!("vigil-fuzz-stitch-{}-{i}.json", std::process::id()));
            std::fs::write(&path, resealed(part).as_deref().unwrap_or(part)).expect("a temporary file");
            path
        })
        .collect();
    let stitched = stitch_files(&paths);
    if let Ok(s) = &stitched {
        // Each invalid block is one event (malformed ones are the others).
        assert!(s.summary.invalid_blocks as usize <= s.events.len());
    }
    stitched.is_ok()
}

/// The segment files a fuzzed index is read for: as many as the seeds'
/// chain (datasets/sample) has. Only their number matters; nothing is read.
fn index_files() -> &'static [PathBuf] {
    static FILES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    FILES.get_or_init(|| (0..4).map(|i| PathBuf::from(format!("{i:06}.vblk"))).collect())
}

/// A sidecar index (`vigil index`, read by `verify --index`): as it is, and
/// with its trailing BLAKE3 recomputed over the rest, so that mutations get
/// past the checksum to the header and records.
pub fn index(data: &[u8]) -> bool {
    let path = Path::new("fuzz.idx");
    let files = index_files();
    let _ = Walk::parse_index(path, data, files);
    if data.len() >= 32 {
        let body = &data[..data.len() - 32];
        let mut sealed = body.to_vec();
        sealed.extend_from_slice(blake3::hash(body).as_bytes());
        if let Ok((walk, stamps)) = Walk::parse_index(path, &sealed, files) {
            assert_eq!(stamps.len(), files.len());
            let bounds = walk.shard_bounds(3);
            assert!(bounds.windows(2).all(|w| w[0] <= w[1]) && bounds[3] == walk.blocks());
            let _ = walk.transactions();
            return true;
        }
    }
    false
}

/// A `vigil sigs` input line: whatever parses must write back to a line
/// that parses to the same signature.
pub fn sig_line(data: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(data) else { return false };
    if let Ok(sig) = parse_sig_line(line) {
        let again = serde_json::json!({
            "pubkey": hex::encode(sig.public_key),
            "msg": hex::encode(&sig.message),
            "sig": hex::encode(sig.signature),
        });
        assert_eq!(parse_sig_line(&again.to_string()), Ok(sig), "sig line does not round-trip");
        return true;
    }
    false
}
