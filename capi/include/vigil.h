/*
 * vigil.h: the C ABI of libvigil, vigil's block validation coprocessor.
 *
 * A validator takes blocks (chain format v1 bytes, exactly one block per
 * submission) and batches of raw ed25519 signatures, verifies them on a
 * worker thread of its own (batching the signatures of many submissions
 * together), and answers each submission exactly once. Submitting returns a
 * ticket; the answer (a vigil_result) is taken with vigil_poll, vigil_wait or
 * vigil_wait_timeout.
 *
 * Build: cargo build --release -p vigil-capi  ->  target/release/libvigil.so
 * Link:  cc -std=c99 -I capi/include app.c -L target/release -lvigil
 *
 * Conventions
 * - Functions returning int return VIGIL_OK (0), VIGIL_PENDING (1, "not yet",
 *   not an error) or a negative VIGIL_ERR_* code; vigil_error_name() names
 *   any of them.
 * - Every pointer argument is checked for NULL (VIGIL_ERR_NULL). A data
 *   pointer may be NULL when its length is 0. Pointers that are non-NULL but
 *   invalid (freed, too short, not from this library) cannot be detected and
 *   are undefined behaviour, as in any C API.
 * - No Rust panic crosses this boundary: an internal failure is reported as
 *   VIGIL_ERR_INTERNAL (or NULL from functions returning pointers).
 *
 * Ownership
 * - Input data (block bytes, keys, signatures, messages) is copied before
 *   the submitting call returns; the caller may reuse its buffers at once.
 * - vigil_validator_new -> vigil_validator_free (once).
 * - A vigil_result taken from a ticket is owned by the caller: free it with
 *   vigil_result_free (once). It does not depend on the validator and stays
 *   valid after vigil_validator_free. Pointers returned by vigil_result_*
 *   accessors point into the result and are valid until it is freed.
 * - vigil_status_json returns a string to free with vigil_string_free.
 * - Strings returned as const char * (vigil_error_name, rule names) other
 *   than those above are static or owned by a result: never free them.
 *
 * Thread safety
 * - A vigil_validator may be used from any number of threads at once: every
 *   function taking one is thread-safe, except vigil_validator_free, which
 *   must not run concurrently with (or before the end of) any other call on
 *   the same validator.
 * - A ticket may be taken from any thread (not only the submitting one); it
 *   is taken exactly once. While one thread waits on a ticket (vigil_wait,
 *   vigil_wait_timeout), from any other thread:
 *   - vigil_poll of the same ticket answers VIGIL_PENDING;
 *   - vigil_wait_timeout waits at most its own timeout, then answers
 *     VIGIL_PENDING (the ticket still valid);
 *   - vigil_wait waits too. When the result comes, the thread that was
 *     waiting on it first takes it (VIGIL_OK) and every other waiter then
 *     gets VIGIL_ERR_UNKNOWN_TICKET. If the first waiter's timeout runs out
 *     instead, another waiter goes on waiting for the result and takes it.
 * - A vigil_result may be read from several threads at once; it is freed
 *   once, by one thread, after all readers are done.
 *
 * Chain state (tip, heights, nonces) carries across submissions: submit the
 * blocks of a chain in chain order. A ticket never taken keeps its answer in
 * memory until the validator is freed.
 */
#ifndef VIGIL_H
#define VIGIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Return codes ------------------------------------------------------ */

/** Success. */
#define VIGIL_OK 0
/** The ticket's result is not ready yet (vigil_poll, vigil_wait_timeout). */
#define VIGIL_PENDING 1
/** A required pointer argument was NULL. */
#define VIGIL_ERR_NULL (-1)
/** An argument is out of range (a rules value other than VIGIL_RULES_*, a
 *  length too large for the address space, a result of the other kind). */
#define VIGIL_ERR_INVALID_ARGUMENT (-2)
/** vigil_try_submit_*: the validator's queue is full; nothing was queued. */
#define VIGIL_ERR_OVERLOADED (-3)
/** The validator is closed (vigil_close) and takes no more submissions. */
#define VIGIL_ERR_CLOSED (-4)
/** No such ticket on this validator, or its result was already taken. */
#define VIGIL_ERR_UNKNOWN_TICKET (-5)
/** An internal error (a bug in libvigil). */
#define VIGIL_ERR_INTERNAL (-6)

/** The name of a return code ("VIGIL_OK", "VIGIL_ERR_NULL", ...), or
 *  "unknown" for a value that is none of them. Static; never NULL. */
const char *vigil_error_name(int code);

/* ---- Configuration ----------------------------------------------------- */

/** Signature rule sets. ZIP215 is the chain's rule (FORMAT.md); STRICT is
 *  ed25519-dalek's verify_strict. */
#define VIGIL_RULES_ZIP215 0
#define VIGIL_RULES_STRICT 1

