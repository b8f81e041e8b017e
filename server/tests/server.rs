//! `vigil serve`'s server over loopback sockets, with the Rust client:
//! a load test (32 concurrent clients pipelining mixed valid and invalid
//! signature batches, blocks of their own chains with faults, hashes and
//! status; every verdict checked against the CPU reference, every request
//! answered exactly once), bad frames, vanishing clients, back-pressure and
//! shutdown with requests in flight.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use vigil_client::{Client, ErrorCode, Outcome, Request, Response, Rules, Signature};
use vigil_datasets::{Fault, GenConfig, generate};
use vigil_engine::format::blocks;
use vigil_engine::sig::{self, RuleSet};
use vigil_engine::{BlockReport, CollectSink, Validator, ValidatorConfig, Verifier, VerifyOptions};
use vigil_server::{self as server, Address, Listener, ServerConfig, ServerCounters};

/// The engine tests' signature cases (valid, every mutation family).
use vigil_engine::test_utils::sig_cases::{Sig, generate_all};

struct Running {
    address: String,
    shutdown: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<ServerCounters>>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(config: ValidatorConfig, server: ServerConfig, tcp: bool) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let address: Address = if tcp {
            "tcp:127.0.0.1:0".parse().unwrap()
        } else {
            format!("unix:{}", dir.path().join("vigil.sock").display()).parse().unwrap()
        };
        let listener = Listener::bind(&address, false).unwrap();
        let address = listener.local_address().to_string();
        let shutdown = Arc::new(AtomicBool::new(false));
        let validator = Arc::new(Validator::new(config));
        let flag = Arc::clone(&shutdown);
        let thread = std::thread::spawn(move || server::serve(listener, validator, server, flag).unwrap());
        Running { address, shutdown, thread: Some(thread), _dir: dir }
    }

    fn client(&self) -> Client {
        Client::connect(&self.address).unwrap()
    }

    fn stop(mut self) -> ServerCounters {
        self.shutdown.store(true, Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn signatures(sigs: &[Sig]) -> Vec<Signature> {
    sigs.iter()
        .map(|s| Signature { public_key: s.public_key, signature: s.signature, message: s.message.clone() })
        .collect()
}

/// A chain of its own for each client: (its blocks' bytes, the verifier's
/// report on each).
fn client_chain(dir: &Path, seed: u64) -> (Vec<Vec<u8>>, Vec<BlockReport>) {
    let faults: Vec<Fault> = match seed % 4 {
        0 => vec!["tx_signature@3".parse().unwrap(), "nonce@5".parse().unwrap()],
        1 => vec!["prev_hash@2".parse().unwrap(), "block_signature@6".parse().unwrap()],
        2 => vec!["tx_root@4".parse().unwrap()],
        _ => Vec::new(),
    };
    let cfg =
        GenConfig { seed, blocks: 8, txs_per_block: 0..=12, senders: 6, payload: 8..=64, faults, ..Default::default() };
    let manifest = generate(dir, &cfg, &|_| {}).unwrap();
    let mut want = CollectSink::default();
    Verifier::new(VerifyOptions::default()).verify_files(&manifest.files, &mut want).unwrap();
    let mut out = Vec::new();
    for f in &manifest.files {
        let data = std::fs::read(f).unwrap();
        for (offset, b) in blocks(&data) {
            out.push(data[offset as usize..offset as usize + b.unwrap().len()].to_vec());
        }
    }
    assert_eq!(out.len(), want.blocks.len());
    (out, want.blocks)
}

/// What each request must get back.
enum Expect {
    Block(BlockReport),
    Sigs(Vec<bool>),
    Digests(Vec<[u8; 32]>),
    Status,
}

fn check(expect: &Expect, got: &Response, what: &str) {
    match (expect, got) {
        (Expect::Block(w), Response::BlockVerdict(g)) => {
            let outcome = if w.valid() { Outcome::Valid } else { Outcome::Invalid };
            assert_eq!(
                (g.outcome, g.position, g.height, g.hash, g.tx_count),
                (outcome, w.position, w.height, w.hash, w.tx_count),
                "{what}"
            );
            let got: Vec<(&str, Option<u32>, &str)> =
                g.failures.iter().map(|f| (f.rule_name(), f.tx, f.detail.as_str())).collect();
            let want: Vec<(&str, Option<u32>, &str)> =
                w.failures.iter().map(|f| (f.rule.name(), f.tx, f.detail.as_str())).collect();
            assert_eq!(got, want, "{what}");
        }
        (Expect::Sigs(w), Response::SignatureVerdicts(g)) => assert_eq!(g, w, "{what}"),
        (Expect::Digests(w), Response::Digests(g)) => assert_eq!(g, w, "{what}"),
        (Expect::Status, Response::Status(json)) => {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(v["validator"]["queue_requests"].is_u64() && v["server"]["frames"].is_u64(), "{what}: {json}");
        }
        (_, other) => panic!("{what}: unexpected {other:?}"),
    }
}

#[test]
fn load_test_32_clients_every_verdict_exact_nothing_lost() {
    for tcp in [false, true] {
        load_test(tcp);
    }
}

fn load_test(tcp: bool) {
    const CLIENTS: usize = 32;
    let started = Instant::now();
    let sigs = Arc::new(generate_all(4000, 0x10ad));
    let reference: Arc<Vec<[bool; 2]>> = Arc::new(
        sigs.iter()
            .map(|s| {
                let it = s.item();
                RuleSet::ALL.map(|r| sig::verify(r, it.public_key, it.message, it.signature))
            })
            .collect(),
    );
    let dirs: Vec<tempfile::TempDir> = (0..CLIENTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let chains: Vec<_> = dirs.iter().enumerate().map(|(i, d)| client_chain(d.path(), 1000 + i as u64)).collect();
    let invalid_blocks: usize = chains.iter().map(|(_, w)| w.iter().filter(|r| !r.valid()).count()).sum();
    assert!(invalid_blocks > 0);
    let mut config = ValidatorConfig::default();
    (config.max_batch, config.max_delay) = (1024, Duration::from_millis(1));
    let server = Running::start(config, ServerConfig { max_in_flight: 8, ..ServerConfig::default() }, tcp);

    let answered: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = chains
            .into_iter()
            .enumerate()
            .map(|(c, (block_bytes, block_reports))| {
                let (sigs, reference, server) = (Arc::clone(&sigs), Arc::clone(&reference), &server);
                scope.spawn(move || {
                    let (mut tx, mut rx) = server.client().split();
                    // The requests, in the order sent, with what each must get.
                    let mut plan: Vec<(Request, Expect)> = Vec::new();
                    let mut blocks = block_bytes.into_iter().zip(block_reports);
                    let mut at = c * 113 % sigs.len();
                    for round in 0..24 {
                        match round % 3 {
                            0 | 1 => {
                                let n = 1 + (c * 7 + round * 13) % 90;
                                let end = (at + n).min(sigs.len());
                                let rules = if (c + round) % 2 == 0 { Rules::Zip215 } else { Rules::Strict };
                                let want = reference[at..end].iter().map(|r| r[rules as usize]).collect();
                                plan.push((
                                    Request::VerifySignatures { rules, signatures: signatures(&sigs[at..end]) },
                                    Expect::Sigs(want),
                                ));
                                at = end % sigs.len();
                            }
                            _ => {
                                if let Some((bytes, report)) = blocks.next() {
                                    plan.push((Request::SubmitBlock(bytes), Expect::Block(report)));
                                }
                            }
                        }
                        if round == 10 {
                            let messages: Vec<Vec<u8>> = (0..5).map(|i| vec![c as u8; i * 40]).collect();
                            let want = messages.iter().map(|m| *blake3::hash(m).as_bytes()).collect();
                            plan.push((Request::Hash { key: None, messages }, Expect::Digests(want)));
                            plan.push((Request::Status, Expect::Status));
                        }
                    }
                    // The chain's remaining blocks, in order.
                    for (bytes, report) in blocks {
                        plan.push((Request::SubmitBlock(bytes), Expect::Block(report)));
                    }
                    // Pipelined: a sending thread and this one receiving.
                    let requests: Vec<Request> = plan.iter().map(|(r, _)| r.clone()).collect();
                    let sender = std::thread::spawn(move || {
                        let ids: Vec<u64> = requests.iter().map(|r| tx.queue(r).unwrap()).collect();
                        tx.finish().unwrap();
                        ids
                    });
                    let mut got = HashMap::new();
                    for _ in 0..plan.len() {
                        let (id, response) = rx.recv().unwrap();
                        assert!(got.insert(id, response).is_none(), "client {c}: id {id} answered twice");
                    }
                    assert!(matches!(rx.recv(), Err(vigil_client::ClientError::Closed)), "client {c}: extra response");
                    let ids = sender.join().unwrap();
                    for (i, ((_, expect), id)) in plan.iter().zip(&ids).enumerate() {
                        let response = got.get(id).unwrap_or_else(|| panic!("client {c}: request {i} lost"));
                        check(expect, response, &format!("client {c} request {i}"));
                    }
                    plan.len()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let counters = server.stop();
    eprintln!(
        "{} ({}): {CLIENTS} clients, {answered} requests answered exactly, {invalid_blocks} invalid blocks, in {:.2?}",
        if tcp { "tcp" } else { "unix" },
        counters.responses.load(Relaxed),
        started.elapsed()
    );
    assert_eq!(counters.frames.load(Relaxed), answered as u64);
    assert_eq!(counters.responses.load(Relaxed), answered as u64);
    assert_eq!(counters.connections_total.load(Relaxed), CLIENTS as u64);
}

fn expect_error(response: Response, code: ErrorCode) -> String {
    match response {
        Response::Error { code: got, message } if got == code => message,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

#[test]
fn bad_frames_get_errors_and_the_connection_goes_on_while_framing_holds() {
    let server = Running::start(
        ValidatorConfig::default(),
        ServerConfig { max_frame: 1 << 16, ..ServerConfig::default() },
        false,
    );
    let (mut tx, mut rx) = server.client().split();
    let frame = |version: u8, kind: u8, flags: u16, id: u64, body: &[u8]| {
        let mut f = vigil_protocol::encode_frame(kind, id, body);
        f[4] = version;
        f[6..8].copy_from_slice(&flags.to_le_bytes());
        f
    };
    tx.send_raw(&frame(2, 4, 0, 11, &[])).unwrap();
    let (id, r) = rx.recv().unwrap();
    assert_eq!(id, 11);
    assert!(expect_error(r, ErrorCode::BadVersion).contains("version 2"));
    tx.send_raw(&frame(1, 4, 1, 12, &[])).unwrap();
    assert_eq!(rx.recv().unwrap().0, 12);
    tx.send_raw(&frame(1, 0x42, 0, 13, &[])).unwrap();
    let (id, r) = rx.recv().unwrap();
    assert_eq!(id, 13);
    expect_error(r, ErrorCode::UnknownKind);
    // A signature count that does not fit its body; rules out of range.
    tx.send_raw(&frame(1, 2, 0, 14, &[0, 9, 0, 0, 0])).unwrap();
    let (id, r) = rx.recv().unwrap();
    assert_eq!(id, 14);
    assert!(expect_error(r, ErrorCode::BadBody).contains("signature count"));
    tx.send_raw(&frame(1, 2, 0, 15, &[7, 0, 0, 0, 0])).unwrap();
    expect_error(rx.recv().unwrap().1, ErrorCode::BadBody);
    // Garbage as a block: a verdict (malformed), not an error.
    let id = tx.send(&Request::SubmitBlock(b"not a block".to_vec())).unwrap();
    let (got, r) = rx.recv().unwrap();
    assert_eq!(got, id);
    let Response::BlockVerdict(v) = r else { panic!("{r:?}") };
    assert_eq!(v.outcome, Outcome::Malformed);
    assert!(v.message.contains("malformed"), "{}", v.message);
    // Still usable.
    let id = tx.send(&Request::Status).unwrap();
    assert!(matches!(rx.recv().unwrap(), (got, Response::Status(_)) if got == id));
    // A length over the limit breaks the framing: error (id 0), then closed.
    let mut huge = vigil_protocol::encode_frame(1, 16, &[]);
    huge[..4].copy_from_slice(&(1u32 << 30).to_le_bytes());
    tx.send_raw(&huge).unwrap();
    let (id, r) = rx.recv().unwrap();
    assert_eq!(id, 0);
    assert!(expect_error(r, ErrorCode::FrameTooLarge).contains("closing"));
    assert!(matches!(rx.recv(), Err(vigil_client::ClientError::Closed)));
    // A length below the header: the same.
    let mut c = server.client();
    let mut short = vigil_protocol::encode_frame(4, 17, &[]);
    short[..4].copy_from_slice(&3u32.to_le_bytes());
    let (mut tx, mut rx) = {
        c.send(&Request::Status).unwrap();
        assert!(matches!(c.recv().unwrap().1, Response::Status(_)));
        c.split()
    };
    tx.send_raw(&short).unwrap();
    expect_error(rx.recv().unwrap().1, ErrorCode::FrameTooShort);
    assert!(matches!(rx.recv(), Err(vigil_client::ClientError::Closed)));
    // Others are unaffected.
    let mut other = server.client();
    assert!(matches!(other.call(&Request::Status).unwrap(), Response::Status(_)));
    let counters = server.stop();
    assert_eq!(counters.framing_errors.load(Relaxed), 2);
}

/// Clients that vanish mid-request (after sending, mid-frame) do not
/// disturb one that stays; their answers are counted as undelivered.
#[test]
fn vanishing_clients_do_not_disturb_others() {
    let sigs = generate_all(600, 21);
    let mut config = ValidatorConfig::default();
    config.max_delay = Duration::from_millis(50);
    let server = Running::start(config, ServerConfig::default(), true);
    let request = Request::VerifySignatures { rules: Rules::Zip215, signatures: signatures(&sigs) };
    for _ in 0..5 {
        let mut c = server.client();
        c.send(&request).unwrap();
        drop(c);
        let (mut tx, _rx) = server.client().split();
        let bytes = request.encode(1);
        tx.send_raw(&bytes[..bytes.len() / 2]).unwrap();
    }
    let mut stays = server.client();
    let Response::SignatureVerdicts(got) = stays.call(&request).unwrap() else { panic!() };
    let want: Vec<bool> =
        sigs.iter().map(|s| sig::verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature)).collect();
    assert_eq!(got, want);
    std::thread::sleep(Duration::from_millis(300));
    let counters = server.stop();
    assert_eq!(counters.connections_total.load(Relaxed), 11);
    assert_eq!(counters.frames.load(Relaxed), 6, "five whole frames from vanished clients and one that stayed");
}

/// A client that pipelines far more than the server holds in flight, and
/// reads nothing until it has sent everything: the server slows its reading
/// (a tiny queue and in-flight limit) and still answers every request.
#[test]
fn deep_pipelining_is_held_back_and_fully_answered() {
    let sigs = generate_all(50, 5);
    let mut config = ValidatorConfig::default();
    (config.max_queue_bytes, config.max_delay) = (8 << 10, Duration::from_micros(200));
    let server = Running::start(config, ServerConfig { max_in_flight: 2, ..ServerConfig::default() }, false);
    let (mut tx, mut rx) = server.client().split();
    let request = Request::VerifySignatures { rules: Rules::Strict, signatures: signatures(&sigs) };
    let want: Vec<bool> =
        sigs.iter().map(|s| sig::verify(RuleSet::Strict, &s.public_key, &s.message, &s.signature)).collect();
    const N: usize = 400;
    let sender = std::thread::spawn(move || {
        for _ in 0..N {
            tx.queue(&request).unwrap();
        }
        tx.finish().unwrap();
    });
    // Let the sender run ahead (the socket buffers fill, the server holds back).
    std::thread::sleep(Duration::from_millis(300));
    let mut ids = Vec::new();
    for _ in 0..N {
        let (id, r) = rx.recv().unwrap();
        assert_eq!(r, Response::SignatureVerdicts(want.clone()));
        ids.push(id);
    }
    sender.join().unwrap();
    assert_eq!(ids, (1..=N as u64).collect::<Vec<_>>(), "answers in request order, none lost");
    let mut probe = server.client();
    let Response::Status(json) = probe.call(&Request::Status).unwrap() else { panic!() };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["validator"]["waited_for_room"].as_u64().unwrap() > 0, "the queue pushed back: {json}");
}

/// Shutdown with requests queued in the validator: every one is answered,
/// then the connection closes.
#[test]
fn shutdown_answers_everything_in_flight() {
    let sigs = generate_all(40, 8);
    let mut config = ValidatorConfig::default();
    (config.max_batch, config.max_delay) = (1 << 20, Duration::from_secs(2));
    let server = Running::start(config, ServerConfig::default(), false);
    let (mut tx, mut rx) = server.client().split();
    const N: usize = 6;
    for i in 0..N {
        tx.send(&Request::VerifySignatures { rules: Rules::Zip215, signatures: signatures(&sigs[i..i + 5]) }).unwrap();
    }
    // Wait until the server has read all of them (they sit in the queue for up to 2 s).
    let mut probe = server.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let Response::Status(json) = probe.call(&Request::Status).unwrap() else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        if v["validator"]["requests"].as_u64() == Some(N as u64) {
            assert!(v["validator"]["queue_requests"].as_u64().unwrap() > 0, "still queued at shutdown: {json}");
            break;
        }
        assert!(Instant::now() < deadline, "requests never arrived: {json}");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(probe);
    server.shutdown.store(true, Relaxed);
    for i in 0..N {
        let (id, r) = rx.recv().unwrap();
        assert_eq!(id, i as u64 + 1);
        let want: Vec<bool> = sigs[i..i + 5]
            .iter()
            .map(|s| sig::verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature))
            .collect();
        assert_eq!(r, Response::SignatureVerdicts(want));
    }
    assert!(matches!(rx.recv(), Err(vigil_client::ClientError::Closed)));
    let counters = server.stop();
    assert_eq!(counters.undelivered.load(Relaxed), 0);
    assert!(counters.responses.load(Relaxed) > N as u64);
}

/// Beyond `max_connections`, a new connection is told `overloaded` and
/// closed; once a slot frees up, connections are served again.
#[test]
fn connections_beyond_the_limit_are_refused_with_a_reason() {
    let server = Running::start(
        ValidatorConfig::default(),
        ServerConfig { max_connections: 1, ..ServerConfig::default() },
        false,
    );
    let mut first = server.client();
    assert!(matches!(first.call(&Request::Status).unwrap(), Response::Status(_)));
    let mut second = server.client();
    let (id, r) = second.recv().unwrap();
    assert_eq!(id, 0);
    assert!(expect_error(r, ErrorCode::Overloaded).contains("1 connections"));
    assert!(matches!(second.recv(), Err(vigil_client::ClientError::Closed)));
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut third = server.client();
        match third.call(&Request::Status) {
            Ok(Response::Status(_)) => break,
            Ok(Response::Error { code: ErrorCode::Overloaded, .. }) | Err(_) => {
                assert!(Instant::now() < deadline, "the freed slot was never reused");
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert!(server.stop().connections_refused.load(Relaxed) >= 1);
}

/// A chain's first block with its chain id replaced: well formed, fails
/// its signatures.
fn junk_block(genesis: &[u8], seed: u8) -> Vec<u8> {
    let mut junk = genesis.to_vec();
    for (i, b) in junk[8..40].iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8) ^ 0x5a;
    }
    junk
}

/// Item 17: blocks that fail never keep a chain slot. Junk blocks with
/// fresh chain ids (invalid signatures) as many as there are slots, then
/// the real chain's genesis: it is checked (valid), not `too_many_chains`.
#[test]
fn failing_blocks_never_keep_a_chain_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, reports) = client_chain(dir.path(), 3);
    let mut config = ValidatorConfig::default();
    config.max_chains = 4;
    let server = Running::start(config, ServerConfig::default(), false);
    let mut c = server.client();
    for seed in 0..8 {
        let Response::BlockVerdict(v) = c.call(&Request::SubmitBlock(junk_block(&blocks[0], seed))).unwrap() else {
            panic!()
        };
        assert_eq!((v.outcome, v.position), (Outcome::Invalid, 0), "junk {seed}: {v:?}");
        // A chain id of its own: not a chain_id failure.
        assert!(v.failures.iter().all(|f| f.rule_name() != "chain_id"), "{v:?}");
    }
    for (i, (block, want)) in blocks.iter().zip(&reports).enumerate() {
        let r = c.call(&Request::SubmitBlock(block.clone())).unwrap();
        check(&Expect::Block(want.clone()), &r, &format!("real block {i}"));
    }
    let Response::Status(json) = c.call(&Request::Status).unwrap() else { panic!() };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["validator"]["chains"].as_u64(), Some(1), "{json}");
}

/// With the chain id pinned, a block of another chain fails the chain_id
/// rule in the one chain, as `vigil verify --chain-id` reports it.
#[test]
fn a_pinned_chain_id_reports_foreign_blocks_as_verify_does() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, _) = client_chain(dir.path(), 3);
    let chain_id: [u8; 32] = blocks[0][8..40].try_into().unwrap();
    let mut config = ValidatorConfig::default();
    config.chain_id = Some(chain_id);
    let server = Running::start(config, ServerConfig::default(), false);
    let mut c = server.client();
    let Response::BlockVerdict(v) = c.call(&Request::SubmitBlock(junk_block(&blocks[0], 1))).unwrap() else { panic!() };
    assert_eq!(v.outcome, Outcome::Invalid);
    assert!(v.failures.iter().any(|f| f.rule_name() == "chain_id"), "{v:?}");
}

/// `--max-in-flight N` is exact, counted by the server (`held_peak`), and
/// a hash whose response would be over `max_frame` is refused unread.
#[test]
fn held_requests_never_exceed_max_in_flight_and_big_responses_are_refused() {
    let sigs = generate_all(8, 3);
    for n in [1usize, 2, 4] {
        let mut config = ValidatorConfig::default();
        (config.max_batch, config.max_delay) = (1 << 20, Duration::from_millis(700));
        let server = Running::start(config, ServerConfig { max_in_flight: n, ..ServerConfig::default() }, false);
        let (mut tx, mut rx) = server.client().split();
        for i in 0..n + 3 {
            tx.queue(&Request::VerifySignatures { rules: Rules::Zip215, signatures: signatures(&sigs[i..i + 1]) })
                .unwrap();
        }
        tx.flush().unwrap();
        for _ in 0..n + 3 {
            assert!(matches!(rx.recv().unwrap().1, Response::SignatureVerdicts(_)));
        }
        let counters = server.stop();
        assert_eq!(counters.held_peak.load(Relaxed), n as u64, "max_in_flight {n}");
        assert_eq!(counters.requests_held.load(Relaxed), 0);
        assert_eq!(counters.buffered_bytes.load(Relaxed), 0, "every charge is given back");
    }
    let server = Running::start(
        ValidatorConfig::default(),
        ServerConfig { max_frame: 64 << 10, max_buffered: 1 << 20, ..ServerConfig::default() },
        true,
    );
    let mut c = server.client();
    let messages = vec![Vec::new(); 4000];
    let r = c.call(&Request::Hash { key: None, messages }).unwrap();
    assert!(expect_error(r, ErrorCode::ResponseTooLarge).contains("4000 digests"));
    let messages = vec![b"x".to_vec(); 100];
    assert!(
        matches!(c.call(&Request::Hash { key: Some([1; 32]), messages }).unwrap(), Response::Digests(d) if d.len() == 100)
    );
}
