//! `--metrics`: Prometheus text over HTTP, scraped while `vigil serve`
//! answers requests; the counters move as they should.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::*;

/// `GET path` over HTTP/1.0: (status code, content type, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: ").or_else(|| l.strip_prefix("content-type: ")))
        .unwrap_or("")
        .to_owned();
    (status, content_type, body.to_owned())
}

/// Samples of a Prometheus text body: `name{labels}` to value.
pub fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        })
        .collect()
}

/// Reads stderr lines until one starts with each of `prefixes`, in any
/// order: the rest of each line.
pub fn announced<R: BufRead>(err: &mut R, prefixes: &[&str]) -> Vec<String> {
    let mut found = vec![None; prefixes.len()];
    let started = Instant::now();
    let mut line = String::new();
    while found.iter().any(Option::is_none) {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "stderr ended before {prefixes:?}");
        for (p, f) in prefixes.iter().zip(&mut found) {
            if let Some(rest) = line.trim_end().strip_prefix(p) {
                *f = Some(rest.to_owned());
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    found.into_iter().flatten().collect()
}

/// A `vigil serve` child on loopback TCP with `--metrics` (ports picked by
/// the system) and no batching delay, plus `args` and `env`: the child, its
/// stderr past the announcements, the metrics address and the listen
/// address. Killed when dropped.
fn serve_with_metrics(args: &[&str], env: &[(&str, &str)]) -> (Child, BufReader<ChildStderr>, String, String) {
    let mut child = Child(
        Command::new(VIGIL)
            .args(["serve", "--listen", "tcp:127.0.0.1:0", "--metrics", "127.0.0.1:0", "--max-delay-us", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let said = announced(&mut err, &["vigil: metrics on http://", "vigil: serving protocol v1 on "]);
    let metrics = said[0].strip_suffix("/metrics").unwrap().to_owned();
    let listen = said[1].split(' ').next().unwrap().to_owned();
    (child, err, metrics, listen)
}

/// A child process killed when dropped, so that a failing test leaves no
/// server behind (a child already waited for is left alone).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn serve_metrics_are_prometheus_text_and_move_with_requests() {
    use vigil_client::{Client, Request, Response, Rules, Signature};
    let (mut child, mut err, metrics, listen) = serve_with_metrics(&[], &[]);
    // Keep reading stderr so the server never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));

    let (status, content_type, body) = http_get(&metrics, "/metrics");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let before = samples(&body);
    for name in [
        "vigil_requests_total{kind=\"block\"}",
        "vigil_blocks_total{verdict=\"invalid\"}",
        "vigil_request_signatures_total{verdict=\"valid\"}",
        "vigil_batch_signatures_count",
        "vigil_request_latency_seconds_bucket{le=\"+Inf\"}",
        "vigil_queue_bytes",
        "vigil_signatures_verified_total{device=\"gpu\"}",
        "vigil_cpu_fallbacks_total",
        "vigil_connections_open",
        "vigil_errors_total{kind=\"framing\"}",
        "vigil_overloaded_total",
        "vigil_backpressure_waits_total",
    ] {
        assert_eq!(before.get(name), Some(&0.0), "{name} in:\n{body}");
    }
    assert_eq!(http_get(&metrics, "/other").0, 404);

    // The first sample file's blocks (valid), then two signatures that do
    // not verify.
    let mut client = Client::connect(&listen).unwrap();
    let files = segments(&workspace().join("datasets/sample"));
    let data = std::fs::read(&files[0]).unwrap();
    let blocks: Vec<Vec<u8>> = vigil_engine::format::blocks(&data)
        .map(|(offset, b)| data[offset as usize..offset as usize + b.unwrap().len()].to_vec())
        .collect();
    for block in &blocks {
        client.send(&Request::SubmitBlock(block.clone())).unwrap();
        assert!(matches!(client.recv().unwrap().1, Response::BlockVerdict(_)));
    }
    let bad = Signature { public_key: [9; 32], signature: [7; 64], message: b"m".to_vec() };
    client.send(&Request::VerifySignatures { rules: Rules::Zip215, signatures: vec![bad.clone(), bad] }).unwrap();
    assert_eq!(client.recv().unwrap().1, Response::SignatureVerdicts(vec![false, false]));

    // Counters are updated just after a verdict is sent: scrape until the
    // last request shows (or 10 s pass, and the asserts say what is off).
    let n = blocks.len() as f64;
    let started = Instant::now();
    let after = loop {
        let m = samples(&http_get(&metrics, "/metrics").2);
        let settled = m["vigil_request_latency_seconds_count"] == n + 1.0 && m["vigil_responses_total"] == n + 1.0;
        if settled || started.elapsed() > Duration::from_secs(10) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(after["vigil_requests_total{kind=\"block\"}"], n);
    assert_eq!(after["vigil_requests_total{kind=\"signatures\"}"], 1.0);
    assert_eq!(after["vigil_blocks_total{verdict=\"valid\"}"], n);
    assert_eq!(after["vigil_request_signatures_total{verdict=\"invalid\"}"], 2.0);
    assert_eq!(after["vigil_request_latency_seconds_count"], n + 1.0);
    assert!(after["vigil_batches_total"] >= 1.0);
    assert_eq!(after["vigil_batch_signatures_count"], after["vigil_batches_total"]);
    assert!(after["vigil_signatures_verified_total{device=\"cpu\"}"] >= 2.0);
    assert_eq!(after["vigil_connections_open"], 1.0);
    assert_eq!(after["vigil_responses_total"], n + 1.0);
    assert!(after["vigil_uptime_seconds"] > 0.0);
    drop(client);

    assert!(Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap().success());
    assert_eq!(child.0.wait().unwrap().code(), Some(0));

    // Only loopback, unless --allow-remote.
    let o = vigil(&["serve", "--listen", "tcp:127.0.0.1:0", "--metrics", "0.0.0.0:0"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--metrics 0.0.0.0:0: not a loopback address"), "{}", stderr(&o));
}

/// `vigil serve --backend gpu` whose device is lost (injected) at its first
/// call: every verdict still comes, from the CPU, and `status` and the
/// metrics say the GPU was lost and what was redone.
#[test]
fn serve_with_a_lost_gpu_answers_from_the_cpu_and_says_so() {
    use vigil_client::{Client, Outcome, Request, Response};
    if !gpu_adapter_or_skip("the lost-GPU serve test") {
        return;
    }
    let (mut child, err, metrics, listen) = serve_with_metrics(&["--backend", "gpu"], &[("VIGIL_GPU_FAULT", "lost:0")]);
    let (tx, warnings) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines() {
            let _ = tx.send(line.unwrap());
        }
    });

    let mut client = Client::connect(&listen).unwrap();
    let files = segments(&workspace().join("datasets/sample"));
    let data = std::fs::read(&files[0]).unwrap();
    let blocks: Vec<Vec<u8>> = vigil_engine::format::blocks(&data)
        .map(|(offset, b)| data[offset as usize..offset as usize + b.unwrap().len()].to_vec())
        .collect();
    let mut signatures = 0;
    for block in &blocks {
        client.send(&Request::SubmitBlock(block.clone())).unwrap();
        match client.recv().unwrap().1 {
            Response::BlockVerdict(v) => {
                assert_eq!(v.outcome, Outcome::Valid, "{v:?}");
                signatures += u64::from(v.tx_count) + 1;
            }
            other => panic!("{other:?}"),
        }
    }
    let Response::Status(status) = client.call(&Request::Status).unwrap() else { panic!("no status") };
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let signer = &status["validator"]["signer"];
    assert_eq!(signer["gpu_lost"], true, "{status}");
    assert_eq!(signer["gpu_signatures"], 0, "{status}");
    assert_eq!(signer["fallback_signatures"], signer["signatures"], "{status}");
    assert!(signer["gpu_failures"].as_u64() >= Some(1), "{status}");
    let m = samples(&http_get(&metrics, "/metrics").2);
    assert_eq!(m["vigil_gpu_lost"], 1.0);
    assert_eq!(m["vigil_signatures_verified_total{device=\"gpu\"}"], 0.0);
    assert!(m["vigil_fallback_signatures_total"] >= signatures as f64, "{m:?}");
    drop(client);
    assert!(Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap().success());
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    let said: Vec<String> = warnings.try_iter().collect();
    assert!(said.iter().any(|l| l.contains("the GPU device was lost")), "{said:?}");
}
