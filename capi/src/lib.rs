//! C ABI over the engine's `Validator` (see include/vigil.h, which documents
//! every function; the two must match exactly).
//!
//! Every entry point runs its body under `catch_unwind` ([`guard`]), so no
//! panic crosses into C, and checks every pointer it is given for NULL
//! before use ([`memory`]). Tickets are per validator: a map from ticket to
//! a slot holding the engine's `Pending` answer, each slot with its own lock
//! and condition variable, so that one thread can wait on a ticket (without
//! holding any lock) while others submit, poll and wait on theirs or on the
//! same one ([`tickets`]).
//!
//! The modules, in the order a call flows through them:
//!
//! | module         | what                                                        |
//! |----------------|-------------------------------------------------------------|
//! | [`codes`]      | return codes and constants; `vigil_error_name`              |
//! | [`config`]     | `vigil_config`, its defaults, the engine's config from it   |
//! | [`handle`]     | `vigil_validator`: new, close, free                         |
//! | [`signatures`] | `vigil_sig`: C signature batches read into a `SigBatch`     |
//! | [`submit`]     | `vigil_submit_*`, `vigil_try_submit_*`: a request, a ticket |
//! | [`tickets`]    | the ticket map and how a ticket is taken, once              |
//! | [`take`]       | `vigil_poll`, `vigil_wait`, `vigil_wait_timeout`            |
//! | [`result`]     | `vigil_result`: a verdict converted once for C              |
//! | [`read`]       | the `vigil_result_*` accessors and `vigil_result_free`      |
//! | [`status`]     | `vigil_status_json`, `vigil_string_free`                    |
//! | [`guard`]      | the panic guard around every entry point                    |
//! | [`memory`]     | reading C memory, making C strings                          |

#![allow(non_camel_case_types)] // the C names

mod codes;
mod config;
mod guard;
mod handle;
mod memory;
mod read;
mod result;
mod signatures;
mod status;
mod submit;
mod take;
mod tickets;

pub use codes::{
    VIGIL_BLOCK_EXTRA_BYTES, VIGIL_BLOCK_INVALID, VIGIL_BLOCK_MALFORMED, VIGIL_BLOCK_TOO_MANY_CHAINS,
    VIGIL_BLOCK_VALID, VIGIL_ERR_CLOSED, VIGIL_ERR_INTERNAL, VIGIL_ERR_INVALID_ARGUMENT, VIGIL_ERR_NULL,
    VIGIL_ERR_OVERLOADED, VIGIL_ERR_UNKNOWN_TICKET, VIGIL_OK, VIGIL_PENDING, VIGIL_RESULT_BLOCK,
    VIGIL_RESULT_SIGNATURES, VIGIL_RULES_STRICT, VIGIL_RULES_ZIP215, vigil_error_name,
};
pub use config::{MAX_DELAY_US, vigil_config, vigil_config_default};
pub use handle::{vigil_close, vigil_validator, vigil_validator_free, vigil_validator_new};
pub use read::{
    vigil_result_block_outcome, vigil_result_count, vigil_result_failure_count, vigil_result_failure_detail,
    vigil_result_failure_rule, vigil_result_failure_tx, vigil_result_free, vigil_result_hash, vigil_result_height,
    vigil_result_kind, vigil_result_message, vigil_result_position, vigil_result_tx_count, vigil_result_verdicts,
};
pub use result::vigil_result;
pub use signatures::vigil_sig;
pub use status::{vigil_status_json, vigil_string_free};
pub use submit::{vigil_submit_block, vigil_submit_signatures, vigil_try_submit_block, vigil_try_submit_signatures};
pub use take::{vigil_poll, vigil_wait, vigil_wait_timeout};

#[cfg(test)]
mod tests;
