// Keyed BLAKE3 of many independent messages, one invocation a message.
//
// Inputs: `words` holds every message, each padded with zeros to a whole
// number of 64-byte blocks (at least one) and packed little-endian into
// u32s; `descs[i]` = (first word of message i, its length in bytes).
// Output: 8 words (32 bytes, little-endian) per message. Any length: chunks
// of 1 KiB are merged in the BLAKE3 tree with a chaining-value stack.

struct Params {
    key: array<vec4<u32>, 2>,
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> words: array<u32>;
@group(0) @binding(1) var<storage, read> descs: array<vec2<u32>>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const CHUNK_START: u32 = 1u;
const CHUNK_END: u32 = 2u;
const PARENT: u32 = 4u;
const ROOT: u32 = 8u;
const KEYED_HASH: u32 = 16u;
const CHUNK_LEN: u32 = 1024u;
// 2^16 chunks (64 MiB) at most per message.
const MAX_DEPTH: u32 = 17u;

const IV0: u32 = 0x6A09E667u;
const IV1: u32 = 0xBB67AE85u;
const IV2: u32 = 0x3C6EF372u;
const IV3: u32 = 0xA54FF53Au;

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

var<private> v: array<u32, 16>;
var<private> m: array<u32, 16>;

fn g(a: u32, b: u32, c: u32, d: u32, mx: u32, my: u32) {
    v[a] = v[a] + v[b] + mx;
    v[d] = rotr(v[d] ^ v[a], 16u);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 12u);
    v[a] = v[a] + v[b] + my;
    v[d] = rotr(v[d] ^ v[a], 8u);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 7u);
}

fn permute() {
    let t = m;
    m[0] = t[2]; m[1] = t[6]; m[2] = t[3]; m[3] = t[10];
    m[4] = t[7]; m[5] = t[0]; m[6] = t[4]; m[7] = t[13];
    m[8] = t[1]; m[9] = t[11]; m[10] = t[12]; m[11] = t[5];
    m[12] = t[9]; m[13] = t[14]; m[14] = t[15]; m[15] = t[8];
}

// Compresses block `m` into chaining value `cv`; returns the new chaining
// value (the first 8 output words).
fn compress(cv: array<u32, 8>, counter_lo: u32, counter_hi: u32, block_len: u32, flags: u32) -> array<u32, 8> {
    for (var i = 0u; i < 8u; i++) {
        v[i] = cv[i];
    }
    v[8] = IV0; v[9] = IV1; v[10] = IV2; v[11] = IV3;
    v[12] = counter_lo; v[13] = counter_hi; v[14] = block_len; v[15] = flags;
    for (var r = 0u; r < 7u; r++) {
        g(0u, 4u, 8u, 12u, m[0], m[1]);
        g(1u, 5u, 9u, 13u, m[2], m[3]);
        g(2u, 6u, 10u, 14u, m[4], m[5]);
        g(3u, 7u, 11u, 15u, m[6], m[7]);
        g(0u, 5u, 10u, 15u, m[8], m[9]);
        g(1u, 6u, 11u, 12u, m[10], m[11]);
        g(2u, 7u, 8u, 13u, m[12], m[13]);
        g(3u, 4u, 9u, 14u, m[14], m[15]);
        if (r < 6u) {
            permute();
        }
    }
    var outv: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        outv[i] = v[i] ^ v[i + 8u];
    }
    return outv;
}

fn key_words() -> array<u32, 8> {
    let a = params.key[0];
    let b = params.key[1];
    return array<u32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

// Chaining value of chunk `index` of the message starting at word `base`,
// `len` bytes of it in this chunk; `root` adds ROOT to the last block.
fn chunk_cv(base: u32, index: u32, len: u32, root: bool) -> array<u32, 8> {
    var cv = key_words();
    let blocks = max(1u, (len + 63u) / 64u);
    for (var b = 0u; b < blocks; b++) {
        let w = base + index * (CHUNK_LEN / 4u) + b * 16u;
        for (var i = 0u; i < 16u; i++) {
            m[i] = words[w + i];
        }
        var flags = KEYED_HASH;
        if (b == 0u) {
            flags |= CHUNK_START;
        }
        var block_len = 64u;
        if (b == blocks - 1u) {
            flags |= CHUNK_END;
            block_len = len - b * 64u;
            if (root) {
                flags |= ROOT;
            }
        }
        cv = compress(cv, index, 0u, block_len, flags);
    }
    return cv;
}

fn parent_cv(left: array<u32, 8>, right: array<u32, 8>, root: bool) -> array<u32, 8> {
    for (var i = 0u; i < 8u; i++) {
        m[i] = left[i];
        m[i + 8u] = right[i];
    }
    var flags = PARENT | KEYED_HASH;
    if (root) {
        flags |= ROOT;
    }
    return compress(key_words(), 0u, 0u, 64u, flags);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.count) {
        return;
    }
    let base = descs[i].x;
    let len = descs[i].y;
    let chunks = max(1u, (len + CHUNK_LEN - 1u) / CHUNK_LEN);
    var result: array<u32, 8>;
    if (chunks == 1u) {
        result = chunk_cv(base, 0u, len, true);
    } else {
        // Every chunk but the last goes on the stack, merging complete
        // subtrees as BLAKE3 does; the last is folded in from the top.
        var stack: array<array<u32, 8>, MAX_DEPTH>;
        var depth = 0u;
        for (var c = 0u; c + 1u < chunks; c++) {
            var cv = chunk_cv(base, c, CHUNK_LEN, false);
            var total = c + 1u;
            while ((total & 1u) == 0u) {
                depth -= 1u;
                cv = parent_cv(stack[depth], cv, false);
                total >>= 1u;
            }
            stack[depth] = cv;
            depth += 1u;
        }
        var cv = chunk_cv(base, chunks - 1u, len - (chunks - 1u) * CHUNK_LEN, false);
        while (depth > 1u) {
            depth -= 1u;
            cv = parent_cv(stack[depth], cv, false);
        }
        result = parent_cv(stack[0], cv, true);
    }
    for (var k = 0u; k < 8u; k++) {
        out[i * 8u + k] = result[k];
    }
}
