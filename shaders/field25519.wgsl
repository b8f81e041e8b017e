// Arithmetic in GF(p), p = 2^255 - 19, using only u32.
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

fn fe_zero() -> Fe {
    return Fe();
}

fn fe_one() -> Fe {
    var r = Fe();
    r[0] = 1u;
    return r;
}

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

fn fe_neg(a: Fe) -> Fe {
    return fe_sub(fe_zero(), a);
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

fn fe_eq(a: Fe, b: Fe) -> bool {
    let x = fe_canon(a);
    let y = fe_canon(b);
    var diff = 0u;
    for (var i = 0u; i < 16u; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0u;
}

fn fe_is_zero(a: Fe) -> bool {
    return fe_eq(a, fe_zero());
}

fn fe_is_negative(a: Fe) -> bool {
    return (fe_canon(a)[0] & 1u) == 1u;
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

// x^(2^250 - 1) by the usual addition chain, then either 1/x = x^(p-2)
// (x^(2^250-1))^(2^5) * x^11 or x^((p-5)/8) = (x^(2^250-1))^(2^2) * x. The
// chain is a table of steps (square n times, multiply by a saved value, save
// the result) run by one loop, so the shader holds one squaring and one
// multiplication here however the compiler inlines (llvmpipe inlines every
// call and unrolls small loops: code size, and compile time, grow with the
// number of call sites).
const POW_SQ = array<u32, 12>(1u, 2u, 0u, 1u, 5u, 10u, 20u, 10u, 50u, 100u, 50u, 5u);
const POW_MUL = array<u32, 12>(255u, 0u, 1u, 2u, 1u, 2u, 0u, 2u, 1u, 0u, 1u, 3u);
const POW_SAVE = array<u32, 12>(1u, 2u, 3u, 1u, 2u, 0u, 255u, 1u, 0u, 255u, 255u, 255u);

fn fe_pow_special(x: Fe, p58: bool) -> Fe {
    var saved: array<Fe, 5>;
    saved[0] = x;
    saved[4] = x;
    var cur = x;
    for (var st = 0u; st < 12u; st++) {
        var n = POW_SQ[st];
        var m = POW_MUL[st];
        let sv = POW_SAVE[st];
        if (st == 11u && p58) {
            n = 2u;
            m = 4u;
        }
        for (var i = 0u; i < n; i++) {
            cur = fe_sq(cur);
        }
        if (m != 255u) {
            cur = fe_mul(cur, saved[m]);
        }
        if (sv != 255u) {
            saved[sv] = cur;
        }
    }
    return cur;
}

// x^(p-2) = 1/x (0 for 0).
fn fe_invert(x: Fe) -> Fe {
    return fe_pow_special(x, false);
}

// x^((p-5)/8) = x^(2^252 - 3).
fn fe_pow_p58(x: Fe) -> Fe {
    return fe_pow_special(x, true);
}

struct SqrtRatio {
    ok: bool,
    r: Fe,
}

// curve25519-dalek's FieldElement::sqrt_ratio_i: (true, +sqrt(u/v)) if u/v
// is a square (u = 0 included), else (false, something); r is
// non-negative.
fn fe_sqrt_ratio_i(u: Fe, v: Fe) -> SqrtRatio {
    let v3 = fe_mul(fe_sq(v), v);
    let v7 = fe_mul(fe_sq(v3), v);
    var r = fe_mul(fe_mul(u, v3), fe_pow_p58(fe_mul(u, v7)));
    let check = fe_mul(v, fe_sq(r));
    let neg_u = fe_neg(u);
    let correct = fe_eq(check, u);
    let flipped = fe_eq(check, neg_u);
    let flipped_i = fe_eq(check, fe_mul(neg_u, FE_SQRT_M1));
    if (flipped || flipped_i) {
        r = fe_mul(r, FE_SQRT_M1);
    }
    if (fe_is_negative(r)) {
        r = fe_neg(r);
    }
    return SqrtRatio(correct || flipped, r);
}
