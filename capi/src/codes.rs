//! Return codes and the other constants of vigil.h, and `vigil_error_name`.

use std::ffi::{c_char, c_int};

pub const VIGIL_OK: c_int = 0;
pub const VIGIL_PENDING: c_int = 1;
pub const VIGIL_ERR_NULL: c_int = -1;
pub const VIGIL_ERR_INVALID_ARGUMENT: c_int = -2;
pub const VIGIL_ERR_OVERLOADED: c_int = -3;
pub const VIGIL_ERR_CLOSED: c_int = -4;
pub const VIGIL_ERR_UNKNOWN_TICKET: c_int = -5;
pub const VIGIL_ERR_INTERNAL: c_int = -6;

pub const VIGIL_RULES_ZIP215: c_int = 0;
pub const VIGIL_RULES_STRICT: c_int = 1;

pub const VIGIL_RESULT_BLOCK: c_int = 1;
pub const VIGIL_RESULT_SIGNATURES: c_int = 2;

pub const VIGIL_BLOCK_VALID: c_int = 0;
pub const VIGIL_BLOCK_INVALID: c_int = 1;
pub const VIGIL_BLOCK_MALFORMED: c_int = 2;
pub const VIGIL_BLOCK_EXTRA_BYTES: c_int = 3;
pub const VIGIL_BLOCK_TOO_MANY_CHAINS: c_int = 4;

/// The name of a return code, or "unknown". Never NULL; static.
#[unsafe(no_mangle)]
pub extern "C" fn vigil_error_name(code: c_int) -> *const c_char {
    let name = match code {
        VIGIL_OK => c"VIGIL_OK",
        VIGIL_PENDING => c"VIGIL_PENDING",
        VIGIL_ERR_NULL => c"VIGIL_ERR_NULL",
        VIGIL_ERR_INVALID_ARGUMENT => c"VIGIL_ERR_INVALID_ARGUMENT",
        VIGIL_ERR_OVERLOADED => c"VIGIL_ERR_OVERLOADED",
        VIGIL_ERR_CLOSED => c"VIGIL_ERR_CLOSED",
        VIGIL_ERR_UNKNOWN_TICKET => c"VIGIL_ERR_UNKNOWN_TICKET",
        VIGIL_ERR_INTERNAL => c"VIGIL_ERR_INTERNAL",
        _ => c"unknown",
    };
    name.as_ptr()
}
