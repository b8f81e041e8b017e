//! Keyed BLAKE3 over many short, independent messages, N messages at a time
//! in SIMD lanes.
//!
//! The `blake3` crate hashes one message at a time and only uses SIMD across
//! the 1 KiB chunks of one long input, so a 200-byte message runs its four
//! compressions one after the other in a single lane. Here lane `l` of every
//! vector register holds message `l`'s state word ("transposed" state, the
//! trick BLAKE3 uses for the chunks of one long input), so one compression
//! step advances 16 (AVX-512), 8 (AVX2) or 4 (portable) messages by one block.
//!
//! # Lane scheduling
//!
//! Each lane runs its own message and is refilled as soon as that message is
//! done (`run_stream`): block length, flags, chunk counter and "start from
//! the key" are per-lane inputs of every step (they are just words of the
//! compression input), so lanes holding messages of different lengths never
//! wait for each other and no lane idles until the batch runs out of
//! messages. Messages longer than one chunk (1 KiB) run in a lane too: their
//! chunk chaining values go on a small per-lane stack and the parent nodes of
//! the BLAKE3 tree are further lane steps (flag `PARENT`, `ROOT` on the last).
//! Multi-chunk messages are fed first so that the tail of a batch is short
//! messages; messages over [`LANE_MAX_LEN`] go to `blake3::keyed_hash`, which
//! already spreads their chunks over SIMD lanes. Fixed shapes (Merkle nodes
//! and leaves) skip the scheduler: groups of N equal-length messages advance
//! block by block with uniform flags (`run_fixed`).
//!
//! # Transposition
//!
//! Each step the kernel loads lane `l`'s 64-byte block straight from the
//! message where it lies whole in memory (else from a zero-padded per-lane
//! copy: the last block, blocks straddling a prefix, parent nodes) and
//! transposes the N rows into 16 message-word vectors in registers
//! (unpack/shuffle stages, as BLAKE3 does for chunks). Chaining values stay
//! transposed between steps; finished lanes are transposed back with the
//! same shuffles and stored as 32-byte digests.
//!
//! # Backends
//!
//! [`backend`] picks the best kernel once at run time (cached): `avx512`
//! (AVX-512F, 16 lanes), `avx2` (8 lanes), else `portable` (4 lanes of plain
//! Rust, which the compiler vectorises with the baseline SSE2; about as fast
//! as the blake3 crate's one-at-a-time path, no faster). Nothing needs
//! compile-time target features: the SIMD kernels, and the lane bookkeeping
//! around them, are compiled with `#[target_feature]` and only called after
//! `is_x86_feature_detected!`. All entry points write into caller-provided
//! output slices and allocate nothing.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

pub(crate) const BLOCK_LEN: usize = 64;
pub(crate) const CHUNK_LEN: usize = 1024;
/// Longest message hashed in a lane; longer ones go to `blake3::keyed_hash`,
/// whose own SIMD across chunks is already wide from 8 chunks up.
pub const LANE_MAX_LEN: usize = 8 * CHUNK_LEN;
/// Per-lane chaining-value stack depth for messages of up to
/// `LANE_MAX_LEN / CHUNK_LEN` chunks.
const STACK_DEPTH: usize = (LANE_MAX_LEN / CHUNK_LEN).ilog2() as usize + 1;

pub(crate) const IV: [u32; 8] =
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19];
pub(crate) const MSG_SCHEDULE: [[usize; 16]; 7] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8],
    [3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1],
    [10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6],
    [12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4],
    [9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7],
    [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13],
];
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const PARENT: u32 = 4;
const ROOT: u32 = 8;
const KEYED_HASH: u32 = 16;

static ZERO_BLOCK: [u8; BLOCK_LEN] = [0; BLOCK_LEN];

