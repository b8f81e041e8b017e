//! The validator's status as JSON, and freeing that string.

use crate::guard::guard;
use crate::handle::{validator, vigil_validator};
use crate::memory::c_string;
use std::ffi::{CString, c_char};

/// The validator's status as JSON; free with `vigil_string_free`.
///
/// # Safety
/// `v` is NULL or a live validator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_status_json(v: *mut vigil_validator) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let Ok(v) = (unsafe { validator(v) }) else {
            return std::ptr::null_mut();
        };
        match serde_json::to_string(&v.validator.status()) {
            Ok(json) => c_string(json).into_raw(),
            Err(_) => std::ptr::null_mut(),
        }
    })
}

/// Frees a string from `vigil_status_json`. NULL: no-op.
///
/// # Safety
/// `s` is NULL or a string from `vigil_status_json`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_string_free(s: *mut c_char) {
    guard((), || {
        if !s.is_null() {
            // SAFETY: the caller's promise: from `CString::into_raw`.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
