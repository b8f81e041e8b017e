//! `vigil bench --serve`: latency and throughput of `vigil serve` against
//! its batching knobs (`max_batch`, `max_delay`), with the same signatures
//! verified directly on all cores (no server, one big call) as the baseline
//! measured in the same run.
//!
//! Loads: for each (clients, depth), `clients` connections over a unix
//! socket, each keeping `depth` requests of `request_sigs` signatures in
//! flight (a new one as each answer arrives); latency is send to answer, per
//! request. The default loads are a lone client with one request in flight
//! (latency is then the batching delay plus the work) and 16 clients with 4
//! each (throughput). One signature in a hundred is invalid, unless
//! `invalid` says otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use vigil_client::{Client, Request, Response, Rules, Signature};
use vigil_engine::GpuMode;
use vigil_engine::gpu::GpuSigner;
use vigil_engine::sig::{self, RuleSet, SigItem, Signer, SignerConfig};
use vigil_engine::{Validator, ValidatorConfig};
use vigil_server::{self as server, Address, Listener, ServerConfig};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// (max_batch, max_delay) pairs to measure.
    pub settings: Vec<(usize, Duration)>,
    /// (clients, requests in flight per client) pairs.
    pub loads: Vec<(usize, usize)>,
    pub request_sigs: usize,
    pub seconds: f64,
    pub gpu: Option<Arc<GpuSigner>>,
    /// Share of invalid signatures (0 to 1), spread evenly.
    pub invalid: f64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        let mut settings = Vec::new();
        for max_batch in [64, 1024, 8192] {
            for delay_us in [100, 2000] {
                settings.push((max_batch, Duration::from_micros(delay_us)));
            }
        }
        ServeOptions {
            settings,
            loads: vec![(1, 1), (16, 4)],
            request_sigs: 16,
            seconds: 1.0,
            gpu: None,
            invalid: 0.01,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServeRow {
    pub clients: usize,
    pub depth: usize,
    pub max_batch: usize,
    pub max_delay_us: u64,
    pub requests: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub signatures_per_second: f64,
    /// Against the direct baseline.
    pub ratio: f64,
    pub batches: u64,
    pub mean_batch: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServeReport {
    pub cpu: String,
    pub cores: usize,
    pub backend: String,
    pub request_sigs: usize,
    /// The same signatures verified in one call on all cores, no server.
    pub direct_signatures_per_second: f64,
    pub rows: Vec<ServeRow>,
}

/// 4,096 signatures by 64 keys over 32-byte messages, one in a hundred
/// corrupted.
fn material(invalid: f64) -> Vec<Signature> {
    super::signed(4096, 64)
        .into_iter()
        .enumerate()
        .map(|(i, (public_key, message, mut signature))| {
            // Any prefix of n signatures holds round(n × invalid) invalid ones.
            let bad = |n: usize| (n as f64 * invalid).round() as usize;
            if bad(i + 1) > bad(i) {
                signature[5] ^= 1;
            }
            Signature { public_key, signature, message: message.to_vec() }
        })
        .collect()
}

fn direct_rate(sigs: &[Signature], seconds: f64, gpu: Option<Arc<GpuSigner>>) -> f64 {
    let items: Vec<SigItem<'_>> = sigs
        .iter()
        .map(|s| SigItem { public_key: &s.public_key, message: &s.message, signature: &s.signature })
        .collect();
    let mut signer = Signer::new(SignerConfig::default().with_gpu(gpu, GpuMode::Only));
    let started = Instant::now();
    let mut done = 0u64;
    while done == 0 || started.elapsed().as_secs_f64() < seconds {
        // What the validator's worker runs on a batch.
        signer.verify(RuleSet::Zip215, &items);
        done += items.len() as u64;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// One client: keeps `depth` requests in flight for `seconds`, then drains;
/// returns each request's latency. Checks every verdict against `want`.
fn client(
    address: &str,
    sigs: &[Signature],
    want: &[bool],
    o: &ServeOptions,
    depth: usize,
    seed: usize,
) -> Vec<Duration> {
    let (mut tx, mut rx) = Client::connect(address).expect("connect").split();
    let mut sent: HashMap<u64, (Instant, usize)> = HashMap::new();
    let mut latencies = Vec::new();
    let mut at = seed * 131 % sigs.len();
    let mut send = |tx: &mut vigil_client::Sender, sent: &mut HashMap<u64, (Instant, usize)>| {
        let end = (at + o.request_sigs).min(sigs.len());
        let request = Request::VerifySignatures { rules: Rules::Zip215, signatures: sigs[at..end].to_vec() };
        let id = tx.send(&request).expect("send");
        sent.insert(id, (Instant::now(), at));
        at = if end == sigs.len() { 0 } else { end };
    };
    let started = Instant::now();
    for _ in 0..depth {
        send(&mut tx, &mut sent);
    }
    while !sent.is_empty() {
        let (id, response) = rx.recv().expect("response");
        let (when, first) = sent.remove(&id).expect("a request of ours");
        latencies.push(when.elapsed());
        let Response::SignatureVerdicts(v) = response else { panic!("unexpected {response:?}") };
        assert_eq!(v[..], want[first..first + v.len()], "a verdict differs from the CPU reference");
        if started.elapsed().as_secs_f64() < o.seconds {
            send(&mut tx, &mut sent);
        }
    }
    latencies
}

pub fn run(o: &ServeOptions, progress: &dyn Fn(&str)) -> Result<ServeReport, String> {
    let sigs = material(o.invalid);
    let want: Vec<bool> =
        sigs.iter().map(|s| sig::verify(RuleSet::Zip215, &s.public_key, &s.message, &s.signature)).collect();
    progress("direct baseline");
    let direct = direct_rate(&sigs, o.seconds, o.gpu.clone());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &(clients, depth) in &o.loads {
        for &(max_batch, max_delay) in &o.settings {
            progress(&format!(
                "{clients} clients × {depth} in flight, max_batch {max_batch}, max_delay {} µs",
                max_delay.as_micros()
            ));
            rows.push(measure(&sigs, &want, o, dir.path(), (clients, depth), (max_batch, max_delay), direct)?);
        }
    }
    Ok(ServeReport {
        cpu: crate::cpu_model(),
        cores: rayon::current_num_threads(),
        backend: match &o.gpu {
            Some(g) => format!("gpu: {}", g.adapter().name),
            None => format!("cpu ({})", sig::curve_backend()),
        },
        request_sigs: o.request_sigs,
        direct_signatures_per_second: direct,
        rows,
    })
}

fn measure(
    sigs: &[Signature],
    want: &[bool],
    o: &ServeOptions,
    dir: &std::path::Path,
    (clients, depth): (usize, usize),
    (max_batch, max_delay): (usize, Duration),
    direct: f64,
) -> Result<ServeRow, String> {
    let address =
        Address::Unix(dir.join(format!("bench-{clients}-{depth}-{max_batch}-{}.sock", max_delay.as_micros())));
    let listener = Listener::bind(&address, false).map_err(|e| e.to_string())?;
    let address = listener.local_address().to_string();
    let mut config = ValidatorConfig::default();
    (config.max_batch, config.max_delay) = (max_batch, max_delay);
    config.signer = SignerConfig::default().with_gpu(o.gpu.clone(), GpuMode::Only);
    let validator = Arc::new(Validator::new(config));
    let shutdown = Arc::new(AtomicBool::new(false));
    let server = {
        let (validator, shutdown) = (Arc::clone(&validator), Arc::clone(&shutdown));
        std::thread::spawn(move || server::serve(listener, validator, ServerConfig::default(), shutdown))
    };
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let address = &address;
                scope.spawn(move || client(address, sigs, want, o, depth, c))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("client thread")).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let status = validator.status();
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().map_err(|_| "server thread panicked")?.map_err(|e| e.to_string())?;
    latencies.sort();
    let signatures = status.signatures;
    let rate = signatures as f64 / elapsed;
    Ok(ServeRow {
        clients,
        depth,
        max_batch,
        max_delay_us: max_delay.as_micros() as u64,
        requests: latencies.len() as u64,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        signatures_per_second: rate,
        ratio: rate / direct,
        batches: status.batches,
        mean_batch: if status.batches > 0 { signatures as f64 / status.batches as f64 } else { 0.0 },
    })
}