/// Which implementation runs. [`backend`] detects the best one at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Plain Rust, 4 lanes; runs everywhere.
    Portable,
    /// AVX2, 8 lanes (x86_64 with AVX2).
    Avx2,
    /// AVX-512F, 16 lanes (x86_64 with AVX-512F).
    Avx512,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 3] = [Backend::Portable, Backend::Avx2, Backend::Avx512];

    /// `"portable"`, `"avx2"` or `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }

    /// Messages hashed per compression step.
    pub fn lanes(self) -> usize {
        match self {
            Backend::Portable => portable::LANES,
            Backend::Avx2 => 8,
            Backend::Avx512 => 16,
        }
    }

    /// Whether this CPU can run the backend (std's run-time detection).
    pub fn is_available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => avx2::Avx2::new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => avx512::Avx512::new().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// The best backend this CPU supports, detected on first use and cached.
pub fn backend() -> Backend {
    static DETECTED: AtomicU8 = AtomicU8::new(0);
    match DETECTED.load(Ordering::Relaxed) {
        1 => Backend::Portable,
        2 => Backend::Avx2,
        3 => Backend::Avx512,
        _ => {
            let b = if Backend::Avx512.is_available() {
                Backend::Avx512
            } else if Backend::Avx2.is_available() {
                Backend::Avx2
            } else {
                Backend::Portable
            };
            DETECTED.store(
                match b {
                    Backend::Portable => 1,
                    Backend::Avx2 => 2,
                    Backend::Avx512 => 3,
                },
                Ordering::Relaxed,
            );
            b
        }
    }
}

/// Name of [`backend`]: `"avx512"`, `"avx2"` or `"portable"`.
pub fn backend_name() -> &'static str {
    backend().name()
}

/// `out[i] = blake3::keyed_hash(key, messages[i])` for every `i`, any lengths.
///
/// Panics if `out.len() != messages.len()`.
pub fn keyed_hash_many(key: &[u8; 32], messages: &[&[u8]], out: &mut [[u8; 32]]) {
    keyed_hash_many_with(backend(), key, messages, out)
}

/// [`keyed_hash_many`] on an explicit backend (tests, benches).
///
/// Panics if the CPU lacks `backend` (see [`Backend::is_available`]) or if
/// `out.len() != messages.len()`.
pub fn keyed_hash_many_with(backend: Backend, key: &[u8; 32], messages: &[&[u8]], out: &mut [[u8; 32]]) {
    dispatch(backend, key, &Slices(messages), out, false)
}

/// `out[i] = blake3::keyed_hash(key, prefix ‖ messages[i])`, the prefix
/// shared by all (tx_id = H(K_TX, chain_id ‖ tx bytes)). Any lengths.
///
/// Panics if `out.len() != messages.len()`.
pub fn keyed_hash_many_prefixed(key: &[u8; 32], prefix: &[u8], messages: &[&[u8]], out: &mut [[u8; 32]]) {
    keyed_hash_many_prefixed_with(backend(), key, prefix, messages, out)
}

/// [`keyed_hash_many_prefixed`] on an explicit backend; panics if the CPU
/// lacks it.
pub fn keyed_hash_many_prefixed_with(
    backend: Backend,
    key: &[u8; 32],
    prefix: &[u8],
    messages: &[&[u8]],
    out: &mut [[u8; 32]],
) {
    dispatch(backend, key, &Prefixed { prefix, messages }, out, false)
}

/// `out[i] = blake3::keyed_hash(key, left[i] ‖ right[i])` for 32-byte `left`
/// and `R`-byte `right`: `R = 64` is the Merkle leaf `H(K_LEAF, tx_id ‖
/// signature)`, `R = 32` a Merkle node from separate left and right arrays
/// (see [`keyed_hash_nodes`] for the children of one level side by side).
///
/// Panics if the three slices differ in length.
pub fn keyed_hash_pairs<const R: usize>(key: &[u8; 32], left: &[[u8; 32]], right: &[[u8; R]], out: &mut [[u8; 32]]) {
    keyed_hash_pairs_with(backend(), key, left, right, out)
}

/// [`keyed_hash_pairs`] on an explicit backend; panics if the CPU lacks it.
pub fn keyed_hash_pairs_with<const R: usize>(
    backend: Backend,
    key: &[u8; 32],
    left: &[[u8; 32]],
    right: &[[u8; R]],
    out: &mut [[u8; 32]],
) {
    assert_eq!(left.len(), right.len(), "left and right differ in length");
    dispatch(backend, key, &Pairs { left, right }, out, true)
}

