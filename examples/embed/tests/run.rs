//! Runs the example binary: on its generated demo chain it says VALID; on a
//! chain with injected faults it names each fault where it is, and fails.

use std::process::{Command, Output};
use vigil_datasets::{Fault, GenConfig, generate};
use vigil_engine::Rule;

fn run(args: &[&std::path::Path]) -> (Output, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-example-embed")).args(args).output().expect("run the example");
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 output");
    eprintln!("--- stdout\n{stdout}--- stderr\n{}---", String::from_utf8_lossy(&output.stderr));
    (output, stdout)
}

#[test]
fn the_demo_chain_is_valid() {
    let (output, stdout) = run(&[]);
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 9, "a line per block, then the chain's");
    for (height, line) in lines[..8].iter().enumerate() {
        assert!(line.contains(&format!(": VALID height {height} (")), "{line}");
    }
    assert_eq!(lines[8], "chain: VALID, 8 blocks");
}

#[test]
fn a_faulty_chain_names_its_faults() {
    let dir = tempfile::tempdir().unwrap();
    let faults = vec![Fault { rule: Rule::Malformed, height: 2 }, Fault { rule: Rule::TxSignature, height: 5 }];
    let config = GenConfig { seed: 7, blocks: 8, txs_per_block: 1..=16, faults, ..GenConfig::default() };
    let manifest = generate(dir.path(), &config, &|_| {}).unwrap();
    let tx = manifest.faults[1].tx.expect("a per-transaction fault");

    let (output, stdout) = run(&[dir.path()]);
    assert_eq!(output.status.code(), Some(1), "an invalid chain fails the example");
    let lines: Vec<&str> = stdout.lines().collect();
    // The malformed copy of block 2 ends its file: reported, not applied.
    let malformed: Vec<&&str> = lines.iter().filter(|l| l.contains(": MALFORMED ")).collect();
    assert_eq!(malformed.len(), 1, "{malformed:?}");
    // Block 5 breaks tx_signature in transaction `tx`, and nothing else.
    let at = lines.iter().position(|l| l.contains(": INVALID height 5")).expect("block 5 is invalid");
    assert!(lines[at + 1].starts_with(&format!("  tx_signature (tx {tx}): ")), "{}", lines[at + 1]);
    assert!(!lines[at + 2].starts_with("  "), "one failure only: {}", lines[at + 2]);
    // Every other block is valid, heights in order.
    let valid: Vec<&&str> = lines.iter().filter(|l| l.contains(": VALID height ")).collect();
    assert_eq!(valid.len(), 7, "{valid:?}");
    assert_eq!(lines.last(), Some(&"chain: INVALID, 2 of 9 blocks"));
}

#[test]
fn a_missing_chain_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout) = run(&[&dir.path().join("nothing here")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout.is_empty());
}
