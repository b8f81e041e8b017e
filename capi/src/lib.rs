//! C ABI over the engine's `Validator` (see include/vigil.h, which documents
//! every function; the two must match exactly).
//!
//! Every entry point runs its body under `catch_unwind`, so no panic
//! crosses into C, and checks every pointer it is given for NULL before
//! use. Tickets are per validator: a map from ticket to a [`Slot`] holding
//! the [`Pending`] answer, each slot with its own lock and condition
//! variable, so that one thread can wait on a ticket (without holding any
//! lock) while others submit, poll and wait on theirs or on the same one.

#![allow(non_camel_case_types)] // the C names

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use vigil_engine::{
    BlockVerdict, Pending, Request, Rule, RuleSet, SigBatch, SubmitError, Validator, ValidatorConfig, Verdict,
};

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

/// `vigil_sig`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vigil_sig {
    pub public_key: *const u8,
    pub signature: *const u8,
    pub message: *const u8,
    pub message_len: usize,
}

/// Where a ticket's answer is.
enum State {
    /// In its channel, which no thread is waiting on.
    Idle(Pending),
    /// A thread is waiting on the channel, holding the `Pending` outside the
    /// lock: pollers answer PENDING, other waiters wait for it to return.
    Waited,
    /// Taken (the moment before the ticket leaves the map).
    Taken,
}

/// A ticket: its state, and a condition variable signalled whenever a
/// waiting thread gives the channel back (`Idle`) or takes the answer.
struct Slot {
    state: Mutex<State>,
    changed: Condvar,
}

/// `vigil_validator`: the validator and its tickets.
pub struct vigil_validator {
    validator: Validator,
    tickets: Mutex<HashMap<u64, Arc<Slot>>>,
    /// The last ticket handed out; tickets start at 1 and are never reused.
    last_ticket: AtomicU64,
}

/// `vigil_result`: a verdict converted once into what C reads.
#[derive(Debug)]
pub struct vigil_result {
    message: CString,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// One byte per signature, 1 = verifies.
    Signatures(Vec<u8>),
    /// `checked` is set for VALID and INVALID outcomes.
    Block { outcome: c_int, checked: Option<Checked> },
}

#[derive(Debug)]
struct Checked {
    position: u64,
    height: u64,
    hash: [u8; 32],
    tx_count: u32,
    failures: Vec<CFailure>,
}

#[derive(Debug)]
struct CFailure {
    rule: &'static CStr,
    tx: i64,
    detail: CString,
}

// ---- Helpers -------------------------------------------------------------

/// Runs `f`, turning a panic into `on_panic`.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            // Dropping the payload could itself panic; leak it instead.
            std::mem::forget(payload);
            on_panic
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `len` bytes at `ptr`; `ptr` may be NULL when `len` is 0.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], c_int> {
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
unsafe fn array<const N: usize>(ptr: *const u8) -> Result<[u8; N], c_int> {
    if ptr.is_null() {
        return Err(VIGIL_ERR_NULL);
    }
    // SAFETY: non-NULL; `[u8; N]` has alignment 1; validity is the caller's promise.
    Ok(unsafe { ptr.cast::<[u8; N]>().read() })
}

fn rules(value: c_int) -> Result<RuleSet, c_int> {
    match value {
        VIGIL_RULES_ZIP215 => Ok(RuleSet::Zip215),
        VIGIL_RULES_STRICT => Ok(RuleSet::Strict),
        _ => Err(VIGIL_ERR_INVALID_ARGUMENT),
    }
}

/// `s` as a C string (a NUL inside, which no message has, is dropped).
fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut v = e.into_vec();
        v.retain(|&b| b != 0);
        CString::new(v).expect("NULs removed")
    })
}

