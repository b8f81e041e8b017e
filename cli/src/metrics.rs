//! `--metrics ADDR`: Prometheus text (format 0.0.4) on
//! `http://ADDR/metrics`, encoded by `prometheus-client` from the
//! counters the engine and the server keep, read at each scrape. Served by
//! one thread (`tiny_http`); loopback addresses only unless
//! `--allow-remote`.

use crate::Fatal;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use vigil_engine::stats::HistogramSnapshot;

/// Writes one scrape's metrics (a [`Collector`] of what is exported).
pub type Export = dyn Fn(&mut Encoder<'_, '_>) -> fmt::Result + Send + Sync;

/// Encodes metrics of the three kinds vigil exports.
pub struct Encoder<'a, 'b>(&'b mut DescriptorEncoder<'a>);

impl Encoder<'_, '_> {
    /// A counter (`NAME_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let metric = ConstCounter::new(value);
        metric.encode(self.0.encode_descriptor(name, help, None, MetricType::Counter)?)
    }

    /// A counter with one label, a value per label value.
    pub fn counters(&mut self, name: &str, help: &str, label: &str, values: &[(&str, u64)]) -> fmt::Result {
        let mut family = self.0.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value, n) in values {
            let labels = [(label.to_owned(), (*value).to_owned())];
            ConstCounter::new(*n).encode(family.encode_family(&labels.as_slice())?)?;
        }
        Ok(())
    }

    /// A gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> fmt::Result {
        let metric = ConstGauge::new(value);
        metric.encode(self.0.encode_descriptor(name, help, None, MetricType::Gauge)?)
    }

    /// A histogram from a snapshot (cumulative buckets).
    pub fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) -> fmt::Result {
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = h
            .buckets
            .iter()
            .map(|&(bound, cumulative)| {
                let n = cumulative - below;
                below = cumulative;
                (bound, n)
            })
            .collect();
        let mut metric = self.0.encode_descriptor(name, help, None, MetricType::Histogram)?;
        metric.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
    }
}

struct Exported(Arc<Export>);

impl fmt::Debug for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("vigil metrics")
    }
}

impl Collector for Exported {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        (self.0)(&mut Encoder(&mut encoder))
    }
}

/// The `/metrics` endpoint; stops when dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `export` on `http://address/metrics`. A non-loopback address
/// needs `allow_remote` (what it shows is not secret, but a node's
/// operator decides who sees it).
pub fn serve(address: SocketAddr, allow_remote: bool, export: Arc<Export>) -> Result<MetricsServer, Fatal> {
    if !address.ip().is_loopback() && !allow_remote {
        return Err(Fatal(format!(
            "--metrics {address}: not a loopback address; --allow-remote serves metrics beyond this machine"
        )));
    }
    let server = Arc::new(tiny_http::Server::http(address).map_err(|e| Fatal(format!("--metrics {address}: {e}")))?);
    let bound = server.server_addr().to_ip().ok_or_else(|| Fatal(format!("--metrics {address}: not an IP address")))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exported(export)));
    let serving = Arc::clone(&server);
    let thread = std::thread::Builder::new()
        .name("vigil-metrics".into())
        .spawn(move || {
            for request in serving.incoming_requests() {
                let response = if request.url() != "/metrics" {
                    tiny_http::Response::from_string("not found: vigil serves /metrics\n").with_status_code(404)
                } else if *request.method() != tiny_http::Method::Get {
                    tiny_http::Response::from_string("GET /metrics\n").with_status_code(405)
                } else {
                    let mut text = String::new();
                    match prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
                        Ok(()) => tiny_http::Response::from_string(text).with_header(
                            "Content-Type: text/plain; version=0.0.4; charset=utf-8"
                                .parse::<tiny_http::Header>()
                                .expect("a valid header"),
                        ),
                        Err(_) => tiny_http::Response::from_string("encoding failed\n").with_status_code(500),
                    }
                };
                // A client that went away is its own loss.
                let _ = request.respond(response);
            }
        })
        .map_err(|e| Fatal(format!("--metrics: {e}")))?;
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(MetricsServer { server, thread: Some(thread) })
}

/// Where signatures were verified (a signer's counters).
pub fn signer(e: &mut Encoder<'_, '_>, s: &vigil_engine::sig::SignerStats) -> fmt::Result {
    e.counters(
        "vigil_signatures_verified",
        "Signatures verified, by device (GPU failures redone on the CPU count as cpu)",
        "device",
        &[("cpu", s.cpu_signatures), ("gpu", s.gpu_signatures)],
    )?;
    e.counter("vigil_gpu_calls", "GPU signature calls", s.gpu_calls)?;
    e.counter("vigil_gpu_failures", "GPU calls that failed (each redone on the CPU)", s.gpu_failures)?;
    e.counter(
        "vigil_cpu_fallbacks",
        "Batches meant for the GPU verified on the CPU instead (failed calls, and every batch once the device is lost)",
        s.cpu_fallbacks,
    )?;
    e.counter(
        "vigil_fallback_signatures",
        "Signatures meant for the GPU verified on the CPU instead",
        s.fallback_signatures,
    )?;
    e.gauge(
        "vigil_gpu_lost",
        "1 once the GPU device was lost (everything runs on the CPU from then on)",
        f64::from(u8::from(s.gpu_lost)),
    )
}