/// One Merkle level: `out[i] = blake3::keyed_hash(key, children[2i] ‖
/// children[2i + 1])` (Merkle node = H(K_NODE, left ‖ right)), read in place
/// without copying. An odd last child is the caller's business.
///
/// Panics unless `children.len() == 2 * out.len()`.
pub fn keyed_hash_nodes(key: &[u8; 32], children: &[[u8; 32]], out: &mut [[u8; 32]]) {
    keyed_hash_nodes_with(backend(), key, children, out)
}

/// [`keyed_hash_nodes`] on an explicit backend; panics if the CPU lacks it.
pub fn keyed_hash_nodes_with(backend: Backend, key: &[u8; 32], children: &[[u8; 32]], out: &mut [[u8; 32]]) {
    assert_eq!(children.len(), 2 * out.len(), "need exactly two children per output");
    let nodes: &[[u8; 64]] = bytemuck::cast_slice(children);
    dispatch(backend, key, &Fixed(nodes), out, true)
}

fn dispatch<'a, S: Source<'a>>(backend: Backend, key: &[u8; 32], src: &S, out: &mut [[u8; 32]], fixed: bool) {
    assert_eq!(out.len(), src.count(), "output slice length differs from the number of messages");
    match backend {
        Backend::Portable => run(portable::Portable, key, src, out, fixed),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => run(avx2::Avx2::new().expect("CPU lacks avx2"), key, src, out, fixed),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => run(avx512::Avx512::new().expect("CPU lacks avx512f"), key, src, out, fixed),
        #[cfg(not(target_arch = "x86_64"))]
        b => panic!("backend {} needs x86_64", b.name()),
    }
}

fn run<'a, const N: usize, K: Kernel<N>, S: Source<'a>>(
    kernel: K,
    key: &[u8; 32],
    src: &S,
    out: &mut [[u8; 32]],
    fixed: bool,
) {
    let key_words = words8(key);
    kernel.with_features(|| match src.fixed_len() {
        Some(len) if fixed && len <= CHUNK_LEN => run_fixed(kernel, &key_words, len, src, out),
        _ => run_stream(kernel, key, &key_words, src, out),
    })
}

/// Per-step inputs of a [`Kernel`], lane `l` in element `l`.
pub(crate) struct Params<const N: usize> {
    /// Chunk counter (low word; the high word is 0: lane messages are short).
    pub counter: [u32; N],
    pub block_len: [u32; N],
    pub flags: [u32; N],
    /// Bit `l` set: lane `l` starts from the key (`cv = key`) this step.
    pub reset: u32,
}

/// One BLAKE3 compression in each of `N` lanes.
pub(crate) trait Kernel<const N: usize>: Copy {
    /// For every lane `l`: if `p.reset` has bit `l`, set the chaining value
    /// `cv[0..8][l]` to `key`; then compress `blocks[l]` (64 bytes, little
    /// endian words) with `p.counter[l]`, `p.block_len[l]`, `p.flags[l]` and
    /// store the new chaining value back in `cv[..][l]`. `cv` is transposed:
    /// `cv[w][l]` is word `w` of lane `l`.
    fn compress(self, key: &[u32; 8], cv: &mut [[u32; N]; 8], blocks: &[&[u8; BLOCK_LEN]; N], p: &Params<N>);

    /// `out[l]` = lane `l`'s chaining value as 32 little-endian bytes, for
    /// every lane (a transpose back).
    fn store_cvs(self, cv: &[[u32; N]; 8], out: &mut [[u8; 32]; N]) {
        for (l, o) in out.iter_mut().enumerate() {
            lane_out(cv, l, o);
        }
    }