/// The rule's FORMAT.md name (`Rule::name`) as a static C string.
fn rule_name(rule: Rule) -> &'static CStr {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    let names = NAMES.get_or_init(|| Rule::ALL.iter().map(|r| c_string(r.name().to_owned())).collect());
    match Rule::ALL.iter().position(|r| *r == rule) {
        Some(i) => &names[i],
        None => c"unknown",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl vigil_result {
    fn new(verdict: Verdict) -> vigil_result {
        match verdict {
            Verdict::Signatures(v) => {
                let valid = v.iter().filter(|ok| **ok).count();
                vigil_result {
                    message: c_string(format!("{} signatures, {valid} valid", v.len())),
                    body: Body::Signatures(v.into_iter().map(u8::from).collect()),
                }
            }
            Verdict::Block(BlockVerdict::Checked(report)) => {
                let message = if report.valid() {
                    format!("valid block at height {} ({} transactions)", report.height, report.tx_count)
                } else {
                    let failures: Vec<String> = report
                        .failures
                        .iter()
                        .map(|f| match f.tx {
                            Some(tx) => format!("{} (tx {tx}): {}", f.rule.name(), f.detail),
                            None => format!("{}: {}", f.rule.name(), f.detail),
                        })
                        .collect();
                    format!("invalid block at height {}: {}", report.height, failures.join("; "))
                };
                let failures = report
                    .failures
                    .into_iter()
                    .map(|f| CFailure {
                        rule: rule_name(f.rule),
                        tx: f.tx.map_or(-1, i64::from),
                        detail: c_string(f.detail),
                    })
                    .collect::<Vec<_>>();
                vigil_result {
                    message: c_string(message),
                    body: Body::Block {
                        outcome: if failures.is_empty() { VIGIL_BLOCK_VALID } else { VIGIL_BLOCK_INVALID },
                        checked: Some(Checked {
                            position: report.position,
                            height: report.height,
                            hash: report.hash,
                            tx_count: report.tx_count,
                            failures,
                        }),
                    },
                }
            }
            Verdict::Block(BlockVerdict::Malformed { offset, reason }) => vigil_result {
                message: c_string(match offset {
                    0 => format!("malformed block: {reason}"),
                    _ => format!("malformed block (at byte {offset}): {reason}"),
                }),
                body: Body::Block { outcome: VIGIL_BLOCK_MALFORMED, checked: None },
            },
            Verdict::Block(BlockVerdict::ExtraBytes { block_len, total }) => vigil_result {
                message: c_string(format!(
                    "a {block_len}-byte block followed by {} more bytes: a submission is exactly one block",
                    total.saturating_sub(block_len)
                )),
                body: Body::Block { outcome: VIGIL_BLOCK_EXTRA_BYTES, checked: None },
            },
            Verdict::Block(BlockVerdict::TooManyChains { chain_id }) => vigil_result {
                message: c_string(format!("chain {} would be one more than max_chains", hex(&chain_id))),
                body: Body::Block { outcome: VIGIL_BLOCK_TOO_MANY_CHAINS, checked: None },
            },
        }
    }

    fn checked(&self) -> Option<&Checked> {
        match &self.body {
            Body::Block { checked, .. } => checked.as_ref(),
            Body::Signatures(_) => None,
        }
    }

    fn failure(&self, i: usize) -> Option<&CFailure> {
        self.checked()?.failures.get(i)
    }
}

/// How to take a ticket.
#[derive(Debug, Clone, Copy)]
enum Take {
    Poll,
    Wait,
    WaitAtMost(Duration),
}

impl vigil_validator {
    fn submit(&self, request: Request, wait: bool) -> Result<u64, c_int> {
        let pending = if wait { self.validator.submit(request) } else { self.validator.try_submit(request) };
        let pending = pending.map_err(|e| match e {
            SubmitError::Overloaded => VIGIL_ERR_OVERLOADED,
            SubmitError::Closed => VIGIL_ERR_CLOSED,
        })?;
        let ticket = self.last_ticket.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot { state: Mutex::new(State::Idle(pending)), changed: Condvar::new() };
        lock(&self.tickets).insert(ticket, Arc::new(slot));
        Ok(ticket)
    }

    /// The ticket's verdict if it comes (`Ok(None)`: not yet), which uses
    /// the ticket up. Lock order: a slot, then the map; never the other way.
    ///
    /// One thread at a time waits on a ticket's channel, without holding
    /// the slot's lock: meanwhile a poll answers `Ok(None)` (PENDING), and a
    /// second waiter waits on the slot's condition variable until the first
    /// returns: then the ticket is gone (`VIGIL_ERR_UNKNOWN_TICKET`) if the
    /// first took the answer, or the second waits on the channel itself if
    /// the first's timeout ran out. A timed waiter never waits past its own
    /// timeout, whoever holds the channel.
    fn take(&self, ticket: u64, how: Take) -> Result<Option<Verdict>, c_int> {
        let slot = lock(&self.tickets).get(&ticket).cloned().ok_or(VIGIL_ERR_UNKNOWN_TICKET)?;
        // `None`: no deadline (a plain wait, or a timeout past `Instant`'s range).
        let deadline = match how {
            Take::WaitAtMost(timeout) => Instant::now().checked_add(timeout),
            Take::Poll | Take::Wait => None,
        };
        let timed = matches!(how, Take::WaitAtMost(_)) && deadline.is_some();
        let mut state = lock(&slot.state);
        let pending = loop {
            match std::mem::replace(&mut *state, State::Waited) {
                State::Idle(p) => break p,
                State::Taken => {
                    *state = State::Taken;
                    return Err(VIGIL_ERR_UNKNOWN_TICKET);
                }
                // Another thread is waiting on the channel.
                State::Waited => match (how, deadline) {
                    (Take::Poll, _) => return Ok(None),
                    (_, Some(deadline)) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Ok(None);
                        }
                        state = slot.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
                    }
                    (_, None) => state = slot.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                },
            }
        };
        let verdict = if let Take::Poll = how {
            pending.poll()
        } else {
            // The channel is ours (`Waited`): wait on it without the lock. A
            // `Duration::MAX` wait is a plain wait that cannot panic.
            drop(state);
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            let verdict = pending.wait_timeout(left);
            state = lock(&slot.state);
            verdict
        };
        let result = match verdict {
            Some(v) => {
                *state = State::Taken;
                lock(&self.tickets).remove(&ticket);
                Ok(Some(v))
            }
            None => {
                *state = State::Idle(pending);
                // An untimed wait ends only with the answer: none means the
                // validator dropped the request, which it never does.
                if matches!(how, Take::Wait) || (matches!(how, Take::WaitAtMost(_)) && !timed) {
                    Err(VIGIL_ERR_INTERNAL)
                } else {
                    Ok(None)
                }
            }
        };
        drop(state);
        slot.changed.notify_all();
        result
    }
}