/** Validator settings. Fill with vigil_config_default, then change fields.
 *  A numeric field of 0 means "the default". */
typedef struct vigil_config {
    /** 32 bytes: pin the chain id (one chain; a block of another chain
     *  breaks the chain_id rule). NULL: one chain per chain id seen. The
     *  bytes are copied by vigil_validator_new. */
    const uint8_t *chain_id;
    /** Signature rules for blocks: VIGIL_RULES_ZIP215 or VIGIL_RULES_STRICT
     *  (signature submissions name their own). */
    int rules;
    /** Signatures a batch holds before it runs without waiting (default
     *  8192). */
    size_t max_batch;
    /** The longest a submission waits for others to share its batch, in
     *  microseconds (default 2000; at most 10000000). */
    uint64_t max_delay_us;
    /** Bytes of queued submissions before vigil_submit_* waits for room and
     *  vigil_try_submit_* refuses (default 256 MiB). */
    size_t max_queue_bytes;
    /** Chains kept when chain_id is NULL (default 1024); a block of one
     *  more chain gets VIGIL_BLOCK_TOO_MANY_CHAINS. */
    size_t max_chains;
} vigil_config;

/** Fills *cfg with the defaults (chain_id NULL, ZIP215, and the default of
 *  each numeric field). NULL: no-op. */
void vigil_config_default(vigil_config *cfg);

/* ---- Validator --------------------------------------------------------- */

/** A validator: one queue, one worker thread, chain state. Opaque. */
typedef struct vigil_validator vigil_validator;

/** Starts a validator. cfg NULL: all defaults. Returns NULL when the
 *  configuration is invalid (rules not a VIGIL_RULES_* value, max_delay_us
 *  over 10 s) or the worker thread cannot be started. */
vigil_validator *vigil_validator_new(const vigil_config *cfg);

/** Stops taking submissions; those already queued are still answered and
 *  their tickets can still be taken. Later submissions get
 *  VIGIL_ERR_CLOSED, and so do submitters waiting for room. Returns
 *  VIGIL_OK or VIGIL_ERR_NULL. */
int vigil_close(vigil_validator *v);

/** Closes the validator, answers everything queued, stops its worker thread
 *  and frees it with every ticket not yet taken. Results already taken stay
 *  valid. NULL: no-op. See "Thread safety" above. */
void vigil_validator_free(vigil_validator *v);

/** The validator's counters (queue, requests, signatures, throughput, ...)
 *  as one JSON object. Free with vigil_string_free. NULL when v is NULL. */
char *vigil_status_json(vigil_validator *v);

/** Frees a string returned by vigil_status_json. NULL: no-op. */
void vigil_string_free(char *s);

/* ---- Submitting -------------------------------------------------------- */

/** Queues one block (format v1 bytes, exactly one block, nothing after it)
 *  and stores its ticket in *ticket_out (0, never a valid ticket, on
 *  error). Waits for room when the queue is full (back-pressure).
 *  Returns VIGIL_OK, VIGIL_ERR_NULL (v or ticket_out NULL, or bytes NULL
 *  with len > 0), VIGIL_ERR_INVALID_ARGUMENT or VIGIL_ERR_CLOSED.
 *  Malformed bytes are not an error here: the result says malformed. */
int vigil_submit_block(vigil_validator *v, const uint8_t *bytes, size_t len, uint64_t *ticket_out);

/** As vigil_submit_block, but never waits: VIGIL_ERR_OVERLOADED when the
 *  queue is full. */
int vigil_try_submit_block(vigil_validator *v, const uint8_t *bytes, size_t len, uint64_t *ticket_out);

/** One signature to verify: any ed25519 (public key, message, signature). */
typedef struct vigil_sig {
    /** 32 bytes. */
    const uint8_t *public_key;
    /** 64 bytes. */
    const uint8_t *signature;
    /** message_len bytes; may be NULL when message_len is 0. */
    const uint8_t *message;
    size_t message_len;
} vigil_sig;

/** Queues count signatures to verify under rules (VIGIL_RULES_*) and stores
 *  the ticket in *ticket_out (0 on error). sigs may be NULL when count is 0.
 *  Waits for room when the queue is full. Returns VIGIL_OK, VIGIL_ERR_NULL
 *  (a NULL v, ticket_out, sigs, key, signature, or message with a nonzero
 *  length), VIGIL_ERR_INVALID_ARGUMENT (bad rules) or VIGIL_ERR_CLOSED. */
int vigil_submit_signatures(vigil_validator *v, int rules, const vigil_sig *sigs, size_t count,
                            uint64_t *ticket_out);

/** As vigil_submit_signatures, but never waits: VIGIL_ERR_OVERLOADED when
 *  the queue is full. */
int vigil_try_submit_signatures(vigil_validator *v, int rules, const vigil_sig *sigs, size_t count,
                                uint64_t *ticket_out);

