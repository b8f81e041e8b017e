//! `vigil_validator`: the handle C holds, and its lifetime (new, close,
//! free).

use crate::codes::{VIGIL_ERR_INTERNAL, VIGIL_ERR_NULL, VIGIL_OK};
use crate::config::{default_config, engine_config, vigil_config};
use crate::guard::guard;
use crate::tickets::Slot;
use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use vigil_engine::Validator;

/// `vigil_validator`: the validator and its tickets.
pub struct vigil_validator {
    pub(crate) validator: Validator,
    pub(crate) tickets: Mutex<HashMap<u64, Arc<Slot>>>,
    /// The last ticket handed out; tickets start at 1 and are never reused.
    pub(crate) last_ticket: AtomicU64,
}

/// # Safety
/// `v` is NULL or a live validator from `vigil_validator_new`.
pub(crate) unsafe fn validator<'a>(v: *mut vigil_validator) -> Result<&'a vigil_validator, c_int> {
    // SAFETY: the caller's promise.
    unsafe { v.as_ref() }.ok_or(VIGIL_ERR_NULL)
}

/// Starts a validator (`cfg` NULL: defaults); NULL on a bad configuration.
///
/// # Safety
/// `cfg` is NULL or points at a valid `vigil_config` whose `chain_id` is
/// NULL or points at 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_validator_new(cfg: *const vigil_config) -> *mut vigil_validator {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let c = unsafe { cfg.as_ref() }.copied().unwrap_or_else(default_config);
        // SAFETY: the caller's promise.
        let Some(config) = (unsafe { engine_config(&c) }) else {
            return std::ptr::null_mut();
        };
        // `Validator::new` panics if the thread cannot start: NULL then.
        let v = vigil_validator {
            validator: Validator::new(config),
            tickets: Mutex::new(HashMap::new()),
            last_ticket: AtomicU64::new(0),
        };
        Box::into_raw(Box::new(v))
    })
}

/// Stops taking submissions; queued ones are still answered.
///
/// # Safety
/// `v` is NULL or a live validator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_close(v: *mut vigil_validator) -> c_int {
    guard(VIGIL_ERR_INTERNAL, || {
        // SAFETY: the caller's promise.
        match unsafe { validator(v) } {
            Ok(v) => {
                v.validator.close();
                VIGIL_OK
            }
            Err(code) => code,
        }
    })
}

/// Closes, answers everything queued, joins the worker and frees `v` with
/// its untaken tickets. NULL: no-op.
///
/// # Safety
/// `v` is NULL or a live validator from `vigil_validator_new`, not freed
/// before and not in use by any other call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_validator_free(v: *mut vigil_validator) {
    guard((), || {
        if !v.is_null() {
            // SAFETY: the caller's promise: ours, live, unshared.
            drop(unsafe { Box::from_raw(v) });
        }
    })
}