/// # Safety
/// `v` is NULL or a live validator from `vigil_validator_new`.
unsafe fn validator<'a>(v: *mut vigil_validator) -> Result<&'a vigil_validator, c_int> {
    // SAFETY: the caller's promise.
    unsafe { v.as_ref() }.ok_or(VIGIL_ERR_NULL)
}

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

/// # Safety
/// As `vigil_submit_signatures`.
unsafe fn signatures_request(rules_value: c_int, sigs: *const vigil_sig, count: usize) -> Result<Request, c_int> {
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

/// # Safety
/// `r` is NULL or a live result.
unsafe fn result<'a>(r: *const vigil_result) -> Option<&'a vigil_result> {
    // SAFETY: the caller's promise.
    unsafe { r.as_ref() }
}

// ---- Return codes -----------------------------------------------------------

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

// ---- Configuration and lifetime ---------------------------------------------

fn default_config() -> vigil_config {
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
unsafe fn engine_config(c: &vigil_config) -> Option<ValidatorConfig> {
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
    Some(ValidatorConfig {
        chain_id,
        rules: rules(c.rules).ok()?,
        max_batch: or_default(c.max_batch, d.max_batch),
        max_delay: if c.max_delay_us == 0 { d.max_delay } else { Duration::from_micros(c.max_delay_us) },
        max_queue_bytes: or_default(c.max_queue_bytes, d.max_queue_bytes),
        max_chains: or_default(c.max_chains, d.max_chains),
        ..d
    })
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

// ---- Submitting ---------------------------------------------------------------

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

// ---- Taking results -----------------------------------------------------------

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

// ---- Reading results ----------------------------------------------------------

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

#[cfg(test)]
mod tests {
    //! The extern "C" functions called as C would call them.

    use super::*;
    use std::ptr::{null, null_mut};
    use vigil_engine::format::blocks;
    use vigil_engine::sig;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        assert_eq!(s.len(), 2 * N);
        std::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
    }

    /// RFC 8032 section 7.1, tests 1 to 3: (public key, message, signature).
    fn rfc8032() -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
        vec![
            (
                unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
                vec![],
                unhex(
                    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
                ),
            ),
            (
                unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
                vec![0x72],
                unhex(
                    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
                ),
            ),
            (
                unhex("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"),
                vec![0xaf, 0x82],
                unhex(
                    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
                ),
            ),
        ]
    }

    /// The RFC vectors, each with one bit flipped in the signature, the
    /// message and the key, and a small-order key with an identity R and
    /// S = 0, which ZIP215 accepts and strict rules refuse.
    fn cases() -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
        let mut out = Vec::new();
        for (pk, msg, sig) in rfc8032() {
            out.push((pk, msg.clone(), sig));
            let mut s = sig;
            s[5] ^= 0x10;
            out.push((pk, msg.clone(), s));
            let mut m = msg.clone();
            m.push(1);
            out.push((pk, m, sig));
            let mut k = pk;
            k[0] ^= 1;
            out.push((k, msg, sig));
        }
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut small = [0u8; 64];
        small[0] = 1;
        out.push((identity, b"any message".to_vec(), small));
        out
    }

    fn c_sigs(cases: &[([u8; 32], Vec<u8>, [u8; 64])]) -> Vec<vigil_sig> {
        cases
            .iter()
            .map(|(pk, msg, sig)| vigil_sig {
                public_key: pk.as_ptr(),
                signature: sig.as_ptr(),
                message: if msg.is_empty() { null() } else { msg.as_ptr() },
                message_len: msg.len(),
            })
            .collect()
    }

    /// The first block of the bundled sample chain.
    fn sample_block() -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/sample");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "vblk"))
            .collect();
        files.sort();
        let data = std::fs::read(&files[0]).unwrap();
        let (offset, block) = blocks(&data).next().unwrap();
        let block = block.unwrap();
        data[offset as usize..offset as usize + block.len()].to_vec()
    }

    fn new(cfg: Option<&vigil_config>) -> *mut vigil_validator {
        let v = unsafe { vigil_validator_new(cfg.map_or(null(), |c| c as *const _)) };
        assert!(!v.is_null());
        v
    }

    fn submit_sigs(v: *mut vigil_validator, rules: c_int, sigs: &[vigil_sig]) -> u64 {
        let mut t = 0;
        assert_eq!(unsafe { vigil_submit_signatures(v, rules, sigs.as_ptr(), sigs.len(), &mut t) }, VIGIL_OK);
        assert_ne!(t, 0);
        t
    }

    fn submit_block(v: *mut vigil_validator, block: &[u8]) -> u64 {
        let mut t = 0;
        assert_eq!(unsafe { vigil_submit_block(v, block.as_ptr(), block.len(), &mut t) }, VIGIL_OK);
        t
    }

    fn wait(v: *mut vigil_validator, t: u64) -> *mut vigil_result {
        let mut r = null_mut();
        assert_eq!(unsafe { vigil_wait(v, t, &mut r) }, VIGIL_OK);
        assert!(!r.is_null());
        r
    }

    fn verdicts(r: *const vigil_result) -> Vec<bool> {
        unsafe {
            assert_eq!(vigil_result_kind(r), VIGIL_RESULT_SIGNATURES);
            let n = vigil_result_count(r);
            if n == 0 {
                assert!(vigil_result_verdicts(r).is_null());
                return vec![];
            }
            std::slice::from_raw_parts(vigil_result_verdicts(r), n).iter().map(|b| *b == 1).collect()
        }
    }

    fn text(p: *const c_char) -> String {
        assert!(!p.is_null());
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
    }

    #[test]
    fn signatures_match_the_reference_under_both_rule_sets() {
        let cases = cases();
        let sigs = c_sigs(&cases);
        let v = new(None);
        for (value, rules) in [(VIGIL_RULES_ZIP215, RuleSet::Zip215), (VIGIL_RULES_STRICT, RuleSet::Strict)] {
            let r = wait(v, submit_sigs(v, value, &sigs));
            let want: Vec<bool> = cases.iter().map(|(pk, m, s)| sig::verify(rules, pk, m, s)).collect();
            assert_eq!(verdicts(r), want, "{rules}");
            // The RFC vectors verify, their corruptions do not.
            assert_eq!(&want[..12], &[true, false, false, false].repeat(3)[..], "{rules}");
            assert_eq!(
                text(unsafe { vigil_result_message(r) }),
                format!("13 signatures, {} valid", want.iter().filter(|b| **b).count())
            );
            // Not a block: the block accessors say so.
            unsafe {
                assert_eq!(vigil_result_block_outcome(r), VIGIL_ERR_INVALID_ARGUMENT);
                assert!(vigil_result_hash(r).is_null());
                assert_eq!(vigil_result_failure_count(r), 0);
                vigil_result_free(r);
            }
        }
        // The small-order case tells the rule sets apart.
        assert!(sig::verify(RuleSet::Zip215, &cases[12].0, &cases[12].1, &cases[12].2));
        assert!(!sig::verify(RuleSet::Strict, &cases[12].0, &cases[12].1, &cases[12].2));
        // An empty batch: NULL allowed, no verdicts.
        let mut t = 0;
        assert_eq!(unsafe { vigil_submit_signatures(v, VIGIL_RULES_ZIP215, null(), 0, &mut t) }, VIGIL_OK);
        let r = wait(v, t);
        assert_eq!(verdicts(r), Vec::<bool>::new());
        unsafe { vigil_result_free(r) };
        unsafe { vigil_validator_free(v) };
    }

    #[test]
    fn null_pointers_are_errors_not_crashes() {
        let cases = cases();
        let sigs = c_sigs(&cases);
        let block = sample_block();
        let v = new(None);
        let mut t = 77;
        let mut r: *mut vigil_result = null_mut();
        unsafe {
            // Submitting.
            assert_eq!(vigil_submit_block(null_mut(), block.as_ptr(), block.len(), &mut t), VIGIL_ERR_NULL);
            assert_eq!(t, 0, "the ticket is zeroed on error");
            assert_eq!(vigil_submit_block(v, block.as_ptr(), block.len(), null_mut()), VIGIL_ERR_NULL);
            assert_eq!(vigil_submit_block(v, null(), 10, &mut t), VIGIL_ERR_NULL);
            assert_eq!(vigil_try_submit_block(v, null(), 10, &mut t), VIGIL_ERR_NULL);
            assert_eq!(vigil_submit_signatures(null_mut(), 0, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_NULL);
            assert_eq!(vigil_submit_signatures(v, 0, null(), 1, &mut t), VIGIL_ERR_NULL);
            assert_eq!(vigil_try_submit_signatures(v, 0, sigs.as_ptr(), 1, null_mut()), VIGIL_ERR_NULL);
            for field in 0..3 {
                let mut bad = sigs[4]; // a non-empty message
                match field {
                    0 => bad.public_key = null(),
                    1 => bad.signature = null(),
                    _ => bad.message = null(),
                }
                let batch = [sigs[0], bad];
                assert_eq!(vigil_submit_signatures(v, 0, batch.as_ptr(), 2, &mut t), VIGIL_ERR_NULL, "field {field}");
                assert_eq!(t, 0);
            }
            // Taking.
            let good = submit_block(v, &block);
            assert_eq!(vigil_poll(null_mut(), good, &mut r), VIGIL_ERR_NULL);
            assert_eq!(vigil_wait(null_mut(), good, &mut r), VIGIL_ERR_NULL);
            assert_eq!(vigil_wait_timeout(null_mut(), good, 0, &mut r), VIGIL_ERR_NULL);
            assert!(r.is_null());
            assert_eq!(vigil_poll(v, good, null_mut()), VIGIL_ERR_NULL);
            assert_eq!(vigil_wait(v, good, null_mut()), VIGIL_ERR_NULL);
            // Nothing above used the ticket up.
            assert_eq!(vigil_wait(v, good, &mut r), VIGIL_OK);
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_VALID);
            vigil_result_free(r);
            // Reading a NULL result.
            assert_eq!(vigil_result_kind(null()), VIGIL_ERR_NULL);
            assert_eq!(vigil_result_block_outcome(null()), VIGIL_ERR_NULL);
            assert!(vigil_result_message(null()).is_null());
            assert_eq!(vigil_result_count(null()), 0);
            assert!(vigil_result_verdicts(null()).is_null());
            assert_eq!(vigil_result_position(null()), 0);
            assert_eq!(vigil_result_height(null()), 0);
            assert!(vigil_result_hash(null()).is_null());
            assert_eq!(vigil_result_tx_count(null()), 0);
            assert_eq!(vigil_result_failure_count(null()), 0);
            assert!(vigil_result_failure_rule(null(), 0).is_null());
            assert_eq!(vigil_result_failure_tx(null(), 0), -1);
            assert!(vigil_result_failure_detail(null(), 0).is_null());
            // The rest.
            assert!(vigil_status_json(null_mut()).is_null());
            assert_eq!(vigil_close(null_mut()), VIGIL_ERR_NULL);
            vigil_config_default(null_mut());
            vigil_result_free(null_mut());
            vigil_string_free(null_mut());
            vigil_validator_free(null_mut());
            vigil_validator_free(v);
        }
    }

    #[test]
    fn a_ticket_is_taken_exactly_once() {
        let cases = cases();
        let sigs = c_sigs(&cases);
        let v = new(None);
        let mut r = null_mut();
        unsafe {
            let t = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..2]);
            let r1 = wait(v, t);
            assert_eq!(verdicts(r1), [true, false]);
            assert_eq!(vigil_wait(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
            assert_eq!(vigil_poll(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
            assert_eq!(vigil_wait_timeout(v, t, 1000, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
            assert!(r.is_null());
            vigil_result_free(r1);

            // Polled until ready, then gone.
            let t = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..2]);
            let mut polls = 0;
            loop {
                match vigil_poll(v, t, &mut r) {
                    VIGIL_PENDING => {
                        assert!(r.is_null());
                        polls += 1;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    VIGIL_OK => break,
                    other => panic!("{}", text(vigil_error_name(other))),
                }
            }
            assert!(polls < 100_000);
            assert_eq!(verdicts(r), [true, false]);
            vigil_result_free(r);
            assert_eq!(vigil_poll(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);

            // Timed waits: PENDING keeps the ticket.
            let t = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..1]);
            let mut code = vigil_wait_timeout(v, t, 0, &mut r);
            while code == VIGIL_PENDING {
                code = vigil_wait_timeout(v, t, 1_000, &mut r);
            }
            assert_eq!(code, VIGIL_OK);
            assert_eq!(verdicts(r), [true]);
            vigil_result_free(r);
            assert_eq!(vigil_wait_timeout(v, t, u64::MAX, &mut r), VIGIL_ERR_UNKNOWN_TICKET);

            // Tickets never handed out.
            for t in [0, 12345, u64::MAX] {
                assert_eq!(vigil_poll(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
                assert_eq!(vigil_wait(v, t, &mut r), VIGIL_ERR_UNKNOWN_TICKET);
            }
            vigil_validator_free(v);
        }
    }

    /// vigil.h: while one thread waits on a ticket, a poll from another
    /// answers PENDING, a timed waiter gets PENDING after its own timeout,
    /// and a second waiter waits; when the answer comes one of the two
    /// waiters takes it and the other gets UNKNOWN_TICKET. A waiter whose
    /// timeout runs out hands the ticket to the next.
    #[test]
    fn a_ticket_being_waited_on_is_pending_to_others_and_a_second_waiter_waits() {
        struct Handle(*mut vigil_validator);
        // SAFETY: the validator is thread-safe.
        unsafe impl Sync for Handle {}
        let cases = cases();
        let sigs = c_sigs(&cases);
        // A long batching delay: the request sits queued until vigil_close.
        let cfg = vigil_config { max_delay_us: MAX_DELAY_US, ..default_config() };
        let wait_on = |v: &Handle, t: u64, timeout_us: Option<u64>| {
            let mut r = null_mut();
            let code = unsafe {
                match timeout_us {
                    None => vigil_wait(v.0, t, &mut r),
                    Some(us) => vigil_wait_timeout(v.0, t, us, &mut r),
                }
            };
            (code, r as usize)
        };
        let settle = || std::thread::sleep(Duration::from_millis(300));

        let v = &Handle(new(Some(&cfg)));
        let t = submit_sigs(v.0, VIGIL_RULES_ZIP215, &sigs[..1]);
        let (a, b) = std::thread::scope(|scope| {
            let first = scope.spawn(move || wait_on(v, t, None));
            settle();
            let mut r = null_mut();
            for _ in 0..5 {
                assert_eq!(unsafe { vigil_poll(v.0, t, &mut r) }, VIGIL_PENDING);
                assert!(r.is_null());
                std::thread::sleep(Duration::from_millis(10));
            }
            let started = Instant::now();
            assert_eq!(wait_on(v, t, Some(100_000)), (VIGIL_PENDING, 0));
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(20), "{waited:?}");
            let second = scope.spawn(move || wait_on(v, t, None));
            settle();
            assert!(!first.is_finished() && !second.is_finished(), "both wait for the answer");
            assert_eq!(unsafe { vigil_close(v.0) }, VIGIL_OK);
            (first.join().unwrap(), second.join().unwrap())
        });
        let (taken, other) = if a.0 == VIGIL_OK { (a, b) } else { (b, a) };
        assert_eq!((taken.0, other), (VIGIL_OK, (VIGIL_ERR_UNKNOWN_TICKET, 0)));
        assert_eq!(verdicts(taken.1 as *mut vigil_result), [true]);
        unsafe { vigil_result_free(taken.1 as *mut vigil_result) };
        unsafe { vigil_validator_free(v.0) };

        // A timed waiter gives up; the plain waiter behind it gets the answer.
        let v = &Handle(new(Some(&cfg)));
        let t = submit_sigs(v.0, VIGIL_RULES_ZIP215, &sigs[..1]);
        std::thread::scope(|scope| {
            let timed = scope.spawn(move || wait_on(v, t, Some(400_000)));
            std::thread::sleep(Duration::from_millis(50));
            let plain = scope.spawn(move || wait_on(v, t, None));
            assert_eq!(timed.join().unwrap(), (VIGIL_PENDING, 0));
            settle();
            assert!(!plain.is_finished(), "the plain waiter still waits");
            assert_eq!(unsafe { vigil_close(v.0) }, VIGIL_OK);
            let (code, r) = plain.join().unwrap();
            assert_eq!(code, VIGIL_OK);
            assert_eq!(verdicts(r as *mut vigil_result), [true]);
            unsafe { vigil_result_free(r as *mut vigil_result) };
        });
        unsafe { vigil_validator_free(v.0) };
    }

    #[test]
    fn bad_rules_and_bad_configs_are_rejected() {
        let cases = cases();
        let sigs = c_sigs(&cases);
        let v = new(None);
        let mut t = 5;
        for rules in [-1, 2, 7, c_int::MAX] {
            unsafe {
                assert_eq!(vigil_submit_signatures(v, rules, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_INVALID_ARGUMENT);
                assert_eq!(t, 0);
                assert_eq!(vigil_try_submit_signatures(v, rules, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_INVALID_ARGUMENT);
            }
        }
        // A count no address space holds.
        let huge = usize::MAX / 2;
        assert_eq!(unsafe { vigil_submit_signatures(v, 0, sigs.as_ptr(), huge, &mut t) }, VIGIL_ERR_INVALID_ARGUMENT);
        assert_eq!(
            unsafe { vigil_submit_block(v, sigs.as_ptr().cast(), usize::MAX, &mut t) },
            VIGIL_ERR_INVALID_ARGUMENT
        );
        unsafe { vigil_validator_free(v) };

        let mut cfg = default_config();
        unsafe { vigil_config_default(&mut cfg) };
        let d = ValidatorConfig::default();
        assert!(cfg.chain_id.is_null());
        assert_eq!((cfg.rules, cfg.max_batch, cfg.max_delay_us), (VIGIL_RULES_ZIP215, d.max_batch, 2000));
        assert_eq!((cfg.max_queue_bytes, cfg.max_chains), (d.max_queue_bytes, d.max_chains));
        for bad in [
            vigil_config { rules: 2, ..cfg },
            vigil_config { rules: -1, ..cfg },
            vigil_config { max_delay_us: MAX_DELAY_US + 1, ..cfg },
            vigil_config { max_delay_us: u64::MAX, ..cfg },
        ] {
            assert!(unsafe { vigil_validator_new(&bad) }.is_null(), "{bad:?}");
        }
        // Zeros mean the defaults.
        let zeros = vigil_config {
            chain_id: null(),
            rules: 1,
            max_batch: 0,
            max_delay_us: 0,
            max_queue_bytes: 0,
            max_chains: 0,
        };
        let v = new(Some(&zeros));
        let v_ref = unsafe { &*v };
        let c = v_ref.validator.config();
        assert_eq!(
            (c.rules, c.max_batch, c.max_delay, c.max_queue_bytes, c.max_chains),
            (RuleSet::Strict, d.max_batch, d.max_delay, d.max_queue_bytes, d.max_chains)
        );
        unsafe { vigil_validator_free(v) };
    }

    #[test]
    fn block_outcomes() {
        let block = sample_block();
        let chain_id: [u8; 32] = block[8..40].try_into().unwrap();
        let v = new(None);
        unsafe {
            // Valid, then the same block again: a second block at height 0.
            let (t1, t2) = (submit_block(v, &block), submit_block(v, &block));
            let r = wait(v, t1);
            assert_eq!(vigil_result_kind(r), VIGIL_RESULT_BLOCK);
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_VALID, "{}", text(vigil_result_message(r)));
            assert_eq!((vigil_result_position(r), vigil_result_height(r)), (0, 0));
            let header = vigil_engine::BlockView::parse(&block, 0).unwrap().0.header;
            let hash = std::slice::from_raw_parts(vigil_result_hash(r), 32).to_vec();
            assert_eq!(hash, vigil_engine::hash::block_hash(header));
            assert_eq!(vigil_result_tx_count(r), header.tx_count());
            assert!(header.tx_count() > 0);
            assert_eq!(vigil_result_failure_count(r), 0);
            assert!(vigil_result_failure_rule(r, 0).is_null());
            assert_eq!(vigil_result_count(r), 0);
            assert!(vigil_result_verdicts(r).is_null());
            assert!(text(vigil_result_message(r)).starts_with("valid block at height 0"));
            vigil_result_free(r);
            let r = wait(v, t2);
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_INVALID);
            assert_eq!(vigil_result_position(r), 1);
            let n = vigil_result_failure_count(r);
            assert!(n > 0);
            let rules: Vec<String> = (0..n).map(|i| text(vigil_result_failure_rule(r, i))).collect();
            assert!(rules.iter().any(|r| r == "height"), "{rules:?}");
            // The replayed transactions break nonce rules: per transaction.
            assert!(rules.iter().any(|r| r == "nonce"), "{rules:?}");
            for (i, name) in rules.iter().enumerate() {
                let rule: Rule = name.parse().unwrap();
                assert!(!text(vigil_result_failure_detail(r, i)).is_empty());
                let tx = vigil_result_failure_tx(r, i);
                assert_eq!(tx >= 0, rule.is_per_transaction(), "{name}: tx {tx}");
                assert!(tx < i64::from(vigil_result_tx_count(r)));
            }
            assert!(vigil_result_failure_rule(r, n).is_null());
            assert!(vigil_result_failure_detail(r, n).is_null());
            assert_eq!(vigil_result_failure_tx(r, n), -1);
            assert!(text(vigil_result_message(r)).contains("height"));
            vigil_result_free(r);

            // Malformed and extra bytes: not applied.
            let r = wait(v, submit_block(v, &block[..100]));
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_MALFORMED);
            assert!(vigil_result_hash(r).is_null());
            assert!(text(vigil_result_message(r)).contains("header does not fit"), "{}", text(vigil_result_message(r)));
            vigil_result_free(r);
            let mut longer = block.clone();
            longer.extend_from_slice(&[0; 3]);
            let r = wait(v, submit_block(v, &longer));
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_EXTRA_BYTES);
            assert!(text(vigil_result_message(r)).contains("3 more bytes"));
            vigil_result_free(r);
            let r = wait(v, submit_block(v, &[]));
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_MALFORMED);
            vigil_result_free(r);
            vigil_validator_free(v);
        }

        // One chain at most: another chain's block is refused.
        let mut other = block.clone();
        other[8] ^= 0xff;
        let cfg = vigil_config { max_chains: 1, ..default_config() };
        let v = new(Some(&cfg));
        unsafe {
            let r = wait(v, submit_block(v, &block));
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_VALID);
            vigil_result_free(r);
            let r = wait(v, submit_block(v, &other));
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_TOO_MANY_CHAINS);
            assert!(text(vigil_result_message(r)).contains(&hex(&other[8..40])));
            vigil_result_free(r);
            vigil_validator_free(v);
        }

        // Pinned to another chain id: the chain_id rule.
        let mut pinned = chain_id;
        pinned[0] ^= 1;
        let cfg = vigil_config { chain_id: pinned.as_ptr(), ..default_config() };
        let v = new(Some(&cfg));
        pinned.fill(0xaa); // copied by vigil_validator_new: this changes nothing
        unsafe {
            let r = wait(v, submit_block(v, &block));
            assert_eq!(vigil_result_block_outcome(r), VIGIL_BLOCK_INVALID);
            let rules: Vec<String> =
                (0..vigil_result_failure_count(r)).map(|i| text(vigil_result_failure_rule(r, i))).collect();
            assert_eq!(rules, ["chain_id"]);
            vigil_result_free(r);
            vigil_validator_free(v);
        }
    }

    #[test]
    fn rule_names_are_the_engines() {
        for rule in Rule::ALL {
            assert_eq!(rule_name(rule).to_str().unwrap(), rule.name());
        }
        for code in [VIGIL_OK, VIGIL_PENDING, -1, -2, -3, -4, -5, -6] {
            assert!(text(vigil_error_name(code)).starts_with("VIGIL_"));
        }
        assert_eq!(text(vigil_error_name(VIGIL_ERR_OVERLOADED)), "VIGIL_ERR_OVERLOADED");
        assert_eq!(text(vigil_error_name(-99)), "unknown");
    }

    /// Results live on their own, and tickets only through their validator:
    /// no call can wait on a ticket of a freed validator, because every
    /// taking call goes through the validator handle, and freeing a
    /// validator with untaken tickets answers and drops them.
    #[test]
    fn results_outlive_their_validator_and_free_answers_everything() {
        let cases = cases();
        let sigs = c_sigs(&cases);
        let v = new(None);
        let taken = submit_sigs(v, VIGIL_RULES_ZIP215, &sigs[..1]);
        let r = wait(v, taken);
        // Left untaken, some maybe still queued: freed with the validator.
        for _ in 0..10 {
            submit_sigs(v, VIGIL_RULES_ZIP215, &sigs);
        }
        unsafe { vigil_validator_free(v) };
        assert_eq!(verdicts(r), [true]);
        assert_eq!(text(unsafe { vigil_result_message(r) }), "1 signatures, 1 valid");
        unsafe { vigil_result_free(r) };
    }

    #[test]
    fn close_overload_and_status() {
        let cases = cases();
        let sigs = c_sigs(&cases);
        // A tiny queue and a long batching delay: the first request sits in
        // the queue, the next one does not fit.
        let cfg = vigil_config { max_queue_bytes: 1, max_delay_us: 10_000_000, ..default_config() };
        let v = new(Some(&cfg));
        let mut t = 0;
        let mut r = null_mut();
        unsafe {
            assert_eq!(vigil_try_submit_signatures(v, 0, sigs.as_ptr(), 1, &mut t), VIGIL_OK);
            let first = t;
            assert_eq!(vigil_try_submit_signatures(v, 0, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_OVERLOADED);
            assert_eq!(t, 0);
            let block = sample_block();
            assert_eq!(vigil_try_submit_block(v, block.as_ptr(), block.len(), &mut t), VIGIL_ERR_OVERLOADED);
            assert_eq!(vigil_poll(v, first, &mut r), VIGIL_PENDING);

            let json = vigil_status_json(v);
            let status: serde_json::Value = serde_json::from_str(&text(json)).unwrap();
            vigil_string_free(json);
            assert_eq!(status["overloaded"], 2);
            assert_eq!(status["queue_requests"], 1);
            assert_eq!(status["max_queue_bytes"], 1);
            assert_eq!(status["max_delay_us"], 10_000_000);
            assert_eq!(status["backend"], "cpu");

            // Closing answers what is queued at once, and takes nothing more.
            assert_eq!(vigil_close(v), VIGIL_OK);
            assert_eq!(vigil_submit_signatures(v, 0, sigs.as_ptr(), 1, &mut t), VIGIL_ERR_CLOSED);
            assert_eq!(vigil_try_submit_block(v, block.as_ptr(), block.len(), &mut t), VIGIL_ERR_CLOSED);
            let started = std::time::Instant::now();
            assert_eq!(vigil_wait(v, first, &mut r), VIGIL_OK);
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(verdicts(r), [true]);
            vigil_result_free(r);

            let json = vigil_status_json(v);
            let status: serde_json::Value = serde_json::from_str(&text(json)).unwrap();
            vigil_string_free(json);
            assert_eq!((status["requests"].as_u64(), status["signatures"].as_u64()), (Some(1), Some(1)));
            vigil_validator_free(v);
        }
    }

    /// Many threads on one validator: each gets its own answers; threads
    /// racing to take one ticket get it exactly once between them.
    #[test]
    fn one_validator_many_threads() {
        let cases = cases();
        let want_zip: Vec<bool> = cases.iter().map(|(pk, m, s)| sig::verify(RuleSet::Zip215, pk, m, s)).collect();
        let want_strict: Vec<bool> = cases.iter().map(|(pk, m, s)| sig::verify(RuleSet::Strict, pk, m, s)).collect();
        struct Handle(*mut vigil_validator);
        // SAFETY: the validator is thread-safe (the point of this test).
        unsafe impl Sync for Handle {}
        let v = Handle(new(None));
        let v = &v;
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let (cases, want_zip, want_strict) = (&cases, &want_zip, &want_strict);
                scope.spawn(move || {
                    let sigs = c_sigs(cases);
                    for round in 0..20 {
                        let strict = (thread + round) % 2 == 1;
                        let rules = if strict { VIGIL_RULES_STRICT } else { VIGIL_RULES_ZIP215 };
                        let n = 1 + (thread * 7 + round) % sigs.len();
                        let t = submit_sigs(v.0, rules, &sigs[..n]);
                        let r = wait(v.0, t);
                        let want = if strict { want_strict } else { want_zip };
                        assert_eq!(verdicts(r), want[..n]);
                        unsafe { vigil_result_free(r) };
                    }
                });
            }
        });
        // Racing takers: one result between them, every other call gets
        // PENDING (polls) or UNKNOWN_TICKET.
        let sigs = c_sigs(&cases);
        let n = sigs.len();
        for _ in 0..20 {
            let t = submit_sigs(v.0, VIGIL_RULES_ZIP215, &sigs);
            let got: Vec<usize> = std::thread::scope(|scope| {
                let takers: Vec<_> = (0..4)
                    .map(|i| {
                        scope.spawn(move || {
                            let mut r = null_mut();
                            let mut results = 0;
                            loop {
                                let code = unsafe {
                                    if i % 2 == 0 { vigil_wait(v.0, t, &mut r) } else { vigil_poll(v.0, t, &mut r) }
                                };
                                match code {
                                    VIGIL_OK => {
                                        assert_eq!(verdicts(r).len(), n);
                                        unsafe { vigil_result_free(r) };
                                        results += 1;
                                    }
                                    VIGIL_PENDING => continue,
                                    VIGIL_ERR_UNKNOWN_TICKET => return results,
                                    other => panic!("{}", text(vigil_error_name(other))),
                                }
                            }
                        })
                    })
                    .collect();
                takers.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(got.iter().sum::<usize>(), 1, "{got:?}");
        }
        unsafe { vigil_validator_free(v.0) };
    }

    /// The layouts C sees (vigil.h), on this platform.
    #[test]
    fn struct_layouts() {
        use std::mem::{align_of, offset_of};
        let p = size_of::<*const u8>();
        assert_eq!(offset_of!(vigil_sig, public_key), 0);
        assert_eq!(offset_of!(vigil_sig, signature), p);
        assert_eq!(offset_of!(vigil_sig, message), 2 * p);
        assert_eq!(offset_of!(vigil_sig, message_len), 3 * p);
        assert_eq!(size_of::<vigil_sig>(), 4 * p);
        assert_eq!(align_of::<vigil_config>(), align_of::<u64>().max(p));
    }
}