/// `vigil serve`'s metrics: the validator's and the server's counters.
pub fn serve_export(validator: Arc<vigil_engine::Validator>, server: Arc<vigil_server::ServerCounters>) -> Arc<Export> {
    use std::sync::atomic::Ordering::Relaxed;
    Arc::new(move |e: &mut Encoder<'_, '_>| {
        let v = validator.status();
        e.gauge("vigil_uptime_seconds", "Seconds since the validator started", v.uptime_seconds)?;
        e.counters(
            "vigil_requests",
            "Requests accepted, by kind",
            "kind",
            &[("block", v.block_requests), ("signatures", v.signature_requests)],
        )?;
        e.counters(
            "vigil_blocks",
            "Blocks answered, by verdict",
            "verdict",
            &[("valid", v.blocks - v.invalid_blocks), ("invalid", v.invalid_blocks), ("malformed", v.malformed_blocks)],
        )?;
        e.counters(
            "vigil_request_signatures",
            "Signatures of signature requests, by verdict",
            "verdict",
            &[("valid", v.signatures - v.invalid_signatures), ("invalid", v.invalid_signatures)],
        )?;
        e.counter("vigil_signatures_checked", "Signatures checked, blocks' and requests'", v.signatures_checked)?;
        e.counter("vigil_batches", "Batches the validator ran", v.batches)?;
        e.histogram("vigil_batch_signatures", "Signatures a batch held", &v.batch_signatures)?;
        e.histogram(
            "vigil_request_latency_seconds",
            "Seconds from a request's submission to its verdict",
            &v.latency_seconds,
        )?;
        e.gauge("vigil_busy_seconds", "Seconds the validator's worker was busy", v.busy_seconds)?;
        e.gauge("vigil_queue_requests", "Requests waiting", v.queue_requests as f64)?;
        e.gauge("vigil_queue_bytes", "Bytes of requests waiting", v.queue_bytes as f64)?;
        e.gauge("vigil_queue_max_bytes", "The queue's bound (--max-queue)", v.max_queue_bytes as f64)?;
        e.counter("vigil_overloaded", "Requests refused for a full queue", v.overloaded)?;
        e.counter("vigil_backpressure_waits", "Submitters that waited for room in the queue", v.waited_for_room)?;
        e.gauge("vigil_chains", "Chains kept", v.chains as f64)?;
        signer(e, &v.signer)?;
        let c = &*server;
        e.gauge("vigil_connections_open", "Connections open", c.connections_open.load(Relaxed) as f64)?;
        e.counter("vigil_connections", "Connections served", c.connections_total.load(Relaxed))?;
        e.counter(
            "vigil_connections_refused",
            "Connections refused for --max-connections",
            c.connections_refused.load(Relaxed),
        )?;
        e.counter(
            "vigil_unauthorized",
            "Connections refused for a missing or wrong token",
            c.unauthorized.load(Relaxed),
        )?;
        e.counter("vigil_frames", "Frames read whole", c.frames.load(Relaxed))?;
        e.counter("vigil_responses", "Responses delivered", c.responses.load(Relaxed))?;
        e.counters(
            "vigil_errors",
            "Errors, by kind",
            "kind",
            &[
                ("error_response", c.error_responses.load(Relaxed)),
                ("framing", c.framing_errors.load(Relaxed)),
                ("undelivered", c.undelivered.load(Relaxed)),
                ("read_timeout", c.read_timeouts.load(Relaxed)),
                ("write_timeout", c.write_timeouts.load(Relaxed)),
            ],
        )?;
        e.gauge("vigil_buffered_bytes", "Bytes charged against --max-buffered", c.buffered_bytes.load(Relaxed) as f64)?;
        e.gauge(
            "vigil_buffered_peak_bytes",
            "The most bytes ever charged at once",
            c.buffered_peak.load(Relaxed) as f64,
        )?;
        e.gauge("vigil_requests_held", "Requests read and not yet answered", c.requests_held.load(Relaxed) as f64)
    })
}

/// What `vigil verify --follow` exports, updated after each step.
#[derive(Default)]
pub struct FollowState {
    /// The totals so far.
    pub summary: vigil_engine::Summary,
    /// The signer's counters.
    pub signer: vigil_engine::sig::SignerStats,
    /// A block cut short at the end of the last file is waited for.
    pub waiting: bool,
}

/// `vigil verify --follow`'s metrics.
pub fn follow_export(state: Arc<std::sync::Mutex<FollowState>>) -> Arc<Export> {
    Arc::new(move |e: &mut Encoder<'_, '_>| {
        let s = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = &s.summary;
        e.counters(
            "vigil_blocks",
            "Blocks verified, by verdict",
            "verdict",
            &[("valid", t.blocks - t.invalid_blocks), ("invalid", t.invalid_blocks), ("malformed", t.malformed)],
        )?;
        e.counter("vigil_transactions", "Transactions verified", t.transactions)?;
        e.counter("vigil_signatures_checked", "Signatures checked, transactions' and blocks'", t.signatures)?;
        e.counter("vigil_bytes", "Bytes of the chain read", t.bytes)?;
        e.counter("vigil_files", "Segment files read", t.files)?;
        e.gauge(
            "vigil_tip_height",
            "Height of the last well-formed block (-1: none yet)",
            t.last.map_or(-1.0, |b| b.height as f64),
        )?;
        e.gauge(
            "vigil_waiting_for_tail",
            "1 while a block cut short at the end of the last file is waited for",
            if s.waiting { 1.0 } else { 0.0 },
        )?;
        e.gauge("vigil_uptime_seconds", "Seconds since it started", t.seconds)?;
        signer(e, &s.signer)
    })
}
