//! Reading C memory (NULL-checked, length-checked) and making C strings.

use crate::codes::{VIGIL_ERR_INVALID_ARGUMENT, VIGIL_ERR_NULL};
use std::ffi::{CString, c_int};

/// `len` bytes at `ptr`; `ptr` may be NULL when `len` is 0.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], c_int> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(VIGIL_ERR_NULL);
    }
    if len > isize::MAX as usize {
        return Err(VIGIL_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, length in range; validity is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `N` bytes at a pointer that must not be NULL.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `N` bytes.
pub(crate) unsafe fn array<const N: usize>(ptr: *const u8) -> Result<[u8; N], c_int> {
    if ptr.is_null() {
        return Err(VIGIL_ERR_NULL);
    }
    // SAFETY: non-NULL; `[u8; N]` has alignment 1; validity is the caller's promise.
    Ok(unsafe { ptr.cast::<[u8; N]>().read() })
}

/// `s` as a C string (a NUL inside, which no message has, is dropped).
pub(crate) fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut v = e.into_vec();
        v.retain(|&b| b != 0);
        CString::new(v).expect("NULs removed")
    })
}