    /// Runs `f` compiled with the kernel's target features, so that the
    /// lane bookkeeping inlined into it uses the wide registers too.
    #[inline(always)]
    fn with_features<R>(self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// A batch of messages, possibly virtual concatenations.
pub(crate) trait Source<'a> {
    fn count(&self) -> usize;
    fn msg_len(&self, i: usize) -> usize;
    /// `Some(len)` if every message has length `len`.
    fn fixed_len(&self) -> Option<usize> {
        None
    }
    /// Bytes `off..off + 64` of message `i`, zero padded past its end: a
    /// borrow of the message where those 64 bytes are contiguous in it, else
    /// `None` with the bytes copied into `buf`.
    fn block(&self, i: usize, off: usize, buf: &mut [u8; BLOCK_LEN]) -> Option<&'a [u8; BLOCK_LEN]>;
    /// The whole hash of message `i`, one at a time (messages too long for a lane).
    fn hash_one(&self, key: &[u8; 32], i: usize) -> [u8; 32];
}

/// Copies `parts` (concatenated), starting at byte `off`, into `buf`, zero padded.
#[inline]
fn copy_block(parts: [&[u8]; 2], mut off: usize, buf: &mut [u8; BLOCK_LEN]) {
    *buf = [0; BLOCK_LEN];
    let mut pos = 0;
    for part in parts {
        if off >= part.len() {
            off -= part.len();
            continue;
        }
        let take = (part.len() - off).min(BLOCK_LEN - pos);
        buf[pos..pos + take].copy_from_slice(&part[off..off + take]);
        pos += take;
        off = 0;
        if pos == BLOCK_LEN {
            break;
        }
    }
}

#[inline]
fn direct(msg: &[u8], off: usize) -> Option<&[u8; BLOCK_LEN]> {
    msg.get(off..off.checked_add(BLOCK_LEN)?)?.try_into().ok()
}

struct Slices<'a, 'b>(&'b [&'a [u8]]);

impl<'a> Source<'a> for Slices<'a, '_> {
    fn count(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn msg_len(&self, i: usize) -> usize {
        self.0[i].len()
    }
    #[inline]
    fn block(&self, i: usize, off: usize, buf: &mut [u8; BLOCK_LEN]) -> Option<&'a [u8; BLOCK_LEN]> {
        let msg: &'a [u8] = self.0[i];
        let d = direct(msg, off);
        if d.is_none() {
            copy_block([msg, &[]], off, buf);
        }
        d
    }
    fn hash_one(&self, key: &[u8; 32], i: usize) -> [u8; 32] {
        *blake3::keyed_hash(key, self.0[i]).as_bytes()
    }
}

struct Prefixed<'a, 'b> {
    prefix: &'b [u8],
    messages: &'b [&'a [u8]],
}

impl<'a> Source<'a> for Prefixed<'a, '_> {
    fn count(&self) -> usize {
        self.messages.len()
    }
    #[inline]
    fn msg_len(&self, i: usize) -> usize {
        self.prefix.len() + self.messages[i].len()
    }
    #[inline]
    fn block(&self, i: usize, off: usize, buf: &mut [u8; BLOCK_LEN]) -> Option<&'a [u8; BLOCK_LEN]> {
        let msg: &'a [u8] = self.messages[i];
        if off >= self.prefix.len() {
            let d = direct(msg, off - self.prefix.len());
            if d.is_some() {
                return d;
            }
        }
        copy_block([self.prefix, msg], off, buf);
        None
    }
    fn hash_one(&self, key: &[u8; 32], i: usize) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(self.prefix);
        h.update(self.messages[i]);
        *h.finalize().as_bytes()
    }
}

struct Pairs<'a, const R: usize> {
    left: &'a [[u8; 32]],
    right: &'a [[u8; R]],
}

impl<'a, const R: usize> Source<'a> for Pairs<'a, R> {
    fn count(&self) -> usize {
        self.left.len()
    }
    #[inline]
    fn msg_len(&self, _: usize) -> usize {
        32 + R
    }
    fn fixed_len(&self) -> Option<usize> {
        Some(32 + R)
    }
    #[inline]
    fn block(&self, i: usize, off: usize, buf: &mut [u8; BLOCK_LEN]) -> Option<&'a [u8; BLOCK_LEN]> {
        let right: &'a [u8] = &self.right[i];
        if off >= 32 {
            let d = direct(right, off - 32);
            if d.is_some() {
                return d;
            }
        }
        copy_block([&self.left[i], right], off, buf);
        None
    }
    fn hash_one(&self, key: &[u8; 32], i: usize) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(&self.left[i]);
        h.update(&self.right[i]);
        *h.finalize().as_bytes()
    }
}

