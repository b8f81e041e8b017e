//! Reading results through the `vigil_result_*` accessors, and freeing
//! them.

use crate::codes::{
    VIGIL_ERR_INTERNAL, VIGIL_ERR_INVALID_ARGUMENT, VIGIL_ERR_NULL, VIGIL_RESULT_BLOCK, VIGIL_RESULT_SIGNATURES,
};
use crate::guard::guard;
use crate::result::{Body, vigil_result};
use std::ffi::{c_char, c_int};

/// # Safety
/// `r` is NULL or a live result.
unsafe fn result<'a>(r: *const vigil_result) -> Option<&'a vigil_result> {
    // SAFETY: the caller's promise.
    unsafe { r.as_ref() }
}

/// Frees a result. NULL: no-op.
///
/// # Safety
/// `r` is NULL or a result from this library, not freed before, with no
/// reader left.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_free(r: *mut vigil_result) {
    guard((), || {
        if !r.is_null() {
            // SAFETY: the caller's promise: from `Box::into_raw`.
            drop(unsafe { Box::from_raw(r) });
        }
    })
}

/// `VIGIL_RESULT_BLOCK` or `VIGIL_RESULT_SIGNATURES`.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_kind(r: *const vigil_result) -> c_int {
    guard(VIGIL_ERR_INTERNAL, || match unsafe { result(r) } {
        None => VIGIL_ERR_NULL,
        Some(vigil_result { body: Body::Block { .. }, .. }) => VIGIL_RESULT_BLOCK,
        Some(vigil_result { body: Body::Signatures(_), .. }) => VIGIL_RESULT_SIGNATURES,
    })
}

/// A human-readable summary, owned by `r`.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_message(r: *const vigil_result) -> *const c_char {
    guard(std::ptr::null(), || unsafe { result(r) }.map_or(std::ptr::null(), |r| r.message.as_ptr()))
}

/// The number of signature verdicts.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_count(r: *const vigil_result) -> usize {
    guard(0, || match unsafe { result(r) } {
        Some(vigil_result { body: Body::Signatures(v), .. }) => v.len(),
        _ => 0,
    })
}

/// The signature verdicts (one byte each), owned by `r`.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_verdicts(r: *const vigil_result) -> *const u8 {
    guard(std::ptr::null(), || match unsafe { result(r) } {
        Some(vigil_result { body: Body::Signatures(v), .. }) if !v.is_empty() => v.as_ptr(),
        _ => std::ptr::null(),
    })
}

/// The block's `VIGIL_BLOCK_*` outcome.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_block_outcome(r: *const vigil_result) -> c_int {
    guard(VIGIL_ERR_INTERNAL, || match unsafe { result(r) } {
        None => VIGIL_ERR_NULL,
        Some(vigil_result { body: Body::Block { outcome, .. }, .. }) => *outcome,
        Some(_) => VIGIL_ERR_INVALID_ARGUMENT,
    })
}

/// A checked block's position among its chain's checked blocks.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_position(r: *const vigil_result) -> u64 {
    guard(0, || unsafe { result(r) }.and_then(vigil_result::checked).map_or(0, |c| c.position))
}

/// A checked block's height.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_height(r: *const vigil_result) -> u64 {
    guard(0, || unsafe { result(r) }.and_then(vigil_result::checked).map_or(0, |c| c.height))
}

/// A checked block's hash (32 bytes owned by `r`).
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_hash(r: *const vigil_result) -> *const u8 {
    guard(std::ptr::null(), || {
        unsafe { result(r) }.and_then(vigil_result::checked).map_or(std::ptr::null(), |c| c.hash.as_ptr())
    })
}

/// A checked block's transaction count.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_tx_count(r: *const vigil_result) -> u32 {
    guard(0, || unsafe { result(r) }.and_then(vigil_result::checked).map_or(0, |c| c.tx_count))
}

/// A checked block's number of rule failures.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_failure_count(r: *const vigil_result) -> usize {
    guard(0, || unsafe { result(r) }.and_then(vigil_result::checked).map_or(0, |c| c.failures.len()))
}

/// Failure `i`'s rule name (static), or NULL.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_failure_rule(r: *const vigil_result, i: usize) -> *const c_char {
    guard(std::ptr::null(), || {
        unsafe { result(r) }.and_then(|r| r.failure(i)).map_or(std::ptr::null(), |f| f.rule.as_ptr())
    })
}

/// Failure `i`'s transaction index, or -1.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_failure_tx(r: *const vigil_result, i: usize) -> i64 {
    guard(-1, || unsafe { result(r) }.and_then(|r| r.failure(i)).map_or(-1, |f| f.tx))
}

/// Failure `i`'s detail (owned by `r`), or NULL.
///
/// # Safety
/// `r` is NULL or a live result.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_result_failure_detail(r: *const vigil_result, i: usize) -> *const c_char {
    guard(std::ptr::null(), || {
        unsafe { result(r) }.and_then(|r| r.failure(i)).map_or(std::ptr::null(), |f| f.detail.as_ptr())
    })
}
