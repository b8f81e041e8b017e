/*
 * example.c: libvigil from C.
 *
 * Verifies two signatures (RFC 8032 test 1, and the same signature with one
 * bit flipped) and, when a path is given, the one block in that file; prints
 * the verdicts and the validator's status; exits 0 only when the verdicts
 * are the expected ones (1, 0, and a valid block).
 *
 *   cargo build --release -p vigil-capi
 *   cc -std=c99 -Wall -Wextra -I capi/include examples/c/example.c \
 *      -L target/release -lvigil -Wl,-rpath,target/release -o example
 *   ./example [block.vblk]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

/* Decodes 2*n hex digits into out; 0 on a bad digit. */
static int unhex(const char *hex, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            return 0;
        }
        out[i] = (uint8_t)byte;
    }
    return 1;
}

/* The whole file, malloc'd, or NULL. */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *bigger = realloc(buf, cap);
            if (bigger == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Takes the ticket's result: polls, then waits a millisecond at a time. */
static int take(vigil_validator *v, uint64_t ticket, vigil_result **out) {
    int code = vigil_poll(v, ticket, out);
    while (code == VIGIL_PENDING) {
        code = vigil_wait_timeout(v, ticket, 1000, out);
    }
    return code;
}

int main(int argc, char **argv) {
    int ok = 1;

    vigil_config cfg;
    vigil_config_default(&cfg);
    cfg.rules = VIGIL_RULES_ZIP215;
    vigil_validator *v = vigil_validator_new(&cfg);
    if (v == NULL) {
        fprintf(stderr, "vigil_validator_new failed\n");
        return 2;
    }

    /* RFC 8032 section 7.1, test 1 (an empty message). */
    uint8_t public_key[32], signature[64], flipped[64];
    if (!unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", public_key, 32) ||
        !unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
               "1cf9b46bd25bf5f0595bbe24655141438e7a100b",
               signature, 64)) {
        fprintf(stderr, "bad test vector\n");
        return 2;
    }
    memcpy(flipped, signature, sizeof flipped);
    flipped[0] ^= 0x01;
    vigil_sig sigs[2] = {
        {public_key, signature, NULL, 0},
        {public_key, flipped, NULL, 0},
    };
    const uint8_t expected[2] = {1, 0};

    uint64_t sig_ticket = 0, block_ticket = 0;
    int code = vigil_submit_signatures(v, VIGIL_RULES_ZIP215, sigs, 2, &sig_ticket);
    if (code != VIGIL_OK) {
        fprintf(stderr, "vigil_submit_signatures: %s\n", vigil_error_name(code));
        return 2;
    }

    if (argc > 1) {
        size_t len = 0;
        uint8_t *block = read_file(argv[1], &len);
        if (block == NULL) {
            fprintf(stderr, "cannot read %s\n", argv[1]);
            return 2;
        }
        code = vigil_submit_block(v, block, len, &block_ticket);
        free(block); /* copied by vigil_submit_block */
        if (code != VIGIL_OK) {
            fprintf(stderr, "vigil_submit_block: %s\n", vigil_error_name(code));
            return 2;
        }
    }

    /* The signatures. */
    vigil_result *r = NULL;
    code = take(v, sig_ticket, &r);
    if (code != VIGIL_OK) {
        fprintf(stderr, "taking the signature ticket: %s\n", vigil_error_name(code));
        return 2;
    }
    size_t count = vigil_result_count(r);
    const uint8_t *verdicts = vigil_result_verdicts(r);
    if (vigil_result_kind(r) != VIGIL_RESULT_SIGNATURES || count != 2 || verdicts == NULL) {
        fprintf(stderr, "unexpected signature result\n");
        ok = 0;
    } else {
        for (size_t i = 0; i < count; i++) {
            printf("signature %zu: %s\n", i, verdicts[i] ? "valid" : "invalid");
            if (verdicts[i] != expected[i]) {
                ok = 0;
            }
        }
    }
    printf("signatures: %s\n", vigil_result_message(r));
    vigil_result_free(r);

    /* A ticket is taken once. */
    code = vigil_poll(v, sig_ticket, &r);
    printf("taking it again: %s\n", vigil_error_name(code));
    if (code != VIGIL_ERR_UNKNOWN_TICKET) {
        ok = 0;
    }

    /* The block. */
    if (argc > 1) {
        code = vigil_wait(v, block_ticket, &r);
        if (code != VIGIL_OK) {
            fprintf(stderr, "vigil_wait: %s\n", vigil_error_name(code));
            return 2;
        }
        int outcome = vigil_result_block_outcome(r);
        if (outcome == VIGIL_BLOCK_VALID || outcome == VIGIL_BLOCK_INVALID) {
            char hash[65];
            const uint8_t *h = vigil_result_hash(r);
            for (int i = 0; i < 32; i++) {
                snprintf(hash + 2 * i, 3, "%02x", h[i]);
            }
            printf("block: %s height=%" PRIu64 " position=%" PRIu64 " txs=%" PRIu32 " hash=%s\n",
                   outcome == VIGIL_BLOCK_VALID ? "valid" : "invalid", vigil_result_height(r),
                   vigil_result_position(r), vigil_result_tx_count(r), hash);
            for (size_t i = 0; i < vigil_result_failure_count(r); i++) {
                int64_t tx = vigil_result_failure_tx(r, i);
                if (tx >= 0) {
                    printf("  failure: %s (tx %" PRId64 "): %s\n", vigil_result_failure_rule(r, i), tx,
                           vigil_result_failure_detail(r, i));
                } else {
                    printf("  failure: %s: %s\n", vigil_result_failure_rule(r, i),
                           vigil_result_failure_detail(r, i));
                }
            }
        } else {
            printf("block: not checked (outcome %d)\n", outcome);
        }
        printf("block message: %s\n", vigil_result_message(r));
        if (outcome != VIGIL_BLOCK_VALID) {
            ok = 0;
        }
        vigil_result_free(r);
    }

    char *status = vigil_status_json(v);
    if (status == NULL) {
        fprintf(stderr, "vigil_status_json failed\n");
        ok = 0;
    } else {
        printf("status: %s\n", status);
        vigil_string_free(status);
    }

    vigil_validator_free(v);
    printf("result: %s\n", ok ? "OK" : "FAIL");
    return ok ? 0 : 1;
}