/* ---- Taking results ---------------------------------------------------- */

/** A submission's answer. Opaque; read with vigil_result_*; free with
 *  vigil_result_free. */
typedef struct vigil_result vigil_result;

/** Takes the ticket's result if it is ready: VIGIL_OK and *out set (the
 *  ticket is then used up), or VIGIL_PENDING and *out NULL (also while
 *  another thread waits on the ticket). Never waits.
 *  VIGIL_ERR_UNKNOWN_TICKET: no such ticket, or already taken. */
int vigil_poll(vigil_validator *v, uint64_t ticket, vigil_result **out);

/** Takes the ticket's result, waiting for it: VIGIL_OK and *out set. Every
 *  accepted submission is answered, so this returns. With another thread
 *  waiting on the same ticket, waits too, and returns
 *  VIGIL_ERR_UNKNOWN_TICKET (*out NULL) if that thread took the result
 *  (see "Thread safety"). */
int vigil_wait(vigil_validator *v, uint64_t ticket, vigil_result **out);

/** As vigil_wait, waiting at most timeout_us microseconds (also when
 *  another thread is waiting on the ticket): VIGIL_PENDING (*out NULL, the
 *  ticket still valid) when the result did not come. */
int vigil_wait_timeout(vigil_validator *v, uint64_t ticket, uint64_t timeout_us, vigil_result **out);

/** Frees a result. NULL: no-op. */
void vigil_result_free(vigil_result *r);

/* ---- Reading results --------------------------------------------------- */

/** Result kinds. */
#define VIGIL_RESULT_BLOCK 1
#define VIGIL_RESULT_SIGNATURES 2

/** VIGIL_RESULT_BLOCK or VIGIL_RESULT_SIGNATURES; VIGIL_ERR_NULL for NULL. */
int vigil_result_kind(const vigil_result *r);

/** A human-readable summary: "valid", the rules an invalid block breaks,
 *  why a block is malformed, how many signatures verified. Owned by r;
 *  NULL only when r is NULL. */
const char *vigil_result_message(const vigil_result *r);

/* Signature results. */

/** Number of verdicts of a signature result (one per submitted signature,
 *  in order); 0 for a block result or NULL. */
size_t vigil_result_count(const vigil_result *r);

/** The verdicts: vigil_result_count bytes, 1 = the signature verifies,
 *  0 = it does not. Owned by r. NULL for a block result, NULL, or an empty
 *  batch. */
const uint8_t *vigil_result_verdicts(const vigil_result *r);

/* Block results. */

/** Block outcomes. Only VALID and INVALID blocks were checked against the
 *  chain (and applied to its state); the others were not. */
#define VIGIL_BLOCK_VALID 0           /* well-formed, breaks no rule */
#define VIGIL_BLOCK_INVALID 1         /* well-formed, breaks a rule (see failures) */
#define VIGIL_BLOCK_MALFORMED 2       /* not a well-formed block (see message) */
#define VIGIL_BLOCK_EXTRA_BYTES 3     /* a well-formed block followed by more bytes */
#define VIGIL_BLOCK_TOO_MANY_CHAINS 4 /* a new chain beyond max_chains */

/** The block's VIGIL_BLOCK_* outcome; VIGIL_ERR_NULL for NULL,
 *  VIGIL_ERR_INVALID_ARGUMENT for a signature result. */
int vigil_result_block_outcome(const vigil_result *r);

/* The following describe a checked (VALID or INVALID) block; for any other
 * result they return 0 / NULL. */

/** 0-based position of the block among the checked blocks of its chain on
 *  this validator. */
uint64_t vigil_result_position(const vigil_result *r);
/** The height in the block's header. */
uint64_t vigil_result_height(const vigil_result *r);
/** The block hash: 32 bytes owned by r. */
const uint8_t *vigil_result_hash(const vigil_result *r);
/** The block's transaction count. */
uint32_t vigil_result_tx_count(const vigil_result *r);
/** How many rule failures the block has (0 when valid). */
size_t vigil_result_failure_count(const vigil_result *r);

/** Failure i (0 <= i < vigil_result_failure_count): the rule's name as
 *  FORMAT.md gives it ("chain_id", "height", "prev_hash", "timestamp",
 *  "tx_root", "block_signature", "tx_signature", "tx_timestamp", "nonce").
 *  Static. NULL when i is out of range or r is not a checked block. */
const char *vigil_result_failure_rule(const vigil_result *r, size_t i);

/** Failure i: the index in the block of the transaction it is about, or -1
 *  for a rule about the whole block (and when i is out of range). */
int64_t vigil_result_failure_tx(const vigil_result *r, size_t i);

/** Failure i: what is wrong, in words. Owned by r. NULL when i is out of
 *  range. */
const char *vigil_result_failure_detail(const vigil_result *r, size_t i);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* VIGIL_H */
