//! Edwards25519 in lanes: point formulas, decompression and the
//! verification equation, one signature per lane, generic over the vector
//! type. Formulas are curve25519-dalek's (extended coordinates, a = −1).

use super::lane_field::LaneField;
use super::vec64::Vec64;

/// d = −121665/121666.
pub(crate) const D: [u8; 32] = [
    163, 120, 89, 19, 202, 77, 235, 117, 171, 216, 65, 65, 77, 10, 112, 0, 152, 232, 121, 119, 121, 64, 199, 140, 115,
    254, 111, 43, 238, 108, 3, 82,
];
/// 2d.
pub(crate) const D2: [u8; 32] = [
    89, 241, 178, 38, 148, 155, 214, 235, 86, 177, 131, 130, 154, 20, 224, 0, 48, 209, 243, 238, 242, 128, 142, 25,
    231, 252, 223, 86, 220, 217, 6, 36,
];
/// √−1 = 2^((p−1)/4).
pub(crate) const SQRT_M1: [u8; 32] = [
    176, 160, 14, 74, 39, 27, 238, 196, 120, 228, 47, 173, 6, 24, 67, 47, 167, 215, 251, 61, 153, 0, 77, 43, 11, 223,
    193, 79, 128, 36, 131, 43,
];

/// (X : Y : Z : T) with x = X/Z, y = Y/Z, xy = T/Z.
#[derive(Clone, Copy)]
pub(crate) struct Ext<F> {
    pub x: F,
    pub y: F,
    pub z: F,
    pub t: F,
}

/// ((X : Z), (Y : T)): what additions and doublings produce.
#[derive(Clone, Copy)]
pub(crate) struct Completed<F> {
    x: F,
    y: F,
    z: F,
    t: F,
}

/// (Y + X, Y − X, Z, 2d·T): an addend.
#[derive(Clone, Copy)]
pub(crate) struct Cached<F> {
    pub ypx: F,
    pub ymx: F,
    pub z: F,
    pub t2d: F,
}

/// (y + x, y − x, 2d·xy): an affine addend (Z = 1).
#[derive(Clone, Copy)]
pub(crate) struct Niels<F> {
    pub ypx: F,
    pub ymx: F,
    pub xy2d: F,
}

impl<F: LaneField> Ext<F> {
    #[inline(always)]
    pub fn identity() -> Self {
        Ext { x: F::zero(), y: F::one(), z: F::one(), t: F::zero() }
    }

    #[inline(always)]
    pub fn to_cached(self) -> Cached<F> {
        Cached { ypx: self.y.add(&self.x), ymx: self.y.sub(&self.x), z: self.z, t2d: self.t.mul(&F::constant(&D2)) }
    }

    /// 2·self (T unused).
    #[inline(always)]
    pub fn double(&self) -> Completed<F> {
        double(&self.x, &self.y, &self.z)
    }

    #[inline(always)]
    pub fn add(&self, q: &Cached<F>) -> Completed<F> {
        let pp = self.y.add(&self.x).mul(&q.ypx);
        let mm = self.y.sub(&self.x).mul(&q.ymx);
        let tt2d = self.t.mul(&q.t2d);
        let zz = self.z.mul(&q.z);
        let zz2 = zz.add(&zz);
        Completed { x: pp.sub(&mm), y: pp.add(&mm), z: zz2.add(&tt2d).carry(), t: zz2.sub(&tt2d) }
    }

    #[inline(always)]
    pub fn add_niels(&self, q: &Niels<F>) -> Completed<F> {
        let pp = self.y.add(&self.x).mul(&q.ypx);
        let mm = self.y.sub(&self.x).mul(&q.ymx);
        let txy2d = self.t.mul(&q.xy2d);
        let z2 = self.z.add(&self.z);
        Completed { x: pp.sub(&mm), y: pp.add(&mm), z: z2.add(&txy2d).carry(), t: z2.sub(&txy2d) }
    }

    /// All ones in lanes holding the identity (X = 0, Y = Z).
    #[inline(always)]
    pub fn is_identity(&self) -> F::V {
        self.x.is_zero().and(self.y.equals(&self.z))
    }

    /// [8]·self.
    #[inline(always)]
    pub fn mul_by_cofactor(&self) -> Self {
        let (x, y, z) = self.double().to_projective();
        let (x, y, z) = double(&x, &y, &z).to_projective();
        double(&x, &y, &z).to_ext()
    }
}

/// 2·(X : Y : Z).
#[inline(always)]
pub(crate) fn double<F: LaneField>(x: &F, y: &F, z: &F) -> Completed<F> {
    let xx = x.square();
    let yy = y.square();
    let zz = z.square();
    let zz2 = zz.add(&zz);
    let xpy2 = x.add(y).square();
    let yy_plus_xx = yy.add(&xx);
    let yy_minus_xx = yy.sub(&xx);
    Completed { x: xpy2.sub(&yy_plus_xx), y: yy_plus_xx, z: yy_minus_xx, t: zz2.sub(&yy_minus_xx) }
}

impl<F: LaneField> Completed<F> {
    #[inline(always)]
    pub fn to_ext(self) -> Ext<F> {
        Ext { x: self.x.mul(&self.t), y: self.y.mul(&self.z), z: self.z.mul(&self.t), t: self.x.mul(&self.y) }
    }

    /// (X : Y : Z) only, for a doubling next.
    #[inline(always)]
    pub fn to_projective(self) -> (F, F, F) {
        (self.x.mul(&self.t), self.y.mul(&self.z), self.z.mul(&self.t))
    }
}

impl<F: LaneField> Cached<F> {
    #[inline(always)]
    pub fn identity() -> Self {
        Cached { ypx: F::one(), ymx: F::one(), z: F::one(), t2d: F::zero() }
    }

    #[inline(always)]
    pub fn neg(&self) -> Self {
        Cached { ypx: self.ymx, ymx: self.ypx, z: self.z, t2d: self.t2d.neg() }
    }
}

/// Decompresses one encoding per lane as curve25519-dalek does: y is the low
/// 255 bits (taken mod p, so non-canonical y is accepted), x the root of
/// (y² − 1)/(dy² + 1) whose parity is the top bit (a "negative zero" is
/// accepted as zero). Returns the point and all ones in lanes that decode.
#[inline(always)]
pub(crate) fn decompress<F: LaneField>(y_bytes: &[[u8; 32]], sign: F::V) -> (Ext<F>, F::V) {
    let y = F::from_bytes(y_bytes);
    let one = F::one();
    let yy = y.square();
    let u = yy.sub(&one);
    let v = yy.mul(&F::constant(&D)).add(&one);
    // sqrt_ratio_i(u, v): r = u·v³·(u·v⁷)^((p−5)/8).
    let v3 = v.square().mul(&v);
    let v7 = v3.square().mul(&v);
    let mut r = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
    let check = v.mul(&r.square());
    let minus_u = u.neg();
    let sqrt_m1 = F::constant(&SQRT_M1);
    let correct = check.equals(&u);
    let flipped = check.equals(&minus_u);
    let flipped_i = check.equals(&minus_u.mul(&sqrt_m1));
    r = r.blend(&r.mul(&sqrt_m1), flipped.or(flipped_i));
    // The non-negative root, then the encoded sign.
    r = r.blend(&r.neg(), r.is_negative());
    let x = r.blend(&r.neg(), sign);
    (Ext { x, y, z: one, t: x.mul(&y) }, correct.or(flipped))
}
