// ed25519 points, decompression, scalar multiplication and the two verdicts
// (zip215, strict). Appended to a limb layer and field25519.wgsl at load
// time.
//
// Points are extended twisted Edwards coordinates (X:Y:Z:T), x = X/Z,
// y = Y/Z, T = XY/Z, on -x^2 + y^2 = 1 + d x^2 y^2. Additions take the
// second operand in "cached" form (Y-X, Y+X, 2dT, Z) and use the complete
// add-2008-hwcd-3 formula; doublings use dbl-2008-hwcd. Both are the
// formulas curve25519-dalek uses for every point, small-order ones included.
// Code size matters on llvmpipe, which inlines every call: each kernel
// reaches pt_add_cached and pt_double from as few call sites as possible
// (loops over steps rather than straight-line calls).

struct Pt {
    X: Fe,
    Y: Fe,
    Z: Fe,
    T: Fe,
}

struct Cached {
    ymx: Fe,
    ypx: Fe,
    t2d: Fe,
    z: Fe,
}

const W_BX = array<u32, 8>(0x8f25d51au, 0xc9562d60u, 0x9525a7b2u, 0x692cc760u, 0xfdd6dc5cu, 0xc0a4e231u, 0xcd6e53feu, 0x216936d3u);
const W_BY = array<u32, 8>(0x66666658u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u);
const W_BT = array<u32, 8>(0xa5b7dda3u, 0x6dde8ab3u, 0x775152f5u, 0x20f09f80u, 0x64abe37du, 0x66ea4e8eu, 0xd78b7665u, 0x67875f0fu);

fn pt_identity() -> Pt {
    return Pt(fe_zero(), fe_one(), fe_one(), fe_zero());
}

fn pt_base() -> Pt {
    return Pt(fe_from_words(W_BX), fe_from_words(W_BY), fe_one(), fe_from_words(W_BT));
}

fn pt_neg(p: Pt) -> Pt {
    return Pt(fe_neg(p.X), p.Y, p.Z, fe_neg(p.T));
}

fn to_cached(p: Pt) -> Cached {
    return Cached(fe_sub(p.Y, p.X), fe_add(p.Y, p.X), fe_mul(p.T, FE_D2), p.Z);
}

fn cached_neg(c: Cached) -> Cached {
    return Cached(c.ypx, c.ymx, fe_neg(c.t2d), c.z);
}

fn cached_identity() -> Cached {
    return Cached(fe_one(), fe_one(), fe_zero(), fe_one());
}

// The shared last step of both formulas: (E F, G H, F G, E H) as (X, Y, Z, T).
fn pt_from_efgh(e: Fe, f: Fe, g: Fe, h: Fe) -> Pt {
    let l = array<Fe, 4>(e, g, f, e);
    let r = array<Fe, 4>(f, h, g, h);
    var m: array<Fe, 4>;
    for (var j = 0u; j < 4u; j++) {
        m[j] = fe_mul(l[j], r[j]);
    }
    return Pt(m[0], m[1], m[2], m[3]);
}

// p + q, q cached: MM = (Y1-X1)(Y2-X2), PP = (Y1+X1)(Y2+X2), TT = T1 2d T2,
// ZZ2 = 2 Z1 Z2; E = PP - MM, F = ZZ2 - TT, G = ZZ2 + TT, H = PP + MM.
fn pt_add_cached(p: Pt, q: Cached) -> Pt {
    let l = array<Fe, 4>(fe_sub(p.Y, p.X), fe_add(p.Y, p.X), p.T, p.Z);
    let r = array<Fe, 4>(q.ymx, q.ypx, q.t2d, q.z);
    var m: array<Fe, 4>;
    for (var j = 0u; j < 4u; j++) {
        m[j] = fe_mul(l[j], r[j]);
    }
    let zz2 = fe_add(m[3], m[3]);
    return pt_from_efgh(fe_sub(m[1], m[0]), fe_sub(zz2, m[2]), fe_add(zz2, m[2]), fe_add(m[1], m[0]));
}

// 2p: XX = X^2, YY = Y^2, ZZ2 = 2 Z^2, S = (X+Y)^2; E = S - YY - XX,
// F = ZZ2 - (YY - XX), G = YY - XX, H = YY + XX.
fn pt_double(p: Pt) -> Pt {
    let l = array<Fe, 4>(p.X, p.Y, p.Z, fe_add(p.X, p.Y));
    var s: array<Fe, 4>;
    for (var j = 0u; j < 4u; j++) {
        s[j] = fe_sq(l[j]);
    }
    let g = fe_sub(s[1], s[0]);
    let h = fe_add(s[1], s[0]);
    return pt_from_efgh(fe_sub(s[3], h), fe_sub(fe_add(s[2], s[2]), g), g, h);
}

fn pt_is_identity(p: Pt) -> bool {
    return fe_is_zero(p.X) && fe_eq(p.Y, p.Z);
}