/// Equal-length messages side by side.
struct Fixed<'a, const L: usize>(&'a [[u8; L]]);

impl<'a, const L: usize> Source<'a> for Fixed<'a, L> {
    fn count(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn msg_len(&self, _: usize) -> usize {
        L
    }
    fn fixed_len(&self) -> Option<usize> {
        Some(L)
    }
    #[inline]
    fn block(&self, i: usize, off: usize, buf: &mut [u8; BLOCK_LEN]) -> Option<&'a [u8; BLOCK_LEN]> {
        let msg: &'a [u8] = &self.0[i];
        let d = direct(msg, off);
        if d.is_none() {
            copy_block([msg, &[]], off, buf);
        }
        d
    }
    fn hash_one(&self, key: &[u8; 32], i: usize) -> [u8; 32] {
        *blake3::keyed_hash(key, &self.0[i]).as_bytes()
    }
}

#[inline]
fn words8(bytes: &[u8; 32]) -> [u32; 8] {
    core::array::from_fn(|w| u32::from_le_bytes(bytes[4 * w..4 * w + 4].try_into().unwrap()))
}

#[inline]
fn lane_out<const N: usize>(cv: &[[u32; N]; 8], l: usize, out: &mut [u8; 32]) {
    for w in 0..8 {
        out[4 * w..4 * w + 4].copy_from_slice(&cv[w][l].to_le_bytes());
    }
}

#[inline]
fn lane_cv<const N: usize>(cv: &[[u32; N]; 8], l: usize) -> [u32; 8] {
    core::array::from_fn(|w| cv[w][l])
}

/// Groups of `N` messages of the same length `len <= CHUNK_LEN` (one chunk),
/// advancing block by block with uniform flags.
#[inline(always)]
fn run_fixed<'a, const N: usize, K: Kernel<N>, S: Source<'a>>(
    kernel: K,
    key: &[u32; 8],
    len: usize,
    src: &S,
    out: &mut [[u8; 32]],
) {
    debug_assert!(len <= CHUNK_LEN);
    let blocks_per_msg = len.div_ceil(BLOCK_LEN).max(1);
    let mut cv = [[0u32; N]; 8];
    let mut bufs = [[0u8; BLOCK_LEN]; N];
    let mut p = Params { counter: [0; N], block_len: [0; N], flags: [0; N], reset: 0 };
    for (g, out) in out.chunks_mut(N).enumerate() {
        let first = g * N;
        let lanes = out.len();
        for b in 0..blocks_per_msg {
            let off = b * BLOCK_LEN;
            let mut flags = KEYED_HASH;
            if b == 0 {
                flags |= CHUNK_START;
            }
            if b + 1 == blocks_per_msg {
                flags |= CHUNK_END | ROOT;
            }
            p.block_len = [(len - off).min(BLOCK_LEN) as u32; N];
            p.flags = [flags; N];
            p.reset = if b == 0 { u32::MAX } else { 0 };
            let mut blocks = [&ZERO_BLOCK; N];
            for (l, (slot, buf)) in blocks.iter_mut().zip(bufs.iter_mut()).take(lanes).enumerate() {
                *slot = match src.block(first + l, off, buf) {
                    Some(direct) => direct,
                    None => buf,
                };
            }
            kernel.compress(key, &mut cv, &blocks, &p);
        }
        if let Ok(full) = <&mut [[u8; 32]; N]>::try_from(&mut *out) {
            kernel.store_cvs(&cv, full);
        } else {
            let mut tmp = [[0u8; 32]; N];
            kernel.store_cvs(&cv, &mut tmp);
            out.copy_from_slice(&tmp[..lanes]);
        }
    }
}

/// Hands out message indices: multi-chunk messages first (so the tail of a
/// batch is short messages), then single-chunk ones; messages too long for
/// a lane are hashed on the spot.
struct Feeder {
    long: usize,
    short: usize,
}

