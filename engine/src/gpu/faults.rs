//! Failures a test injects into a [`GpuSigner`](super::GpuSigner): a call
//! that fails, a device lost for good, a driver that miscomputes. They
//! check, on any adapter (lavapipe included), that a GPU failure never
//! changes a verdict and that a wrong adapter is refused. The engine reads
//! no environment variable: a caller (the CLI's `VIGIL_GPU_FAULT`, a test)
//! parses one with [`GpuFaults::from_str`] and passes it in
//! [`GpuOptions`](super::GpuOptions).

use super::ed25519::Verdicts;
use std::fmt;
use std::str::FromStr;

/// Failures to inject into a [`GpuSigner`](super::GpuSigner)'s signature
/// calls (numbered from 0; the self-test run when it opens is not a call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuFaults {
    /// These calls fail with an error (the device stays usable).
    pub fail_calls: Vec<u64>,
    /// From this call on the device is lost: that call and every later one
    /// fail, as after a driver reset.
    pub lost_at: Option<u64>,
    /// The device's verdicts are wrong for some signatures (a driver that
    /// miscompiles the kernel): the self-test refuses the adapter.
    pub wrong_verdicts: bool,
}

impl GpuFaults {
    /// No failure injected.
    pub fn is_none(&self) -> bool {
        *self == GpuFaults::default()
    }
}

/// A fault list that does not parse (it holds the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (expected e.g. `fail:1,3`, `lost:5`, `wrong`, or several joined by `+`)")]
pub struct ParseFaultsError(String);

impl FromStr for GpuFaults {
    type Err = ParseFaultsError;

    /// `fail:N[,N…]`, `lost:N` and `wrong`, joined by `+`:
    /// `fail:0,2+lost:4`. Empty: none.
    fn from_str(s: &str) -> Result<Self, ParseFaultsError> {
        let mut faults = GpuFaults::default();
        let call = |n: &str| n.trim().parse::<u64>().map_err(|e| ParseFaultsError(format!("call number {n:?}: {e}")));
        for part in s.split('+').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once(':') {
                Some(("fail", list)) => {
                    for n in list.split(',') {
                        faults.fail_calls.push(call(n)?);
                    }
                }
                Some(("lost", n)) => faults.lost_at = Some(call(n)?),
                None if part == "wrong" => faults.wrong_verdicts = true,
                _ => return Err(ParseFaultsError(format!("unknown fault {part:?}"))),
            }
        }
        Ok(faults)
    }
}

impl fmt::Display for GpuFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.fail_calls.is_empty() {
            let calls: Vec<String> = self.fail_calls.iter().map(u64::to_string).collect();
            parts.push(format!("fail:{}", calls.join(",")));
        }
        if let Some(n) = self.lost_at {
            parts.push(format!("lost:{n}"));
        }
        if self.wrong_verdicts {
            parts.push("wrong".into());
        }
        f.write_str(&parts.join("+"))
    }
}

/// What a miscomputing driver does to a call's verdicts: one signature in
/// 16 gets the opposite zip215 verdict, one in 16 (another) the opposite
/// strict verdict.
pub(crate) fn miscompute(verdicts: &mut [Verdicts]) {
    for (i, v) in verdicts.iter_mut().enumerate() {
        match i % 16 {
            5 => v.zip215 = !v.zip215,
            11 => v.strict = !v.strict,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_print_back() {
        let f: GpuFaults = "fail:0,2+lost:4+wrong".parse().unwrap();
        assert_eq!(f.fail_calls, [0, 2]);
        assert_eq!(f.lost_at, Some(4));
        assert!(f.wrong_verdicts);
        assert_eq!(f.to_string(), "fail:0,2+lost:4+wrong");
        assert!("".parse::<GpuFaults>().unwrap().is_none());
        for bad in ["fail:", "fail:x", "lost:-1", "melt", "wrong:1"] {
            assert!(bad.parse::<GpuFaults>().is_err(), "{bad}");
        }
    }
}
