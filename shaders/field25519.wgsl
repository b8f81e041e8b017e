// GF(2^255 - 19) on top of a limb layer (field25519_u32.wgsl or
// field25519_u64.wgsl, prepended at load time): comparisons, the fixed
// exponentiations and sqrt_ratio_i, written only in terms of the limb
// layer's functions (fe_add, fe_sub, fe_mul, fe_sq, fe_canon,
// fe_from_words, fe_to_words) and constants (FE_SQRT_M1).

fn fe_zero() -> Fe {
    return Fe();
}

fn fe_one() -> Fe {
    var r = Fe();
    r[0] = 1u;
    return r;
}

fn fe_neg(a: Fe) -> Fe {
    return fe_sub(fe_zero(), a);
}

fn fe_eq(a: Fe, b: Fe) -> bool {
    let x = fe_to_words(a);
    let y = fe_to_words(b);
    var diff = 0u;
    for (var i = 0u; i < 8u; i++) {
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

// x^(2^250 - 1) by the usual addition chain, then either 1/x = x^(p-2)
// (x^(2^250-1))^(2^5) * x^11 or x^((p-5)/8) = (x^(2^250-1))^(2^2) * x. The
// chain is a table of steps (square n times, multiply by a saved value, save
// the result) run by one loop, so the shader holds one squaring and one
// multiplication here however the compiler inlines (llvmpipe inlines every
// call and unrolls small loops: code size, and compile time, grow with the
// number of call sites). Indices are in range by construction (the shader
// is built without wgpu's clamping): m and sv are table entries, 0..4 or
// 255, and 255 is never used as an index.
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
