//! `vigil_result`: a verdict converted once into what C reads.

use crate::codes::{
    VIGIL_BLOCK_EXTRA_BYTES, VIGIL_BLOCK_INVALID, VIGIL_BLOCK_MALFORMED, VIGIL_BLOCK_TOO_MANY_CHAINS, VIGIL_BLOCK_VALID,
};
use crate::memory::c_string;
use std::ffi::{CStr, CString, c_int};
use std::sync::OnceLock;
use vigil_engine::{BlockVerdict, Rule, Verdict};

/// `vigil_result`: a verdict converted once into what C reads.
#[derive(Debug)]
pub struct vigil_result {
    pub(crate) message: CString,
    pub(crate) body: Body,
}

#[derive(Debug)]
pub(crate) enum Body {
    /// One byte per signature, 1 = verifies.
    Signatures(Vec<u8>),
    /// `checked` is set for VALID and INVALID outcomes.
    Block { outcome: c_int, checked: Option<Checked> },
}

#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) position: u64,
    pub(crate) height: u64,
    pub(crate) hash: [u8; 32],
    pub(crate) tx_count: u32,
    pub(crate) failures: Vec<CFailure>,
}

#[derive(Debug)]
pub(crate) struct CFailure {
    pub(crate) rule: &'static CStr,
    pub(crate) tx: i64,
    pub(crate) detail: CString,
}

/// The rule's FORMAT.md name (`Rule::name`) as a static C string.
pub(crate) fn rule_name(rule: Rule) -> &'static CStr {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    let names = NAMES.get_or_init(|| Rule::ALL.iter().map(|r| c_string(r.name().to_owned())).collect());
    match Rule::ALL.iter().position(|r| *r == rule) {
        Some(i) => &names[i],
        None => c"unknown",
    }
}

/// `bytes` in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl vigil_result {
    pub(crate) fn new(verdict: Verdict) -> vigil_result {
        match verdict {
            Verdict::Signatures(v) => {
                let valid = v.iter().filter(|ok| **ok).count();
                vigil_result {
                    message: c_string(format!("{} signatures, {valid} valid", v.len())),
                    body: Body::Signatures(v.into_iter().map(u8::from).collect()),
                }
            }
            Verdict::Block(BlockVerdict::Checked(report)) => {
                let message = if report.valid() {
                    format!("valid block at height {} ({} transactions)", report.height, report.tx_count)
                } else {
                    let failures: Vec<String> = report
                        .failures
                        .iter()
                        .map(|f| match f.tx {
                            Some(tx) => format!("{} (tx {tx}): {}", f.rule.name(), f.detail),
                            None => format!("{}: {}", f.rule.name(), f.detail),
                        })
                        .collect();
                    format!("invalid block at height {}: {}", report.height, failures.join("; "))
                };
                let failures = report
                    .failures
                    .into_iter()
                    .map(|f| CFailure {
                        rule: rule_name(f.rule),
                        tx: f.tx.map_or(-1, i64::from),
                        detail: c_string(f.detail),
                    })
                    .collect::<Vec<_>>();
                vigil_result {
                    message: c_string(message),
                    body: Body::Block {
                        outcome: if failures.is_empty() { VIGIL_BLOCK_VALID } else { VIGIL_BLOCK_INVALID },
                        checked: Some(Checked {
                            position: report.position,
                            height: report.height,
                            hash: report.hash,
                            tx_count: report.tx_count,
                            failures,
                        }),
                    },
                }
            }
            Verdict::Block(BlockVerdict::Malformed { offset, reason }) => vigil_result {
                message: c_string(match offset {
                    0 => format!("malformed block: {reason}"),
                    _ => format!("malformed block (at byte {offset}): {reason}"),
                }),
                body: Body::Block { outcome: VIGIL_BLOCK_MALFORMED, checked: None },
            },
            Verdict::Block(BlockVerdict::ExtraBytes { block_len, total }) => vigil_result {
                message: c_string(format!(
                    "a {block_len}-byte block followed by {} more bytes: a submission is exactly one block",
                    total.saturating_sub(block_len)
                )),
                body: Body::Block { outcome: VIGIL_BLOCK_EXTRA_BYTES, checked: None },
            },
            Verdict::Block(BlockVerdict::TooManyChains { chain_id }) => vigil_result {
                message: c_string(format!("chain {} would be one more than max_chains", hex(&chain_id))),
                body: Body::Block { outcome: VIGIL_BLOCK_TOO_MANY_CHAINS, checked: None },
            },
        }
    }

    pub(crate) fn checked(&self) -> Option<&Checked> {
        match &self.body {
            Body::Block { checked, .. } => checked.as_ref(),
            Body::Signatures(_) => None,
        }
    }

    pub(crate) fn failure(&self, i: usize) -> Option<&CFailure> {
        self.checked()?.failures.get(i)
    }
}