// Canonical compression: y with the sign of x in bit 255.
fn pt_compress(p: Pt) -> array<u32, 8> {
    let zinv = fe_invert(p.Z);
    let x = fe_mul(p.X, zinv);
    var w = fe_to_words(fe_mul(p.Y, zinv));
    if (fe_is_negative(x)) {
        w[7] |= 0x80000000u;
    }
    return w;
}

struct Decoded {
    ok: bool,
    p: Pt,
}

// curve25519-dalek's CompressedEdwardsY::decompress: y is bits 0..255 (not
// reduced, so y >= p is accepted as y mod p), x the non-negative root of
// (y^2 - 1)/(d y^2 + 1), negated when bit 255 is set (x = 0 with the bit set
// is accepted and stays 0).
fn pt_decompress(w: array<u32, 8>) -> Decoded {
    let y = fe_from_words(w);
    let yy = fe_sq(y);
    let u = fe_sub(yy, fe_one());
    let v = fe_add(fe_mul(yy, FE_D), fe_one());
    let s = fe_sqrt_ratio_i(u, v);
    var x = s.r;
    if ((w[7] >> 31u) == 1u) {
        x = fe_neg(x);
    }
    return Decoded(s.ok, Pt(x, y, fe_one(), fe_mul(x, y)));
}

// [m 256^j]B for window j < 32 and m <= 128, cached with Z = 1: 24 words
// (Y-X, Y+X, 2dT) an entry, built on the CPU (engine/src/gpu/basepoint.rs).
@group(0) @binding(3) var<storage, read> btable: array<u32>;

fn btable_fe(base: u32) -> Fe {
    var w: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        w[i] = btable[base + i];
    }
    return fe_from_words(w);
}

fn btable_entry(j: u32, m: u32) -> Cached {
    let base = (j * 129u + m) * 24u;
    return Cached(btable_fe(base), btable_fe(base + 8u), btable_fe(base + 16u), fe_one());
}

// [a]B + [b]P for scalars a, b < 2^253 (8 little-endian words each).
// b: signed radix-16 digits (-8..8) over a table of [0..8]P, Horner from
// the top digit (4 doublings a digit). a: signed radix-256 digits
// (-128..128) over the precomputed btable, one addition a digit and no
// doublings. Steps: 7 build the table, 64 take b's digits, 32 a's.
//
// The kernel is built without wgpu's index clamping, so every index here is
// in range for any input bits (non-canonical scalars included): a nibble
// plus a carry is 0..16, so carry is 0 or 1 and a b digit -8..7 (|d| <= 8 <
// 9 entries of tbl); a byte plus a carry is 0..256, so carry_a is 0 or 1 and
// an a digit -128..127, or 0 for 256 (|d| <= 128 < 129 entries a window);
// 70 - st is 0..63 for st in 7..71 and j = st - 71 is 0..31 (32 windows).
// A carry out of the top digit is dropped: only non-canonical scalars have
// one, and their verdict is the CPU's (false).
fn pt_double_scalar_mul(a: array<u32, 8>, b: array<u32, 8>, p: Pt) -> Pt {
    var digits: array<i32, 64>;
    var carry = 0i;
    for (var i = 0u; i < 64u; i++) {
        let nibble = i32((b[i >> 3u] >> ((i & 7u) * 4u)) & 15u) + carry;
        carry = (nibble + 8i) >> 4u;
        digits[i] = nibble - (carry << 4u);
    }
    var tbl: array<Cached, 9>;
    tbl[0] = cached_identity();
    tbl[1] = to_cached(p);
    var acc = p;
    var carry_a = 0i;
    for (var st = 0u; st < 103u; st++) {
        var c = tbl[1];
        var d = 0i;
        if (st >= 7u && st < 71u) {
            if (st == 7u) {
                acc = pt_identity();
            }
            for (var k = 0u; k < 4u && st > 7u; k++) {
                acc = pt_double(acc);
            }
            d = digits[70u - st];
            c = tbl[u32(abs(d))];
        } else if (st >= 71u) {
            let j = st - 71u;
            d = i32((a[j >> 2u] >> ((j & 3u) * 8u)) & 255u) + carry_a;
            carry_a = (d + 128i) >> 8u;
            d -= carry_a << 8u;
            c = btable_entry(j, u32(abs(d)));
        }
        if (d < 0i) {
            c = cached_neg(c);
        }
        acc = pt_add_cached(acc, c);
        if (st < 7u) {
            tbl[st + 2u] = to_cached(acc);
        }
    }
    return acc;
}

// Invocations per workgroup, set when the pipeline is made (tuned per
// adapter: engine/src/gpu/ed25519.rs).
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> inputs: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> outputs: array<u32>;

fn load8(base: u32) -> array<u32, 8> {
    var w: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        w[i] = inputs[base + i];
    }
    return w;
}

fn store8(base: u32, w: array<u32, 8>) {
    for (var i = 0u; i < 8u; i++) {
        outputs[base + i] = w[i];
    }
}

