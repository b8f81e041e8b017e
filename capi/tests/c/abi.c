/*
 * abi.c: prints what vigil.h says to C (constants, struct layouts, the
 * functions it declares) for tests/c_example.rs to compare with the Rust
 * side. Linking it against libvigil proves every declared function exists.
 */
#include <stddef.h>
#include <stdio.h>

#include "vigil.h"

#define CONSTANT(c) printf("const %s %d\n", #c, (int)(c));
#define SIZE(t) printf("size %s %lu %lu\n", #t, (unsigned long)sizeof(t), (unsigned long)0);
#define FIELD(t, f) \
    printf("field %s.%s %lu %lu\n", #t, #f, (unsigned long)offsetof(t, f), (unsigned long)sizeof(((t *)0)->f));
#define FUNCTION(f) {#f, (void (*)(void))f},

struct function {
    const char *name;
    void (*address)(void);
};

static const struct function functions[] = {
    FUNCTION(vigil_error_name)
    FUNCTION(vigil_config_default)
    FUNCTION(vigil_validator_new)
    FUNCTION(vigil_close)
    FUNCTION(vigil_validator_free)
    FUNCTION(vigil_status_json)
    FUNCTION(vigil_string_free)
    FUNCTION(vigil_submit_block)
    FUNCTION(vigil_try_submit_block)
    FUNCTION(vigil_submit_signatures)
    FUNCTION(vigil_try_submit_signatures)
    FUNCTION(vigil_poll)
    FUNCTION(vigil_wait)
    FUNCTION(vigil_wait_timeout)
    FUNCTION(vigil_result_free)
    FUNCTION(vigil_result_kind)
    FUNCTION(vigil_result_message)
    FUNCTION(vigil_result_count)
    FUNCTION(vigil_result_verdicts)
    FUNCTION(vigil_result_block_outcome)
    FUNCTION(vigil_result_position)
    FUNCTION(vigil_result_height)
    FUNCTION(vigil_result_hash)
    FUNCTION(vigil_result_tx_count)
    FUNCTION(vigil_result_failure_count)
    FUNCTION(vigil_result_failure_rule)
    FUNCTION(vigil_result_failure_tx)
    FUNCTION(vigil_result_failure_detail)
};

int main(void) {
    CONSTANT(VIGIL_OK)
    CONSTANT(VIGIL_PENDING)
    CONSTANT(VIGIL_ERR_NULL)
    CONSTANT(VIGIL_ERR_INVALID_ARGUMENT)
    CONSTANT(VIGIL_ERR_OVERLOADED)
    CONSTANT(VIGIL_ERR_CLOSED)
    CONSTANT(VIGIL_ERR_UNKNOWN_TICKET)
    CONSTANT(VIGIL_ERR_INTERNAL)
    CONSTANT(VIGIL_RULES_ZIP215)
    CONSTANT(VIGIL_RULES_STRICT)
    CONSTANT(VIGIL_RESULT_BLOCK)
    CONSTANT(VIGIL_RESULT_SIGNATURES)
    CONSTANT(VIGIL_BLOCK_VALID)
    CONSTANT(VIGIL_BLOCK_INVALID)
    CONSTANT(VIGIL_BLOCK_MALFORMED)
    CONSTANT(VIGIL_BLOCK_EXTRA_BYTES)
    CONSTANT(VIGIL_BLOCK_TOO_MANY_CHAINS)

    SIZE(vigil_config)
    FIELD(vigil_config, chain_id)
    FIELD(vigil_config, rules)
    FIELD(vigil_config, max_batch)
    FIELD(vigil_config, max_delay_us)
    FIELD(vigil_config, max_queue_bytes)
    FIELD(vigil_config, max_chains)
    SIZE(vigil_sig)
    FIELD(vigil_sig, public_key)
    FIELD(vigil_sig, signature)
    FIELD(vigil_sig, message)
    FIELD(vigil_sig, message_len)

    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        printf("function %s %d\n", functions[i].name, functions[i].address != NULL);
    }
    return 0;
}
