//! The frame stage against a reference framer written here, one block after
//! another with `BlockView::parse`: on a generated file and on thousands of
//! mutations of it (bit flips anywhere, transaction length and reserved
//! fields rewritten, truncations), framing in many small batches (so a
//! malformed body falls mid-batch, with well-formed blocks after it in the
//! same window) must give the same blocks, the same transactions and the
//! same first malformation at the same offset, in mmap-like (bytes) and read
//! modes and from a stream (a FIFO, read once with no length known),
//! whatever the number of threads walking the bodies.
//!
//! `VIGIL_FUZZ_ROUNDS` scales the number of mutations (default 1).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use vigil_datasets::{GenConfig, generate};
use vigil_engine::format::{HEADER_LEN, TX_FIXED_LEN};
use vigil_engine::frame::{Limits, Source, frame_all};
use vigil_engine::{BlockView, IoMode, Malformation};

/// (block offset, its transactions' bytes) per well-formed block, and the
/// first malformation with its block's offset; bytes accounted for.
type Framing = (Vec<(u64, Vec<Vec<u8>>)>, Option<(u64, Malformation)>, u64);

fn reference(data: &[u8]) -> Framing {
    let (mut blocks, mut pos) = (Vec::new(), 0usize);
    while pos < data.len() {
        match BlockView::parse(&data[pos..], pos as u64) {
            Ok((view, n)) => {
                blocks.push((pos as u64, view.txs().map(|t| t.bytes.to_vec()).collect()));
                pos += n;
            }
            Err(reason) => return (blocks, Some((pos as u64, reason)), data.len() as u64),
        }
    }
    (blocks, None, data.len() as u64)
}

fn framed(source: Source<'_>, io: IoMode, limits: Limits, pool: &rayon::ThreadPool) -> Framing {
    let (mut blocks, mut malformed, mut bytes) = (Vec::new(), None, 0);
    frame_all(&[source], io, limits, Some(pool), |batch| {
        let batch = batch.expect("no I/O error");
        let views = batch.views();
        let txs = batch.txs(&views);
        assert!(malformed.is_none(), "a batch after the malformed one");
        // A batch passes its limit by at most its last block (40 transactions).
        assert!(batch.blocks.len() <= 1 || txs.len() <= limits.txs + 40, "batch over its limit");
        for (b, f) in batch.blocks.iter().enumerate() {
            let own = &txs[batch.first_tx[b]..batch.first_tx[b + 1]];
            blocks.push((f.offset, own.iter().map(|t| t.bytes.to_vec()).collect()));
        }
        bytes += batch.bytes;
        malformed = batch.malformed.clone();
        true
    });
    (blocks, malformed, bytes)
}

fn mutate(rng: &mut ChaCha8Rng, good: &[u8], tx_fields: &[usize]) -> Vec<u8> {
    let mut data = good.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        match rng.random_range(0..4) {
            0 => {
                let at = rng.random_range(0..data.len());
                data[at] ^= 1 << rng.random_range(0..8);
            }
            // A transaction's payload_len (the walk's next step) or reserved
            // field: malformed bodies, or bodies that end elsewhere.
            1 | 2 => {
                let tx = tx_fields[rng.random_range(0..tx_fields.len())];
                if tx + TX_FIXED_LEN > data.len() {
                    continue;
                }
                let (field, len) = if rng.random_bool(0.8) { (tx + 52, 4) } else { (tx + 50, 2) };
                let value: u32 = match rng.random_range(0..3) {
                    0 => rng.random_range(0..64),
                    1 => rng.random::<u32>(),
                    _ => u32::from_le_bytes(data[tx + 52..tx + 56].try_into().unwrap()) ^ 1,
                };
                data[field..field + len].copy_from_slice(&value.to_le_bytes()[..len]);
            }
            _ => data.truncate(rng.random_range(0..data.len())),
        }
        if data.is_empty() {
            break;
        }
    }
    data
}

#[test]
fn framing_in_parallel_equals_the_sequential_reference_on_mutated_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        seed: 11,
        blocks: 60,
        txs_per_block: 0..=40,
        senders: 5,
        payload: 0..=40,
        segment_size: 1 << 30,
        faults: vec![],
    };
    let manifest = generate(dir.path(), &cfg, &|_| {}).unwrap();
    assert_eq!(manifest.files.len(), 1);
    let good = std::fs::read(&manifest.files[0]).unwrap();
    // Where each transaction starts in the file, from the reference.
    let (blocks, none, _) = reference(&good);
    assert!(none.is_none() && blocks.len() == 60);
    let mut tx_fields = Vec::new();
    for (offset, txs) in &blocks {
        let mut at = *offset as usize + HEADER_LEN;
        for tx in txs {
            tx_fields.push(at);
            at += tx.len();
        }
    }
    assert!(tx_fields.len() > 600, "a chain with many transactions a block");
    // payload_len is the fixed part's last 4 bytes (FORMAT.md).
    let first = &blocks.iter().find(|b| !b.1.is_empty()).unwrap().1[0];
    assert_eq!(u32::from_le_bytes(first[52..56].try_into().unwrap()) as usize + 120, first.len());

    let pools: Vec<rayon::ThreadPool> =
        [1, 3].iter().map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()).collect();
    let limits = [Limits { txs: 50, bytes: 1 << 20 }, Limits { txs: 1 << 20, bytes: 3000 }];
    let rounds = 400 * std::env::var("VIGIL_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let file = dir.path().join("mutated.vblk");
    let fifo = dir.path().join("stream.vblk");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let (mut body_malformed, mut mid_window) = (0, 0);
    for round in 0..=rounds {
        let data = if round == 0 { good.clone() } else { mutate(&mut rng, &good, &tx_fields) };
        let expected = reference(&data);
        std::fs::write(&file, &data).unwrap();
        for (i, pool) in pools.iter().enumerate() {
            let limits = limits[(round + i) % 2];
            let name = Path::new("mutated.vblk");
            assert_eq!(framed(Source::Bytes(name, &data), IoMode::Mmap, limits, pool), expected, "round {round}");
            assert_eq!(framed(Source::File(&file), IoMode::Read, limits, pool), expected, "round {round}, read");
        }
        assert_eq!(framed(Source::File(&file), IoMode::Mmap, limits[0], &pools[1]), expected, "round {round}, mmap");
        // A stream: the same blocks and malformation; after a malformed
        // block it is not read further, so it accounts for what was read.
        let writer = {
            let (data, fifo) = (data.clone(), fifo.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                // vigil may stop reading at a malformed block: a broken pipe is fine.
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo).and_then(|mut f| f.write_all(&data));
            })
        };
        let streamed = framed(Source::Stream(&fifo), IoMode::Read, limits[round % 2], &pools[0]);
        writer.join().unwrap();
        assert_eq!((&streamed.0, &streamed.1), (&expected.0, &expected.1), "round {round}, stream");
        let read = streamed.2;
        assert!(read <= data.len() as u64 && (streamed.1.is_some() || read == data.len() as u64), "round {round}");
        if let Some((offset, reason)) = &expected.1
            && reason.in_body()
        {
            body_malformed += 1;
            // A well-formed header follows the block with the bad body.
            let next = blocks.iter().position(|(o, _)| o == offset).map(|b| b + 1);
            mid_window += usize::from(next.is_some_and(|n| n < blocks.len()));
        }
    }
    // The mutations reached the case the parallel walk must get right.
    assert!(body_malformed > rounds / 4 && mid_window > rounds / 5, "{body_malformed} body, {mid_window} mid-window");
}
