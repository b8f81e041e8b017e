//! vigil's WGSL compute shaders, as source strings for `vigil-engine`'s GPU
//! backend: one constant per file, so the shaders package with the crate.
//!
//! The curve code is assembled at load time: one limb layer
//! ([`FIELD25519_U32`] or [`FIELD25519_U64`]), then [`FIELD25519`] and
//! [`ED25519`].

#![warn(missing_docs)]
#![doc = include_str!("../README.md")]
#![no_std]

/// Keyed BLAKE3 of many messages, one invocation a message.
pub const BLAKE3: &str = include_str!("../blake3.wgsl");
/// Arithmetic mod 2^255 − 19 over a limb layer: inversion, square roots.
pub const FIELD25519: &str = include_str!("../field25519.wgsl");
/// The limb layer on 16 limbs of 16 bits in `u32` (every adapter).
pub const FIELD25519_U32: &str = include_str!("../field25519_u32.wgsl");
/// The limb layer on `u64` (adapters with `SHADER_INT64`).
pub const FIELD25519_U64: &str = include_str!("../field25519_u64.wgsl");
/// Points, decompression, the double-base multiplication, zip215 and
/// strict checks.
pub const ED25519: &str = include_str!("../ed25519.wgsl");
