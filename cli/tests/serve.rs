//! `vigil serve` against hostile clients, as a process (its memory is
//! measured from /proc, SIGTERM is a real signal): sockets it must not
//! remove, memory bounded by its flags, exact `--max-in-flight`, idle and
//! half-sent connections, a tight open-file limit, shutdown whatever
//! clients do, tokens, and flags out of range. Unix sockets only; every
//! wait is bounded.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vigil_client::{Client, ClientError, ErrorCode, Request, Response, Rules, Signature};
use vigil_protocol::{encode_frame, kind};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

struct Server {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `vigil serve` on a fresh unix socket with `args`, through `sh -c`
    /// when `shell_prefix` is set (e.g. `ulimit -n 64;`).
    fn start_with(shell_prefix: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("v.sock");
        let mut all = vec!["serve".to_string(), "--listen".into(), format!("unix:{}", sock.display())];
        all.extend(args.iter().map(|a| a.to_string()));
        let child = if shell_prefix.is_empty() {
            Command::new(VIGIL).args(&all).stderr(Stdio::piped()).spawn().unwrap()
        } else {
            let quoted: Vec<String> = all.iter().map(|a| format!("'{a}'")).collect();
            let script = format!("{shell_prefix} exec '{VIGIL}' {}", quoted.join(" "));
            Command::new("sh").args(["-c", &script]).stderr(Stdio::piped()).spawn().unwrap()
        };
        let mut server = Server { child, sock, _dir: dir };
        let started = Instant::now();
        while !server.sock.exists() {
            if server.child.try_wait().unwrap().is_some() {
                let mut err = String::new();
                server.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("the server exited at start: {err}");
            }
            assert!(started.elapsed() < Duration::from_secs(60), "server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn start(args: &[&str]) -> Server {
        Server::start_with("", args)
    }

    fn address(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    fn client(&self) -> Client {
        Client::connect(&self.address()).unwrap()
    }

    fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }

    /// The server's `server` counters.
    fn status(&self) -> serde_json::Value {
        let Response::Status(json) = self.client().call(&Request::Status).unwrap() else { panic!() };
        serde_json::from_str(&json).unwrap()
    }

    /// Peak resident memory (VmHWM) in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    fn sigterm(&self) {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
    }

    /// Waits for the exit (at most `limit`), returning the time it took and stderr.
    fn wait_exit(mut self, limit: Duration) -> (Duration, i32, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                return (started.elapsed(), status.code().unwrap_or(-1), err);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the server did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> (i32, String) {
    let o = Command::new(VIGIL).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Reads one response frame from a raw stream: (id, response), or `None`
/// at end of stream.
fn read_response(s: &mut UnixStream) -> Option<(u64, Response)> {
    let frame = vigil_protocol::read_frame(s, 1 << 30).ok()??;
    Some((frame.header.id, Response::decode(frame.header.kind, &frame.body).unwrap()))
}

fn error_code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// Item 11: a regular file at the socket path is never removed; the socket
/// is owner-only unless --socket-mode widens it.
#[test]
fn serve_never_removes_a_regular_file_and_makes_owner_only_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious");
    std::fs::write(&file, b"keep me").unwrap();
    let (code, err) = run(&["serve", "--listen", &format!("unix:{}", file.display())]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    let server = Server::start(&[]);
    assert_eq!(std::fs::metadata(&server.sock).unwrap().permissions().mode() & 0o777, 0o600);
    // A live socket is not replaced either.
    let (code, err) = run(&["serve", "--listen", &server.address()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already listening"), "{err}");
    drop(server);
    let server = Server::start(&["--socket-mode", "0660"]);
    assert_eq!(std::fs::metadata(&server.sock).unwrap().permissions().mode() & 0o777, 0o660);
}

/// A `hash` body of `count` empty messages.
fn empty_hash_frame(id: u64, count: usize) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(&(count as u32).to_le_bytes());
    body.resize(5 + 4 * count, 0);
    encode_frame(kind::HASH, id, &body)
}

/// A `verify_signatures` frame of `count` signatures over `message_len`-byte messages.
fn signatures_frame(id: u64, count: usize, message_len: usize) -> Vec<u8> {
    let signatures = (0..count)
        .map(|i| Signature { public_key: [i as u8; 32], signature: [7; 64], message: vec![i as u8; message_len] })
        .collect();
    Request::VerifySignatures { rules: Rules::Zip215, signatures }.encode(id)
}

/// Item 12: a `hash` whose response would be over --max-frame is refused
/// before it is computed; hash requests whose responses are never read,
/// and many clients sending big frames at once, keep the server's memory
/// within PROTOCOL.md's bound (max-buffered + max(max-queue, max-frame)
/// over what it used at rest).
#[test]
fn hostile_clients_keep_memory_within_the_configured_bound() {
    const MIB: u64 = 1 << 20;
    let server = Server::start(&[
        "--max-frame",
        "16MiB",
        "--max-buffered",
        "40MiB",
        "--max-queue",
        "4MiB",
        "--write-timeout",
        "5",
        "--threads",
        "2",
    ]);
    // At rest, after one request of each kind has been served.
    let mut c = server.client();
    assert!(matches!(c.call(&Request::Status).unwrap(), Response::Status(_)));
    let Response::Digests(d) = c.call(&Request::Hash { key: None, messages: vec![vec![1; 100]] }).unwrap() else {
        panic!()
    };
    assert_eq!(d.len(), 1);
    let rest = server.peak_rss();

    // 16 MiB of empty messages: a 128 MiB response, refused.
    let mut s = server.raw();
    s.write_all(&empty_hash_frame(1, (16 << 20) / 4 - 8)).unwrap();
    let (id, r) = read_response(&mut s).unwrap();
    assert_eq!((id, error_code(&r)), (1, Some(ErrorCode::ResponseTooLarge)), "{r:?}");

    std::thread::scope(|scope| {
        // Six connections asking for 16 MiB responses and never reading them.
        for i in 0..6 {
            let mut s = server.raw();
            s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            let frame = empty_hash_frame(i, (16 << 20) / 32 - 16);
            scope.spawn(move || {
                let _ = s.write_all(&frame);
                std::thread::sleep(Duration::from_secs(3));
            });
        }
        // Eight clients each sending one 16 MiB signature frame at once.
        for i in 0..8 {
            let mut s = server.raw();
            s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            let frame = signatures_frame(i, 16, (1 << 20) - 200);
            scope.spawn(move || {
                let _ = s.write_all(&frame);
                let _ = read_response(&mut s);
            });
        }
    });
    // Everything has been answered or dropped by now (write timeout 5 s).
    let status = server.status();
    let peak = server.peak_rss();
    let budget = status["limits"]["max_buffered"].as_u64().unwrap();
    assert!(status["server"]["buffered_peak"].as_u64().unwrap() <= budget, "{status}");
    let bound = budget + 16 * MIB + 24 * MIB;
    eprintln!("peak {} MiB, {} MiB at rest, status {status}", peak / MIB, rest / MIB);
    assert!(
        peak.saturating_sub(rest) <= bound,
        "peak {} MiB over {} MiB at rest: more than the bound of {} MiB",
        peak / MIB,
        rest / MIB,
        bound / MIB
    );
}

/// Item 13: `--max-in-flight N` holds exactly N requests of a connection:
/// signature requests wait 2 s for a batch, and the server reads no more
/// than N of them meanwhile.
#[test]
fn max_in_flight_is_exact() {
    for n in [1usize, 2, 4] {
        let server =
            Server::start(&["--max-in-flight", &n.to_string(), "--max-delay-us", "2000000", "--max-batch", "1000000"]);
        let mut s = server.raw();
        for i in 0..n + 2 {
            s.write_all(&signatures_frame(i as u64 + 1, 1, 10)).unwrap();
        }
        // Frames read from `s`: all but the probes' own status frames.
        let mut probes = 0u64;
        let mut read_from_s = || {
            probes += 1;
            server.status()["server"]["frames"].as_u64().unwrap() - probes
        };
        let started = Instant::now();
        while read_from_s() < n as u64 {
            assert!(started.elapsed() < Duration::from_secs(20), "the server read fewer than {n}");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(read_from_s(), n as u64, "--max-in-flight {n}: requests held");
        // All are answered in the end.
        for i in 0..n + 2 {
            let (id, r) = read_response(&mut s).unwrap();
            assert_eq!(id, i as u64 + 1);
            assert!(matches!(r, Response::SignatureVerdicts(_)), "{r:?}");
        }
    }
}

/// Item 14: connections that send nothing, or one byte, are closed after
/// --idle-timeout / --frame-timeout; while they are open, a client over
/// --max-connections gets a prompt `overloaded`, never a hang.
#[test]
fn idle_and_half_sent_connections_time_out_and_extra_clients_are_told_promptly() {
    // Timeouts long enough that the hogs are still open when the extra
    // client comes, on a loaded machine too.
    let server = Server::start(&["--max-connections", "4", "--idle-timeout", "5", "--frame-timeout", "5"]);
    let mut hogs: Vec<UnixStream> = (0..4).map(|_| server.raw()).collect();
    for h in &mut hogs[..2] {
        h.write_all(&[1]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut extra = server.raw();
    let (id, r) = read_response(&mut extra).expect("an answer, not a hang");
    assert_eq!((id, error_code(&r)), (0, Some(ErrorCode::Overloaded)));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Every hog is closed by the server within its timeout.
    for h in &mut hogs {
        let mut byte = [0u8; 1];
        let n = h.read(&mut byte).unwrap_or(0);
        assert_eq!(n, 0, "the server closes the connection");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let v = server.status();
    assert!(v["server"]["read_timeouts"].as_u64().unwrap() >= 4, "{v}");
}

/// Item 14: under an open-file limit of 64 (soft and hard), the server
/// lowers --max-connections to fit, with a warning, and every client
/// beyond gets `overloaded` at once instead of hanging in the accept queue.
#[test]
fn a_tight_open_file_limit_never_hangs_new_clients() {
    let server = Server::start_with("ulimit -n 64;", &["--threads", "1"]);
    let mut open = Vec::new();
    let mut overloaded = 0;
    for _ in 0..60 {
        let mut c = server.raw();
        c.write_all(&Request::Status.encode(5)).unwrap();
        let (id, r) = read_response(&mut c).expect("an answer, not a hang");
        match (id, &r) {
            (5, Response::Status(_)) => open.push(c),
            (0, Response::Error { code: ErrorCode::Overloaded, .. }) => overloaded += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(overloaded > 0 && !open.is_empty(), "{} open, {overloaded} overloaded", open.len());
    drop(open);
    server.sigterm();
    let (_, code, err) = server.wait_exit(Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("open-file limit"), "{err}");
}

/// Items 15 and 16: SIGTERM ends the server within --shutdown-grace (5 s by
/// default, plus a little) whatever clients do: responses never read, a frame half sent,
/// a request waiting out the longest --max-delay-us. A delay beyond 10 s is
/// refused at start.
#[test]
fn sigterm_exits_within_the_grace_whatever_clients_do() {
    for delay in ["18446744073709551615", "3000000000", "10000001"] {
        let (code, err) = run(&["serve", "--listen", "unix:/nonexistent/x", "--max-delay-us", delay]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("max-delay-us"), "{err}");
    }
    let server = Server::start(&["--max-delay-us", "10000000", "--max-batch", "1000000"]);
    // Responses never read: 2 MiB of digests each, far beyond the socket's buffer.
    let mut unread = server.raw();
    for i in 0..8 {
        unread.write_all(&empty_hash_frame(i, 65_536)).unwrap();
    }
    // Half a frame.
    let mut half = server.raw();
    let frame = signatures_frame(1, 4, 100);
    half.write_all(&frame[..frame.len() / 2]).unwrap();
    // A request that would wait 10 s for its batch.
    let mut waits = server.raw();
    waits.write_all(&signatures_frame(9, 1, 10)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    server.sigterm();
    let (took, code, err) = server.wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?} with a 5 s grace");
    // The waiting request was still answered.
    let (id, r) = read_response(&mut waits).unwrap();
    assert_eq!(id, 9);
    assert!(matches!(r, Response::SignatureVerdicts(_)), "{r:?}");
}

/// Every numeric flag is range-checked with a message naming it.
#[test]
fn serve_flags_out_of_range_are_refused() {
    for (flag, value) in [
        ("--max-batch", "0"),
        ("--max-in-flight", "0"),
        ("--max-connections", "0"),
        ("--max-frame", "1"),
        ("--max-frame", "8GiB"),
        ("--max-queue", "1"),
        ("--max-buffered", "1MiB"),
        ("--idle-timeout", "0"),
        ("--frame-timeout", "0"),
        ("--write-timeout", "0"),
        ("--shutdown-grace", "100000"),
        ("--threads", "0"),
        ("--socket-mode", "1777"),
    ] {
        let (code, err) = run(&["serve", "--listen", "unix:/nonexistent/x", flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(flag) || err.contains(value), "{flag} {value}: {err}");
    }
}

/// Remote listening needs a token; with a token every connection must
/// authenticate first: no `auth` or a wrong token is refused and closed.
#[test]
fn a_token_is_required_remotely_and_checked_first() {
    let (code, err) = run(&["serve", "--listen", "tcp:0.0.0.0:0", "--allow-remote"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--token-file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "correct horse battery staple\n").unwrap();
    let server = Server::start(&["--token-file", token_file.to_str().unwrap()]);
    // No auth: refused and closed, the request never read.
    let mut c = server.client();
    let (id, r) = c.send(&Request::Status).and_then(|_| c.recv()).unwrap();
    assert_eq!((id, error_code(&r)), (0, Some(ErrorCode::Unauthorized)));
    assert!(matches!(c.recv(), Err(ClientError::Closed)));
    // A wrong token: refused and closed.
    let mut c = server.client();
    assert!(matches!(
        c.auth(b"correct horse battery stapler"),
        Err(ClientError::Refused { code: ErrorCode::Unauthorized, .. })
    ));
    assert!(matches!(c.recv(), Err(ClientError::Closed)));
    // The right one.
    let mut c = Client::connect_with_token(&server.address(), b"correct horse battery staple").unwrap();
    assert!(matches!(c.call(&Request::Status).unwrap(), Response::Status(_)));
    let v = server.status_with_token();
    assert_eq!(v["server"]["unauthorized"].as_u64(), Some(2), "{v}");
}

impl Server {
    fn status_with_token(&self) -> serde_json::Value {
        let mut c = Client::connect_with_token(&self.address(), b"correct horse battery staple").unwrap();
        let Response::Status(json) = c.call(&Request::Status).unwrap() else { panic!() };
        serde_json::from_str(&json).unwrap()
    }
}
