//! Submitting blocks and signature batches: each call copies its input
//! into a request and hands back a ticket.

use crate::codes::{VIGIL_ERR_INTERNAL, VIGIL_ERR_NULL, VIGIL_OK};
use crate::guard::guard;
use crate::handle::{validator, vigil_validator};
use crate::memory::bytes;
use crate::signatures::{signatures_request, vigil_sig};
use std::ffi::c_int;
use vigil_engine::Request;

/// Submits what `request` builds, storing the ticket (0 on error).
///
/// # Safety
/// `v` and `ticket_out` are NULL or valid; `request` reads only valid memory.
unsafe fn submit(
    v: *mut vigil_validator,
    ticket_out: *mut u64,
    wait: bool,
    request: impl FnOnce() -> Result<Request, c_int>,
) -> c_int {
    guard(VIGIL_ERR_INTERNAL, || {
        if ticket_out.is_null() {
            return VIGIL_ERR_NULL;
        }
        // SAFETY: non-NULL and, by the caller's promise, writable.
        unsafe { ticket_out.write(0) };
        // SAFETY: the caller's promise.
        let result = unsafe { validator(v) }.and_then(|v| v.submit(request()?, wait));
        match result {
            Ok(ticket) => {
                // SAFETY: as above.
                unsafe { ticket_out.write(ticket) };
                VIGIL_OK
            }
            Err(code) => code,
        }
    })
}

/// Queues one block, waiting for room.
///
/// # Safety
/// `v` is NULL or a live validator; `bytes` is NULL or valid for `len`
/// bytes; `ticket_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_submit_block(
    v: *mut vigil_validator,
    bytes: *const u8,
    len: usize,
    ticket_out: *mut u64,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit(v, ticket_out, true, || Ok(Request::Block(self::bytes(bytes, len)?.to_vec()))) }
}

/// Queues one block, or refuses with `VIGIL_ERR_OVERLOADED`.
///
/// # Safety
/// As `vigil_submit_block`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_try_submit_block(
    v: *mut vigil_validator,
    bytes: *const u8,
    len: usize,
    ticket_out: *mut u64,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit(v, ticket_out, false, || Ok(Request::Block(self::bytes(bytes, len)?.to_vec()))) }
}

/// Queues signatures, waiting for room.
///
/// # Safety
/// `v` is NULL or a live validator; `sigs` is NULL or valid for `count`
/// entries, each with NULL or valid pointers (32-byte key, 64-byte
/// signature, `message_len`-byte message); `ticket_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_submit_signatures(
    v: *mut vigil_validator,
    rules: c_int,
    sigs: *const vigil_sig,
    count: usize,
    ticket_out: *mut u64,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit(v, ticket_out, true, || signatures_request(rules, sigs, count)) }
}

/// Queues signatures, or refuses with `VIGIL_ERR_OVERLOADED`.
///
/// # Safety
/// As `vigil_submit_signatures`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigil_try_submit_signatures(
    v: *mut vigil_validator,
    rules: c_int,
    sigs: *const vigil_sig,
    count: usize,
    ticket_out: *mut u64,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit(v, ticket_out, false, || signatures_request(rules, sigs, count)) }
}
