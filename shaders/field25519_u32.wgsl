// Arithmetic in GF(p), p = 2^255 - 19, using only u32: the limb layer for
// adapters without SHADER_INT64 (field25519_u64.wgsl is the other one;
// field25519.wgsl builds on either).
//
// Representation: 16 limbs of 16 bits, little-endian (limb i has weight
// 2^(16 i)). Between operations every limb is < 2^16, so a value is any
// integer < 2^256 ("weakly reduced": it may be >= p); fe_canon gives the
// unique representative < p, needed before comparing or encoding.
//
// Carry bounds:
// - fe_norm takes limbs < 2^31: one carry pass leaves a carry-out c < 2^16;
//   c * 2^256 = c * 38 (mod p) is folded into limb 0 (38 c < 2^22), a
//   second pass leaves a carry-out of at most 1 (the value is then
//   < 2^256 + 2^22), and a second fold of at most 38 cannot carry again
//   (after a wrap the low part is < 2^22). So two folds always finish.
// - fe_add: limbs < 2^17. fe_sub adds 4p written with every limb >= 2^16 - 1
//   (0x1ffb4, 0x1fffe, ..., 0xfffe) so a + 4p - b never underflows; limbs
//   < 2^18.
// - fe_mul: each 16x16 product (< 2^32) is split into its low and high 16
//   bits, added to columns i+j and i+j+1; a column receives at most 16 low
//   and 16 high halves: < 32 * 2^16 = 2^21. Carrying the 32 columns gives
//   the exact 512-bit product in 16-bit limbs; the high half times 38 is
//   added to the low half (limbs < 2^16 + 38 * 2^16 < 2^22), then fe_norm.

alias Fe = array<u32, 16>;

const FE_D: Fe = Fe(0x78a3u, 0x1359u, 0x4dcau, 0x75ebu, 0xd8abu, 0x4141u, 0x0a4du, 0x0070u, 0xe898u, 0x7779u, 0x4079u, 0x8cc7u, 0xfe73u, 0x2b6fu, 0x6ceeu, 0x5203u);
const FE_D2: Fe = Fe(0xf159u, 0x26b2u, 0x9b94u, 0xebd6u, 0xb156u, 0x8283u, 0x149au, 0x00e0u, 0xd130u, 0xeef3u, 0x80f2u, 0x198eu, 0xfce7u, 0x56dfu, 0xd9dcu, 0x2406u);
const FE_SQRT_M1: Fe = Fe(0xa0b0u, 0x4a0eu, 0x1b27u, 0xc4eeu, 0xe478u, 0xad2fu, 0x1806u, 0x2f43u, 0xd7a7u, 0x3dfbu, 0x0099u, 0x2b4du, 0xdf0bu, 0x4fc1u, 0x2480u, 0x2b83u);
// p and 4p (the latter with every limb >= 0xffff, for subtraction).
const FE_P: Fe = Fe(0xffedu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu, 0x7fffu);
const FE_4P: Fe = Fe(0x1ffb4u, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu, 0x1fffeu);

// Limbs < 2^31 in, limbs < 2^16 (value < 2^256) out.
fn fe_norm(a_in: Fe) -> Fe {
    var a = a_in;
    var c = 0u;
    for (var i = 0u; i < 16u; i++) {
        let v = a[i] + c;
        a[i] = v & 0xffffu;
        c = v >> 16u;
    }
    for (var round = 0u; round < 2u; round++) {
        c = c * 38u;
        for (var i = 0u; i < 16u; i++) {
            let v = a[i] + c;
            a[i] = v & 0xffffu;
            c = v >> 16u;
        }
    }
    return a;
}

fn fe_add(a: Fe, b: Fe) -> Fe {
    var r: Fe;
    for (var i = 0u; i < 16u; i++) {
        r[i] = a[i] + b[i];
    }
    return fe_norm(r);
}

fn fe_sub(a: Fe, b: Fe) -> Fe {
    var r: Fe;
    for (var i = 0u; i < 16u; i++) {
        r[i] = a[i] + FE_4P[i] - b[i];
    }
    return fe_norm(r);
}

fn fe_mul(a: Fe, b: Fe) -> Fe {
    var col: array<u32, 32>;
    for (var i = 0u; i < 16u; i++) {
        let ai = a[i];
        for (var j = 0u; j < 16u; j++) {
            let prod = ai * b[j];
            col[i + j] += prod & 0xffffu;
            col[i + j + 1u] += prod >> 16u;
        }
    }
    var c = 0u;
    for (var t = 0u; t < 32u; t++) {
        let v = col[t] + c;
        col[t] = v & 0xffffu;
        c = v >> 16u;
    }
    var r: Fe;
    for (var i = 0u; i < 16u; i++) {
        r[i] = col[i] + 38u * col[i + 16u];
    }
    return fe_norm(r);
}

fn fe_sq(a: Fe) -> Fe {
    return fe_mul(a, a);
}

// The unique representative < p. Input value < 2^256 <= 2p + 38, so at most
// two subtractions of p.
fn fe_canon(a_in: Fe) -> Fe {
    var a = a_in;
    for (var round = 0u; round < 2u; round++) {
        var t: Fe;
        var borrow = 0u;
        for (var i = 0u; i < 16u; i++) {
            let v = a[i] + 0x10000u - FE_P[i] - borrow;
            t[i] = v & 0xffffu;
            borrow = 1u - (v >> 16u);
        }
        if (borrow == 0u) {
            a = t;
        }
    }
    return a;
}

// From 8 little-endian words of an encoding; bit 255 is ignored (as
// curve25519-dalek's FieldElement::from_bytes), the value is not reduced.
fn fe_from_words(w: array<u32, 8>) -> Fe {
    var r: Fe;
    for (var i = 0u; i < 8u; i++) {
        r[2u * i] = w[i] & 0xffffu;
        r[2u * i + 1u] = w[i] >> 16u;
    }
    r[15] &= 0x7fffu;
    return r;
}

// Canonical encoding as 8 little-endian words.
fn fe_to_words(a: Fe) -> array<u32, 8> {
    let c = fe_canon(a);
    var w: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        w[i] = c[2u * i] | (c[2u * i + 1u] << 16u);
    }
    return w;
}
