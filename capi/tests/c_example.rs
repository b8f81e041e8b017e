//! The C side of libvigil: compiles the C example (the repository's
//! `examples/c/example.c`) and tests/c/abi.c with the system C compiler
//! (`$CC`, else `cc`) against include/vigil.h and the libvigil cdylib this
//! `cargo test` built, runs them and checks what they print: the example's
//! verdicts on the RFC 8032 signatures and on the first block of the bundled
//! sample chain, and the constants, struct layouts and functions C sees
//! against the Rust ones.
//!
//! Without a C compiler these tests fail, unless VIGIL_SKIP_C=1 (then they
//! say loudly that they skip).
//!
//! The library: integration tests run from `target/<profile>/deps/`, which
//! is where cargo puts the cdylib when it builds this crate's library for
//! them (a path package's cdylib carries no hash in its name, so it is
//! `deps/libvigil.so`; `target/<profile>/libvigil.so` is only refreshed by
//! `cargo build`). That is the one linked and loaded (by rpath).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use vigil_engine::format::blocks;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The C compiler, or `None` when VIGIL_SKIP_C=1 and there is none.
fn compiler(test: &str) -> Option<String> {
    let cc = std::env::var("CC").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| "cc".to_owned());
    let works = Command::new(&cc).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if works.is_ok_and(|s| s.success()) {
        return Some(cc);
    }
    if std::env::var("VIGIL_SKIP_C").is_ok_and(|v| v == "1") {
        // Straight to stderr, past the test harness's capture: a skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n**********\nSKIPPING C example test: {test}: no working C compiler `{cc}` (VIGIL_SKIP_C=1)\n**********"
        );
        return None;
    }
    panic!(
        "C example test {test}: no working C compiler `{cc}` (set CC, install gcc, or set VIGIL_SKIP_C=1 to skip \
         the C tests)"
    );
}