fn words_eq(a: array<u32, 8>, b: array<u32, 8>) -> bool {
    var diff = 0u;
    for (var i = 0u; i < 8u; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0u;
}

// One signature: 32 words in (A, R, S, k as 8 little-endian words each; S
// canonical and k = SHA-512(R || A || M) mod L, both from the CPU), one word
// out: bit 0 the zip215 verdict, bit 1 the strict verdict.
@compute @workgroup_size(WORKGROUP_SIZE)
fn verify(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.count) {
        return;
    }
    let base = i * 32u;
    let a_words = load8(base);
    let r_words = load8(base + 8u);
    let s = load8(base + 16u);
    let k = load8(base + 24u);
    var pts: array<Pt, 3>;
    var ok = true;
    for (var j = 0u; j < 2u; j++) {
        var enc = r_words;
        if (j == 0u) {
            enc = a_words;
        }
        let d = pt_decompress(enc);
        ok = ok && d.ok;
        pts[j + 1u] = d.p;
    }
    if (!ok) {
        outputs[i] = 0u;
        return;
    }
    let a = pts[1];
    let r = pts[2];
    // P = [S]B - [k]A.
    let p = pt_double_scalar_mul(s, k, pt_neg(a));
    // [8] of each of P - R, A, R.
    pts[0] = pt_add_cached(p, cached_neg(to_cached(r)));
    for (var st = 0u; st < 9u; st++) {
        let j = st % 3u;
        pts[j] = pt_double(pts[j]);
    }
    var verdict = 0u;
    if (pt_is_identity(pts[0])) {
        verdict |= 1u;
    }
    // Strict: compress(P) == R's bytes, without an inversion. R is affine
    // (Z = 1) and decompress(compress(R)) = R, so compress(P) == R's bytes
    // exactly when R's bytes are R's canonical encoding (y reduced, the
    // sign bit that of x) and P == R as points (X_P = x_R Z_P and
    // Y_P = y_R Z_P).
    var r_canonical = fe_to_words(r.Y);
    if (fe_is_negative(r.X)) {
        r_canonical[7] |= 0x80000000u;
    }
    let p_is_r = fe_eq(p.X, fe_mul(r.X, p.Z)) && fe_eq(p.Y, fe_mul(r.Y, p.Z));
    if (!pt_is_identity(pts[1]) && !pt_is_identity(pts[2]) && words_eq(r_canonical, r_words) && p_is_r) {
        verdict |= 2u;
    }
    outputs[i] = verdict;
}

// Debug: field ops on pairs (a, b) of 8-word encodings (bit 255 ignored).
// Out per pair, 8 words each, canonical: a+b, a-b, a*b, a^2, 1/a,
// sqrt_ratio_i(a, b).r, then one word sqrt_ratio_i(a, b).ok, 7 words 0.
@compute @workgroup_size(WORKGROUP_SIZE)
fn debug_field(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.count) {
        return;
    }
    let a = fe_from_words(load8(i * 16u));
    let b = fe_from_words(load8(i * 16u + 8u));
    let o = i * 56u;
    store8(o, fe_to_words(fe_add(a, b)));
    store8(o + 8u, fe_to_words(fe_sub(a, b)));
    store8(o + 16u, fe_to_words(fe_mul(a, b)));
    store8(o + 24u, fe_to_words(fe_sq(a)));
    store8(o + 32u, fe_to_words(fe_invert(a)));
    let s = fe_sqrt_ratio_i(a, b);
    store8(o + 40u, fe_to_words(s.r));
    var flag: array<u32, 8>;
    flag[0] = select(0u, 1u, s.ok);
    store8(o + 48u, flag);
}

// Debug: points. In per item: an encoding E and two scalars a, b (24
// words). Out per item (8 words each): word 0 of the first block is
// decompress(E).ok; then compress(P), compress(2P), compress(P + B),
// compress([a]B + [b]P), compress([8]P), and a block whose word 0 is
// is_identity([8]P).
@compute @workgroup_size(WORKGROUP_SIZE)
fn debug_point(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.count) {
        return;
    }
    let e = load8(i * 24u);
    let a = load8(i * 24u + 8u);
    let b = load8(i * 24u + 16u);
    let d = pt_decompress(e);
    let o = i * 56u;
    var flag: array<u32, 8>;
    flag[0] = select(0u, 1u, d.ok);
    store8(o, flag);
    // P, 2P, P + B, [a]B + [b]P, [8]P.
    var pts: array<Pt, 5>;
    pts[0] = d.p;
    pts[1] = pt_double(d.p);
    pts[2] = pt_add_cached(d.p, to_cached(pt_base()));
    pts[3] = pt_double_scalar_mul(a, b, d.p);
    pts[4] = d.p;
    for (var st = 0u; st < 3u; st++) {
        pts[4] = pt_double(pts[4]);
    }
    for (var j = 0u; j < 5u; j++) {
        store8(o + 8u + 8u * j, pt_compress(pts[j]));
    }
    flag[0] = select(0u, 1u, pt_is_identity(pts[4]));
    store8(o + 48u, flag);
}
