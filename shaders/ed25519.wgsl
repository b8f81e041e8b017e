// ed25519 points, decompression, scalar multiplication and the two verdicts
// (zip215, strict). Appended to field25519.wgsl at load time.
//
// Points are extended twisted Edwards coordinates (X:Y:Z:T), x = X/Z,
// y = Y/Z, T = XY/Z, on -x^2 + y^2 = 1 + d x^2 y^2. Addition is
// add-2008-hwcd-3 (complete, k = 2d; it doubles too, so it is the only point
// formula). Code size matters on llvmpipe, which inlines every call: each
// kernel reaches pt_add from as few call sites as possible (loops over
// steps rather than straight-line calls).

struct Pt {
    X: Fe,
    Y: Fe,
    Z: Fe,
    T: Fe,
}

const FE_BX: Fe = Fe(0xd51au, 0x8f25u, 0x2d60u, 0xc956u, 0xa7b2u, 0x9525u, 0xc760u, 0x692cu, 0xdc5cu, 0xfdd6u, 0xe231u, 0xc0a4u, 0x53feu, 0xcd6eu, 0x36d3u, 0x2169u);
const FE_BY: Fe = Fe(0x6658u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u, 0x6666u);
const FE_BT: Fe = Fe(0xdda3u, 0xa5b7u, 0x8ab3u, 0x6ddeu, 0x52f5u, 0x7751u, 0x9f80u, 0x20f0u, 0xe37du, 0x64abu, 0x4e8eu, 0x66eau, 0x7665u, 0xd78bu, 0x5f0fu, 0x6787u);

fn pt_identity() -> Pt {
    return Pt(fe_zero(), fe_one(), fe_one(), fe_zero());
}

fn pt_base() -> Pt {
    return Pt(FE_BX, FE_BY, fe_one(), FE_BT);
}

fn pt_neg(p: Pt) -> Pt {
    return Pt(fe_neg(p.X), p.Y, p.Z, fe_neg(p.T));
}

fn pt_add(p: Pt, q: Pt) -> Pt {
    var l: array<Fe, 4>;
    var r: array<Fe, 4>;
    var m: array<Fe, 4>;
    l[0] = fe_sub(p.Y, p.X);
    r[0] = fe_sub(q.Y, q.X);
    l[1] = fe_add(p.Y, p.X);
    r[1] = fe_add(q.Y, q.X);
    l[2] = p.T;
    r[2] = q.T;
    l[3] = p.Z;
    r[3] = q.Z;
    for (var j = 0u; j < 4u; j++) {
        m[j] = fe_mul(l[j], r[j]);
    }
    let a = m[0];
    let b = m[1];
    let c = fe_mul(m[2], FE_D2);
    let d = fe_add(m[3], m[3]);
    let e = fe_sub(b, a);
    let f = fe_sub(d, c);
    let g = fe_add(d, c);
    let h = fe_add(b, a);
    l = array<Fe, 4>(e, g, f, e);
    r = array<Fe, 4>(f, h, g, h);
    for (var j = 0u; j < 4u; j++) {
        m[j] = fe_mul(l[j], r[j]);
    }
    return Pt(m[0], m[1], m[2], m[3]);
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

fn scalar_bit(s: array<u32, 8>, i: u32) -> u32 {
    return (s[i >> 5u] >> (i & 31u)) & 1u;
}

// [a]P + [b]Q by joint double-and-add over bits 255..0 (step 0 makes
// P + Q; then per bit a doubling and, unless both bits are 0, an addition).
fn pt_double_scalar_mul(a: array<u32, 8>, p: Pt, b: array<u32, 8>, q: Pt) -> Pt {
    var tbl: array<Pt, 4>;
    tbl[1] = p;
    tbl[2] = q;
    var acc = pt_identity();
    for (var st = 0u; st < 513u; st++) {
        var x = acc;
        var y = acc;
        if (st == 0u) {
            x = p;
            y = q;
        } else if (((st - 1u) & 1u) == 1u) {
            let i = 255u - ((st - 1u) >> 1u);
            let sel = scalar_bit(a, i) | (scalar_bit(b, i) << 1u);
            if (sel == 0u) {
                continue;
            }
            y = tbl[sel];
        }
        let r = pt_add(x, y);
        if (st == 0u) {
            tbl[3] = r;
        } else {
            acc = r;
        }
    }
    return acc;
}

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
@compute @workgroup_size(64)
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
    let p = pt_double_scalar_mul(s, pt_base(), k, pt_neg(a));
    // Step 0: pts[0] = P - R; then [8] of each of P - R, A, R.
    for (var st = 0u; st < 10u; st++) {
        if (st == 0u) {
            pts[0] = pt_add(p, pt_neg(r));
        } else {
            let j = (st - 1u) % 3u;
            pts[j] = pt_add(pts[j], pts[j]);
        }
    }
    var verdict = 0u;
    if (pt_is_identity(pts[0])) {
        verdict |= 1u;
    }
    if (!pt_is_identity(pts[1]) && !pt_is_identity(pts[2]) && words_eq(pt_compress(p), r_words)) {
        verdict |= 2u;
    }
    outputs[i] = verdict;
}

// Debug: field ops on pairs (a, b) of 8-word encodings (bit 255 ignored).
// Out per pair, 8 words each, canonical: a+b, a-b, a*b, a^2, 1/a,
// sqrt_ratio_i(a, b).r, then one word sqrt_ratio_i(a, b).ok, 7 words 0.
@compute @workgroup_size(64)
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
@compute @workgroup_size(64)
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
    pts[3] = pt_double_scalar_mul(a, pt_base(), b, d.p);
    pts[4] = d.p;
    for (var st = 0u; st < 5u; st++) {
        if (st == 0u) {
            pts[1] = pt_add(d.p, d.p);
        } else if (st == 1u) {
            pts[2] = pt_add(d.p, pt_base());
        } else {
            pts[4] = pt_add(pts[4], pts[4]);
        }
    }
    for (var j = 0u; j < 5u; j++) {
        store8(o + 8u + 8u * j, pt_compress(pts[j]));
    }
    flag[0] = select(0u, 1u, pt_is_identity(pts[4]));
    store8(o + 48u, flag);
}
