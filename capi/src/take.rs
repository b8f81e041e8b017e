//! Taking a ticket's result: poll, wait, wait with a timeout.

use crate::codes::{VIGIL_ERR_INTERNAL, VIGIL_ERR_NULL, VIGIL_OK, VIGIL_PENDING};
use crate::guard::guard;
use crate::handle::validator;
use crate::handle::vigil_validator;
use crate::result::vigil_result;
use crate::tickets::Take;
use std::ffi::c_int;
use std::time::Duration;

/// # Safety
/// `v` is NULL or a live validator; `out` is NULL or writable.
unsafe fn take(v: *mut vigil_validator, ticket: u64, how: Take, out: *mut *mut vigil_result) -> c_int {
    guard(VIGIL_ERR_INTERNAL, || {
        if out.is_null() {
            return VIGIL_ERR_NULL;
        }
        // SAFETY: non-NULL and, by the caller's promise, writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller's promise.
        let v = match unsafe { validator(v) } {
            Ok(v) => v,
            Err(code) => return code,
        };
        match v.take(ticket, how) {
            Ok(Some(verdict)) => {
                let r = Box::into_raw(Box::new(vigil_result::new(verdict)));
                // SAFETY: as above.
                unsafe { out.write(r) };
                VIGIL_OK
            }
            Ok(None) => VIGIL_PENDING,
            Err(code) => code,
        }
    })
}

/// Takes the ticket's result if ready (`VIGIL_PENDING` if not).
///
/// # Safety
/// `v` is NULL or a live validator; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_poll(v: *mut vigil_validator, ticket: u64, out: *mut *mut vigil_result) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { take(v, ticket, Take::Poll, out) }
}

/// Takes the ticket's result, waiting for it.
///
/// # Safety
/// As `vigil_poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_wait(v: *mut vigil_validator, ticket: u64, out: *mut *mut vigil_result) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { take(v, ticket, Take::Wait, out) }
}

/// Takes the ticket's result, waiting at most `timeout_us`.
///
/// # Safety
/// As `vigil_poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_wait_timeout(
    v: *mut vigil_validator,
    ticket: u64,
    timeout_us: u64,
    out: *mut *mut vigil_result,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { take(v, ticket, Take::WaitAtMost(Duration::from_micros(timeout_us)), out) }
}