/// The directory holding the libvigil cdylib that cargo built for this test.
fn library_dir() -> PathBuf {
    let lib = format!("{}vigil{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("target/<profile>/deps").to_path_buf();
    let profile = deps.parent().expect("target/<profile>").to_path_buf();
    for dir in [deps, profile] {
        if dir.join(&lib).is_file() {
            return dir;
        }
    }
    panic!(
        "{lib} not found next to the test binary {} nor in its parent directory; build it with \
         `cargo build -p vigil-capi` (same profile) and rerun",
        exe.display()
    );
}

/// Compiles `source` into `out`, with every warning an error.
fn compile(cc: &str, source: &Path, out: &Path) {
    let include = Path::new(MANIFEST_DIR).join("include");
    let lib_dir = library_dir();
    let mut cmd = Command::new(cc);
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(&include)
        .arg(source)
        .arg("-o")
        .arg(out)
        .arg("-L")
        .arg(&lib_dir)
        .arg("-lvigil")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    let output = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "compiling {} failed: {cmd:?}\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `exe args`, killing it after a minute.
fn run(exe: &Path, args: &[&Path]) -> Output {
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not finish within a minute", exe.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// The first block of the first file of the bundled sample chain.
fn sample_block() -> Vec<u8> {
    let dir = Path::new(MANIFEST_DIR).join("../datasets/sample");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vblk"))
        .collect();
    files.sort();
    let data = std::fs::read(&files[0]).unwrap();
    let (offset, block) = blocks(&data).next().expect("a block");
    let block = block.expect("a well-formed first block");
    data[offset as usize..offset as usize + block.len()].to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles the example (the repository's `examples/c/example.c`) into `dir`.
fn example(cc: &str, dir: &Path) -> PathBuf {
    let exe = dir.join("example");
    compile(cc, &Path::new(MANIFEST_DIR).join("../examples/c/example.c"), &exe);
    exe
}

fn stdout_of(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("--- stdout\n{stdout}--- stderr\n{}---", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The JSON after "status: ".
fn status(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().find_map(|l| l.strip_prefix("status: ")).expect("a status line");
    serde_json::from_str(line).expect("status is JSON")
}

#[test]
fn c_example_checks_signatures_and_a_block() {
    let Some(cc) = compiler("c_example_checks_signatures_and_a_block") else { return };
    let dir = tempfile::tempdir().unwrap();
    let exe = example(&cc, dir.path());
    let block = sample_block();
    let path = dir.path().join("block.vblk");
    std::fs::write(&path, &block).unwrap();

    let output = run(&exe, &[&path]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "the example failed");

    let (view, _) = vigil_engine::BlockView::parse(&block, 0).unwrap();
    let hash = vigil_engine::hash::block_hash(view.header);
    let lines: Vec<&str> = stdout.lines().collect();
    for want in [
        "signature 0: valid".to_owned(),
        "signature 1: invalid".to_owned(),
        "signatures: 2 signatures, 1 valid".to_owned(),
        "taking it again: VIGIL_ERR_UNKNOWN_TICKET".to_owned(),
        format!("block: valid height=0 position=0 txs={} hash={}", view.header.tx_count(), hex(&hash)),
        format!("block message: valid block at height 0 ({} transactions)", view.header.tx_count()),
        "result: OK".to_owned(),
    ] {
        assert!(lines.contains(&want.as_str()), "missing line {want:?}");
    }
    assert!(!stdout.contains("failure:"));
    let status = status(&stdout);
    assert_eq!(status["requests"], 2);
    assert_eq!(status["signatures"], 2);
    assert_eq!(status["invalid_signatures"], 1);
    assert_eq!(status["blocks"], 1);
    assert_eq!(status["invalid_blocks"], 0);
    assert_eq!(lines.last(), Some(&"result: OK"));
}

#[test]
fn c_example_without_a_block_and_with_a_broken_one() {
    let Some(cc) = compiler("c_example_without_a_block_and_with_a_broken_one") else { return };
    let dir = tempfile::tempdir().unwrap();
    let exe = example(&cc, dir.path());

    // Signatures only.
    let output = run(&exe, &[]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("signature 0: valid\nsignature 1: invalid\n"));
    assert!(!stdout.contains("block:") && !stdout.contains("block message"));
    assert_eq!(status(&stdout)["requests"], 1);

    // A block whose last transaction's signature is corrupt: the example
    // reports it and fails.
    let mut block = sample_block();
    *block.last_mut().unwrap() ^= 0x40;
    let path = dir.path().join("broken.vblk");
    std::fs::write(&path, &block).unwrap();
    let output = run(&exe, &[&path]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "a broken block must fail the example");
    assert!(stdout.contains("block: invalid height=0"));
    assert!(stdout.contains("  failure: tx_signature (tx "), "the failure is listed");
    assert!(stdout.ends_with("result: FAIL\n"));

    // Not a block at all.
    std::fs::write(&path, b"not a block").unwrap();
    let output = run(&exe, &[&path]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("block: not checked (outcome 2)"));
    assert!(stdout.contains("block message: malformed block"));
}

/// What C sees of vigil.h, against the Rust definitions.
#[test]
fn c_header_matches_the_rust_abi() {
    let Some(cc) = compiler("c_header_matches_the_rust_abi") else { return };
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("abi");
    compile(&cc, &Path::new(MANIFEST_DIR).join("tests/c/abi.c"), &exe);
    let output = run(&exe, &[]);
    let stdout = stdout_of(&output);
    assert!(output.status.success());

    use std::mem::{offset_of, size_of, size_of_val};
    use vigil::*;
    let c = vigil_config {
        chain_id: std::ptr::null(),
        rules: 0,
        max_batch: 0,
        max_delay_us: 0,
        max_queue_bytes: 0,
        max_chains: 0,
    };
    let s = vigil_sig {
        public_key: std::ptr::null(),
        signature: std::ptr::null(),
        message: std::ptr::null(),
        message_len: 0,
    };
    let field = |offset: usize, size: usize| format!("{offset} {size}");
    let want: Vec<(String, String)> = [
        ("const VIGIL_OK", VIGIL_OK.to_string()),
        ("const VIGIL_PENDING", VIGIL_PENDING.to_string()),
        ("const VIGIL_ERR_NULL", VIGIL_ERR_NULL.to_string()),
        ("const VIGIL_ERR_INVALID_ARGUMENT", VIGIL_ERR_INVALID_ARGUMENT.to_string()),
        ("const VIGIL_ERR_OVERLOADED", VIGIL_ERR_OVERLOADED.to_string()),
        ("const VIGIL_ERR_CLOSED", VIGIL_ERR_CLOSED.to_string()),
        ("const VIGIL_ERR_UNKNOWN_TICKET", VIGIL_ERR_UNKNOWN_TICKET.to_string()),
        ("const VIGIL_ERR_INTERNAL", VIGIL_ERR_INTERNAL.to_string()),
        ("const VIGIL_RULES_ZIP215", VIGIL_RULES_ZIP215.to_string()),
        ("const VIGIL_RULES_STRICT", VIGIL_RULES_STRICT.to_string()),
        ("const VIGIL_RESULT_BLOCK", VIGIL_RESULT_BLOCK.to_string()),
        ("const VIGIL_RESULT_SIGNATURES", VIGIL_RESULT_SIGNATURES.to_string()),
        ("const VIGIL_BLOCK_VALID", VIGIL_BLOCK_VALID.to_string()),
        ("const VIGIL_BLOCK_INVALID", VIGIL_BLOCK_INVALID.to_string()),
        ("const VIGIL_BLOCK_MALFORMED", VIGIL_BLOCK_MALFORMED.to_string()),
        ("const VIGIL_BLOCK_EXTRA_BYTES", VIGIL_BLOCK_EXTRA_BYTES.to_string()),
        ("const VIGIL_BLOCK_TOO_MANY_CHAINS", VIGIL_BLOCK_TOO_MANY_CHAINS.to_string()),
        ("size vigil_config", field(size_of::<vigil_config>(), 0)),
        ("field vigil_config.chain_id", field(offset_of!(vigil_config, chain_id), size_of_val(&c.chain_id))),
        ("field vigil_config.rules", field(offset_of!(vigil_config, rules), size_of_val(&c.rules))),
        ("field vigil_config.max_batch", field(offset_of!(vigil_config, max_batch), size_of_val(&c.max_batch))),
        (
            "field vigil_config.max_delay_us",
            field(offset_of!(vigil_config, max_delay_us), size_of_val(&c.max_delay_us)),
        ),
        (
            "field vigil_config.max_queue_bytes",
            field(offset_of!(vigil_config, max_queue_bytes), size_of_val(&c.max_queue_bytes)),
        ),
        ("field vigil_config.max_chains", field(offset_of!(vigil_config, max_chains), size_of_val(&c.max_chains))),
        ("size vigil_sig", field(size_of::<vigil_sig>(), 0)),
        ("field vigil_sig.public_key", field(offset_of!(vigil_sig, public_key), size_of_val(&s.public_key))),
        ("field vigil_sig.signature", field(offset_of!(vigil_sig, signature), size_of_val(&s.signature))),
        ("field vigil_sig.message", field(offset_of!(vigil_sig, message), size_of_val(&s.message))),
        ("field vigil_sig.message_len", field(offset_of!(vigil_sig, message_len), size_of_val(&s.message_len))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let got: Vec<(String, String)> = stdout
        .lines()
        .filter(|l| !l.starts_with("function "))
        .map(|l| {
            let (kind, rest) = l.split_once(' ').unwrap();
            let (name, value) = rest.split_once(' ').unwrap();
            (format!("{kind} {name}"), value.to_owned())
        })
        .collect();
    assert_eq!(got, want);

    // abi.c takes the address of every function vigil.h declares (so the
    // link proved libvigil has them all), and those are exactly the
    // functions the header declares and the crate exports.
    let linked: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("function "))
        .map(|l| l.strip_suffix(" 1").expect("a non-NULL address").to_owned())
        .collect();
    assert_eq!(linked, header_functions());
    assert_eq!(linked, rust_exports());
}

/// The functions vigil.h declares: identifiers `vigil_*` followed by `(`,
/// outside comments.
fn header_functions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("include/vigil.h")).unwrap();
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        rest = &rest[start + 2..];
        rest = &rest[rest.find("*/").expect("closed comment") + 2..];
    }
    code.push_str(rest);
    let code: String = code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("vigil_") {
        let ident: String = code[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if code[i + ident.len()..].starts_with('(') {
            out.insert(ident);
        }
    }
    out
}

/// The functions the crate's sources (src/ and its modules) export:
/// `extern "C" fn NAME`.
fn rust_exports() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![Path::new(MANIFEST_DIR).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, m) in text.match_indices("extern \"C\" fn ") {
                let rest = &text[i + m.len()..];
                let name = rest[..rest.find('(').unwrap()].to_owned();
                assert!(out.insert(name.clone()), "{name} is defined twice");
            }
        }
    }
    out
}

/// Needs no C compiler: the header and the crate declare the same functions.
#[test]
fn header_declares_every_export() {
    let header = header_functions();
    assert!(header.len() > 20, "{header:?}");
    assert_eq!(header, rust_exports());
}