impl Feeder {
    #[inline]
    fn next<'a, S: Source<'a>>(&mut self, src: &S, key: &[u8; 32], out: &mut [[u8; 32]]) -> Option<usize> {
        let n = src.count();
        while self.long < n {
            let i = self.long;
            self.long += 1;
            let len = src.msg_len(i);
            if len > LANE_MAX_LEN {
                out[i] = src.hash_one(key, i);
            } else if len > CHUNK_LEN {
                return Some(i);
            }
        }
        while self.short < n {
            let i = self.short;
            self.short += 1;
            if src.msg_len(i) <= CHUNK_LEN {
                return Some(i);
            }
        }
        None
    }
}

/// Per-lane state of [`run_stream`], one array element per lane; bit `l` of
/// the masks is lane `l`.
struct Lanes<const N: usize> {
    /// Message index (meaningless while the lane is idle).
    msg: [usize; N],
    /// Byte offset of the lane's next chunk block within its message.
    pos: [u32; N],
    len: [u32; N],
    /// End of the chunk holding `pos` (set while preparing a step).
    chunk_end: [u32; N],
    /// Lanes with a message.
    active: u32,
    /// Lanes whose next step is a parent node (multi-chunk messages).
    parent: u32,
    /// Parent lanes whose parent is the root.
    parent_root: u32,
    // Multi-chunk messages only: chunk and parent chaining values, merges
    // still to do, whether the last chunk is done.
    stack: [[[u32; 8]; STACK_DEPTH]; N],
    depth: [usize; N],
    merges: [u32; N],
    last_chunk_done: [bool; N],
}

impl<const N: usize> Lanes<N> {
    #[inline]
    fn refill<'a, S: Source<'a>>(
        &mut self,
        l: usize,
        feeder: &mut Feeder,
        src: &S,
        key: &[u8; 32],
        out: &mut [[u8; 32]],
    ) {
        self.pos[l] = 0;
        match feeder.next(src, key, out) {
            Some(i) => {
                self.msg[l] = i;
                self.len[l] = src.msg_len(i) as u32;
                self.depth[l] = 0;
                self.last_chunk_done[l] = false;
                self.active |= 1 << l;
            }
            None => {
                self.len[l] = 0;
                self.active &= !(1 << l);
            }
        }
    }

    /// Sets lane `l` up to merge the top two chaining values of its stack.
    #[inline]
    fn start_parent(&mut self, l: usize, buf: &mut [u8; BLOCK_LEN]) {
        let d = self.depth[l];
        let (left, right) = (&self.stack[l][d - 2], &self.stack[l][d - 1]);
        for (w, b) in left.iter().chain(right).zip(buf.chunks_exact_mut(4)) {
            b.copy_from_slice(&w.to_le_bytes());
        }
        self.parent |= 1 << l;
        if self.last_chunk_done[l] && d == 2 {
            self.parent_root |= 1 << l;
        } else {
            self.parent_root &= !(1 << l);
        }
    }
}

