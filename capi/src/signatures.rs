//! `vigil_sig`: signature batches as C passes them, read into the engine's
//! `SigBatch`.

use crate::codes::{VIGIL_ERR_INVALID_ARGUMENT, VIGIL_ERR_NULL};
use crate::config::rules;
use crate::memory::{array, bytes};
use std::ffi::c_int;
use vigil_engine::{Request, SigBatch};

/// `vigil_sig`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vigil_sig {
    pub public_key: *const u8,
    pub signature: *const u8,
    pub message: *const u8,
    pub message_len: usize,
}

/// # Safety
/// As `vigil_submit_signatures`.
pub(crate) unsafe fn signatures_request(
    rules_value: c_int,
    sigs: *const vigil_sig,
    count: usize,
) -> Result<Request, c_int> {
    let rules = rules(rules_value)?;
    let sigs: &[vigil_sig] = if count == 0 {
        &[]
    } else if sigs.is_null() {
        return Err(VIGIL_ERR_NULL);
    } else if count.checked_mul(size_of::<vigil_sig>()).is_none_or(|n| n > isize::MAX as usize) {
        return Err(VIGIL_ERR_INVALID_ARGUMENT);
    } else {
        // SAFETY: non-NULL, size in range; validity is the caller's promise.
        unsafe { std::slice::from_raw_parts(sigs, count) }
    };
    let mut batch = SigBatch::new();
    for s in sigs {
        // SAFETY: the caller's promise for each field.
        let (public_key, signature, message) =
            unsafe { (array::<32>(s.public_key)?, array::<64>(s.signature)?, bytes(s.message, s.message_len)?) };
        batch.push(&public_key, message, &signature);
    }
    Ok(Request::Signatures { rules, batch })
}
