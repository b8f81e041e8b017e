//! `vigil_config`: the C configuration, its defaults, and its translation
//! into the engine's `ValidatorConfig`.

use crate::codes::{VIGIL_ERR_INVALID_ARGUMENT, VIGIL_RULES_STRICT, VIGIL_RULES_ZIP215};
use crate::guard::guard;
use crate::memory::array;
use std::ffi::c_int;
use std::time::Duration;
use vigil_engine::{RuleSet, ValidatorConfig};

/// The longest `max_delay_us` accepted: the engine's cap
/// (`vigil_engine::validator::MAX_DELAY`, 10 s), far beyond any useful
/// batching delay.
pub const MAX_DELAY_US: u64 = vigil_engine::validator::MAX_DELAY.as_micros() as u64;

/// `vigil_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vigil_config {
    pub chain_id: *const u8,
    pub rules: c_int,
    pub max_batch: usize,
    pub max_delay_us: u64,
    pub max_queue_bytes: usize,
    pub max_chains: usize,
}

/// The engine's rule set for a `VIGIL_RULES_*` value.
pub(crate) fn rules(value: c_int) -> Result<RuleSet, c_int> {
    match value {
        VIGIL_RULES_ZIP215 => Ok(RuleSet::Zip215),
        VIGIL_RULES_STRICT => Ok(RuleSet::Strict),
        _ => Err(VIGIL_ERR_INVALID_ARGUMENT),
    }
}

/// The defaults `vigil_config_default` fills in.
pub(crate) fn default_config() -> vigil_config {
    let d = ValidatorConfig::default();
    vigil_config {
        chain_id: std::ptr::null(),
        rules: VIGIL_RULES_ZIP215,
        max_batch: d.max_batch,
        max_delay_us: u64::try_from(d.max_delay.as_micros()).unwrap_or(u64::MAX),
        max_queue_bytes: d.max_queue_bytes,
        max_chains: d.max_chains,
    }
}

/// Fills `*cfg` with the defaults. NULL: no-op.
///
/// # Safety
/// `cfg` is NULL or valid for writing a `vigil_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_config_default(cfg: *mut vigil_config) {
    guard((), || {
        if !cfg.is_null() {
            // SAFETY: non-NULL and, by the caller's promise, writable.
            unsafe { cfg.write(default_config()) };
        }
    })
}

/// The engine's configuration for `c`, or `None` when it is invalid.
///
/// # Safety
/// `c.chain_id` is NULL or points at 32 readable bytes.
pub(crate) unsafe fn engine_config(c: &vigil_config) -> Option<ValidatorConfig> {
    let d = ValidatorConfig::default();
    let or_default = |v: usize, d: usize| if v == 0 { d } else { v };
    let chain_id = if c.chain_id.is_null() {
        None
    } else {
        // SAFETY: non-NULL; the caller's promise.
        Some(unsafe { array::<32>(c.chain_id) }.ok()?)
    };
    if c.max_delay_us > MAX_DELAY_US {
        return None;
    }
    let mut config = ValidatorConfig::default();
    config.chain_id = chain_id;
    config.rules = rules(c.rules).ok()?;
    config.max_batch = or_default(c.max_batch, d.max_batch);
    config.max_delay = if c.max_delay_us == 0 { d.max_delay } else { Duration::from_micros(c.max_delay_us) };
    config.max_queue_bytes = or_default(c.max_queue_bytes, d.max_queue_bytes);
    config.max_chains = or_default(c.max_chains, d.max_chains);
    Some(config)
}