/// Any messages, each lane refilled as soon as its message is done.
///
/// Every step, the per-lane counter, block length and flags come from the
/// lane's position in its message in straight-line array code (no per-lane
/// branches); only lanes at an event (end of a chunk or message, parent
/// node) take the scalar path.
#[inline(always)]
fn run_stream<'a, const N: usize, K: Kernel<N>, S: Source<'a>>(
    kernel: K,
    key: &[u8; 32],
    key_words: &[u32; 8],
    src: &S,
    out: &mut [[u8; 32]],
) {
    const _: () = assert!(LANE_MAX_LEN <= u32::MAX as usize);
    let mut feeder = Feeder { long: 0, short: 0 };
    let mut cv = [[0u32; N]; 8];
    let mut bufs = [[0u8; BLOCK_LEN]; N];
    let mut p = Params { counter: [0; N], block_len: [0; N], flags: [0; N], reset: 0 };
    let mut done = [[0u8; 32]; N];
    let mut s = Lanes {
        msg: [0; N],
        pos: [0; N],
        len: [0; N],
        chunk_end: [0; N],
        active: 0,
        parent: 0,
        parent_root: 0,
        stack: [[[0; 8]; STACK_DEPTH]; N],
        depth: [0; N],
        merges: [0; N],
        last_chunk_done: [false; N],
    };
    for l in 0..N {
        s.refill(l, &mut feeder, src, key, out);
    }
    while s.active != 0 {
        // Chunk blocks: counter, length and flags from the position (idle
        // lanes compute an empty message, ignored).
        let mut start = 0u32;
        let mut end = 0u32;
        let mut single = 0u32;
        for l in 0..N {
            let (pos, len) = (s.pos[l], s.len[l]);
            let chunk_end = len.min((pos & !(CHUNK_LEN as u32 - 1)) + CHUNK_LEN as u32);
            let left = chunk_end - pos;
            let is_start = pos % CHUNK_LEN as u32 == 0;
            let is_end = left <= BLOCK_LEN as u32;
            let is_single = len <= CHUNK_LEN as u32;
            s.chunk_end[l] = chunk_end;
            p.counter[l] = pos / CHUNK_LEN as u32;
            p.block_len[l] = left.min(BLOCK_LEN as u32);
            p.flags[l] = KEYED_HASH
                | if is_start { CHUNK_START } else { 0 }
                | if is_end { CHUNK_END } else { 0 }
                | if is_end && is_single { ROOT } else { 0 };
            start |= (is_start as u32) << l;
            end |= (is_end as u32) << l;
            single |= (is_single as u32) << l;
        }
        // Parent nodes override.
        let mut bits = s.parent;
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            p.counter[l] = 0;
            p.block_len[l] = BLOCK_LEN as u32;
            p.flags[l] = KEYED_HASH | PARENT | if s.parent_root >> l & 1 == 1 { ROOT } else { 0 };
        }
        p.reset = start | s.parent;
        let chunk_lanes = s.active & !s.parent;
        let mut blocks = [&ZERO_BLOCK; N];
        for (l, (slot, buf)) in blocks.iter_mut().zip(bufs.iter_mut()).enumerate() {
            *slot = if chunk_lanes >> l & 1 == 1 {
                match src.block(s.msg[l], s.pos[l] as usize, buf) {
                    Some(direct) => direct,
                    None => buf,
                }
            } else {
                buf
            };
        }
        kernel.compress(key_words, &mut cv, &blocks, &p);

        let chunk_ends = end & chunk_lanes;
        let finished = (chunk_ends & single) | (s.parent & s.parent_root);
        if finished != 0 {
            kernel.store_cvs(&cv, &mut done);
        }
        for l in 0..N {
            s.pos[l] += if chunk_lanes >> l & 1 == 1 { BLOCK_LEN as u32 } else { 0 };
        }
        let mut events = chunk_ends | s.parent;
        while events != 0 {
            let l = events.trailing_zeros() as usize;
            events &= events - 1;
            if finished >> l & 1 == 1 {
                out[s.msg[l]] = done[l];
                s.parent &= !(1 << l);
                s.refill(l, &mut feeder, src, key, out);
            } else if s.parent >> l & 1 == 1 {
                // A non-root parent: replaces the top two stack entries.
                s.depth[l] -= 1;
                s.stack[l][s.depth[l] - 1] = lane_cv(&cv, l);
                s.merges[l] -= 1;
                if s.merges[l] > 0 {
                    s.start_parent(l, &mut bufs[l]);
                } else {
                    s.parent &= !(1 << l);
                }
            } else {
                // The end of a chunk of a multi-chunk message.
                s.pos[l] = s.chunk_end[l];
                s.stack[l][s.depth[l]] = lane_cv(&cv, l);
                s.depth[l] += 1;
                if s.pos[l] >= s.len[l] {
                    s.last_chunk_done[l] = true;
                    s.merges[l] = s.depth[l] as u32 - 1;
                } else {
                    s.merges[l] = (s.pos[l] / CHUNK_LEN as u32).trailing_zeros();
                }
                if s.merges[l] > 0 {
                    s.start_parent(l, &mut bufs[l]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_all_backends(msgs: &[&[u8]], key: &[u8; 32]) {
        let want: Vec<[u8; 32]> = msgs.iter().map(|m| *blake3::keyed_hash(key, m).as_bytes()).collect();
        for b in Backend::ALL.into_iter().filter(|b| b.is_available()) {
            let mut got = vec![[0u8; 32]; msgs.len()];
            keyed_hash_many_with(b, key, msgs, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{} message {i} len {}", b.name(), msgs[i].len());
            }
        }
    }

    #[test]
    fn chunk_boundaries_and_lane_limit() {
        let data: Vec<u8> = (0..LANE_MAX_LEN + 3000).map(|i| (i * 7 + 3) as u8).collect();
        let key = [0x5a; 32];
        let lens = [
            0,
            1,
            63,
            64,
            65,
            1023,
            1024,
            1025,
            2047,
            2048,
            2049,
            3072,
            4096,
            4097,
            5 * 1024 + 1,
            LANE_MAX_LEN - 1,
            LANE_MAX_LEN,
            LANE_MAX_LEN + 1,
            LANE_MAX_LEN + 2999,
        ];
        let msgs: Vec<&[u8]> = lens.iter().map(|&n| &data[..n]).collect();
        check_all_backends(&msgs, &key);
        let rev: Vec<&[u8]> = msgs.iter().rev().copied().collect();
        check_all_backends(&rev, &key);
    }

    /// Every kernel against the portable one on random inputs: random
    /// chaining values, reset masks, counters, lengths and flags.
    fn kernel_matches_portable<const N: usize, K: Kernel<N>>(kernel: K) {
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        };
        for _ in 0..200 {
            let key: [u32; 8] = core::array::from_fn(|_| next());
            let data: [[u8; BLOCK_LEN]; N] = core::array::from_fn(|_| core::array::from_fn(|_| next() as u8));
            let blocks: [&[u8; BLOCK_LEN]; N] = core::array::from_fn(|l| &data[l]);
            let p = Params {
                counter: core::array::from_fn(|_| next()),
                block_len: core::array::from_fn(|_| next() % 65),
                flags: core::array::from_fn(|_| next() & 31),
                reset: next(),
            };
            let cv0: [[u32; N]; 8] = core::array::from_fn(|_| core::array::from_fn(|_| next()));
            let (mut want, mut got) = (cv0, cv0);
            portable::compress_lanes(&key, &mut want, &blocks, &p);
            kernel.compress(&key, &mut got, &blocks, &p);
            assert_eq!(got, want);
            let (mut want_out, mut got_out) = ([[0u8; 32]; N], [[0u8; 32]; N]);
            for (l, o) in want_out.iter_mut().enumerate() {
                lane_out(&want, l, o);
            }
            kernel.store_cvs(&got, &mut got_out);
            assert_eq!(got_out, want_out);
        }
    }

    /// Past libtest's capture (which only hooks `eprintln!`), so it shows.
    #[cfg(target_arch = "x86_64")]
    fn skipping(what: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPING {what}");
    }

    #[test]
    fn kernels_match_portable() {
        #[cfg(target_arch = "x86_64")]
        {
            match avx2::Avx2::new() {
                Some(k) => kernel_matches_portable(k),
                None => skipping("avx2 kernel test: CPU lacks avx2"),
            }
            match avx512::Avx512::new() {
                Some(k) => kernel_matches_portable(k),
                None => skipping("avx512 kernel test: CPU lacks avx512f"),
            }
        }
    }

    #[test]
    fn detection_is_consistent() {
        assert!(backend().is_available());
        assert_eq!(backend_name(), backend().name());
        const { assert!(STACK_DEPTH >= 4) };
    }

    #[test]
    fn copy_block_pads_and_spans() {
        let mut buf = [0xffu8; 64];
        copy_block([&[1, 2, 3], &[4, 5]], 1, &mut buf);
        assert_eq!(&buf[..5], &[2, 3, 4, 5, 0]);
        assert!(buf[4..].iter().all(|&b| b == 0));
        copy_block([&[1, 2, 3], &[4, 5]], 7, &mut buf);
        assert!(buf.iter().all(|&b| b == 0));
    }
}
