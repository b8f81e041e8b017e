//! Chain format v1 (`FORMAT.md`, normative): packed layouts viewed in place.
//!
//! Every struct here is made only of `[u8; N]` fields, so it has alignment 1
//! and `bytemuck` can view it at any offset of a mapped file without copying.
//! Accessors decode the little-endian integers on demand.

#![warn(missing_docs)]
use bytemuck::{Pod, Zeroable};
use std::fmt;

pub mod hash;
mod rule;

pub use hash::Digest;
pub use rule::{Rule, UnknownRule};

/// The first four bytes of every block header: ASCII `VBLK`.
pub const MAGIC: [u8; 4] = *b"VBLK";
/// The one format version this crate reads and writes (header `version`).
pub const VERSION: u16 = 1;
/// Bytes of a block header.
pub const HEADER_LEN: usize = 224;
/// Header bytes covered by the block hash (all but the signature).
pub const HASHED_HEADER_LEN: usize = 160;
/// Bytes of a transaction before its payload.
pub const TX_FIXED_LEN: usize = 56;
/// Bytes of an ed25519 signature (`R ‖ S`), in headers and transactions.
pub const SIGNATURE_LEN: usize = 64;
/// A transaction is `TX_OVERHEAD + payload_len` bytes.
pub const TX_OVERHEAD: usize = TX_FIXED_LEN + SIGNATURE_LEN;
/// The largest `payload_len` a well-formed transaction may have, in bytes.
pub const MAX_PAYLOAD_LEN: u32 = 65_536;
/// The largest `tx_count` a well-formed block header may have.
pub const MAX_TX_COUNT: u32 = 1_048_576;

/// The 224-byte block header.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct BlockHeader {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// Format version, `u16`; must be [`VERSION`].
    pub version: [u8; 2],
    /// `u16`; must be 0 (no flag is defined yet).
    pub flags: [u8; 2],
    /// Identifies the network; every block of a chain carries the same one.
    pub chain_id: [u8; 32],
    /// `u64`: position in the chain, 0 for the genesis block.
    pub height: [u8; 8],
    /// `u64`: block time, milliseconds since 1970-01-01 UTC.
    pub timestamp_ms: [u8; 8],
    /// The parent's block hash; all zeros for the genesis block.
    pub prev_hash: [u8; 32],
    /// Merkle root of the body's transactions ([`hash::merkle_root_in_place`]).
    pub tx_root: [u8; 32],
    /// `u32`: how many transactions the body holds, at most [`MAX_TX_COUNT`].
    pub tx_count: [u8; 4],
    /// `u32`: the body's length in bytes.
    pub body_len: [u8; 4],
    /// Ed25519 public key of the block's producer.
    pub proposer: [u8; 32],
    /// Ed25519 signature by `proposer` over the 32-byte block hash.
    pub proposer_sig: [u8; 64],
}

/// The fixed 56-byte part of a transaction, before its payload.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct TxHeader {
    /// Ed25519 public key of the device that produced the record (its identity).
    pub sender: [u8; 32],
    /// `u64`: the sender's sequence number, 0, 1, 2, ... over the chain.
    pub nonce: [u8; 8],
    /// `u64`: when the record was produced, milliseconds since the epoch.
    pub timestamp_ms: [u8; 8],
    /// `u16`: record type for the application; validation never reads it.
    pub kind: [u8; 2],
    /// `u16`; must be 0.
    pub reserved: [u8; 2],
    /// `u32`: payload length in bytes, at most [`MAX_PAYLOAD_LEN`].
    pub payload_len: [u8; 4],
}

const _: () = assert!(size_of::<BlockHeader>() == HEADER_LEN);
const _: () = assert!(std::mem::align_of::<BlockHeader>() == 1);
const _: () = assert!(size_of::<TxHeader>() == TX_FIXED_LEN);
const _: () = assert!(std::mem::align_of::<TxHeader>() == 1);

impl BlockHeader {
    /// The `version` field, decoded.
    pub fn version(&self) -> u16 {
        u16::from_le_bytes(self.version)
    }
    /// The `flags` field, decoded.
    pub fn flags(&self) -> u16 {
        u16::from_le_bytes(self.flags)
    }
    /// The `height` field, decoded.
    pub fn height(&self) -> u64 {
        u64::from_le_bytes(self.height)
    }
    /// The `timestamp_ms` field (milliseconds since the epoch), decoded.
    pub fn timestamp_ms(&self) -> u64 {
        u64::from_le_bytes(self.timestamp_ms)
    }
    /// The `tx_count` field, decoded.
    pub fn tx_count(&self) -> u32 {
        u32::from_le_bytes(self.tx_count)
    }
    /// The `body_len` field (bytes), decoded.
    pub fn body_len(&self) -> u32 {
        u32::from_le_bytes(self.body_len)
    }
    /// The bytes the block hash covers: `header[0..160]`.
    pub fn hashed_bytes(&self) -> &[u8] {
        &bytemuck::bytes_of(self)[..HASHED_HEADER_LEN]
    }
    /// All 224 bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; HEADER_LEN] {
        bytemuck::cast_ref(self)
    }
}

impl TxHeader {
    /// A fixed part with `reserved` 0; integers are encoded little-endian.
    pub fn new(sender: [u8; 32], nonce: u64, timestamp_ms: u64, kind: u16, payload_len: u32) -> Self {
        TxHeader {
            sender,
            nonce: nonce.to_le_bytes(),
            timestamp_ms: timestamp_ms.to_le_bytes(),
            kind: kind.to_le_bytes(),
            reserved: [0; 2],
            payload_len: payload_len.to_le_bytes(),
        }
    }
    /// The `nonce` field, decoded.
    pub fn nonce(&self) -> u64 {
        u64::from_le_bytes(self.nonce)
    }
    /// The `timestamp_ms` field (milliseconds since the epoch), decoded.
    pub fn timestamp_ms(&self) -> u64 {
        u64::from_le_bytes(self.timestamp_ms)
    }
    /// The `kind` field, decoded.
    pub fn kind(&self) -> u16 {
        u16::from_le_bytes(self.kind)
    }
    /// The `reserved` field, decoded (0 in a well-formed transaction).
    pub fn reserved(&self) -> u16 {
        u16::from_le_bytes(self.reserved)
    }
    /// The `payload_len` field (bytes), decoded.
    pub fn payload_len(&self) -> u32 {
        u32::from_le_bytes(self.payload_len)
    }
}

/// Why a block is `malformed`. Offsets are byte offsets in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformation {
    /// Fewer than [`HEADER_LEN`] bytes are left in the file.
    HeaderTruncated {
        /// Bytes left from the block's start.
        left: u64,
    },
    /// The header does not start with [`MAGIC`]; holds what it starts with.
    BadMagic([u8; 4]),
    /// The header's `version` is not [`VERSION`].
    BadVersion(u16),
    /// The header's `flags` are not 0.
    BadFlags(u16),
    /// The header's `tx_count` is over [`MAX_TX_COUNT`].
    TooManyTransactions(u32),
    /// The body runs past the end of the file.
    BodyTruncated {
        /// The header's `body_len`.
        body_len: u32,
        /// Bytes left in the file after the header.
        left: u64,
    },
    /// Transaction `tx`'s 56-byte fixed part runs past `body_len`.
    TxFixedPartPastBody {
        /// Index of the transaction in the body.
        tx: u32,
        /// Where it starts in the file.
        offset: u64,
        /// The header's `tx_count`.
        tx_count: u32,
    },
    /// Transaction `tx`'s `reserved` field is not 0.
    TxReserved {
        /// Index of the transaction in the body.
        tx: u32,
        /// Where it starts in the file.
        offset: u64,
        /// The value found.
        reserved: u16,
    },
    /// Transaction `tx`'s `payload_len` is over [`MAX_PAYLOAD_LEN`].
    TxPayloadTooLong {
        /// Index of the transaction in the body.
        tx: u32,
        /// Where it starts in the file.
        offset: u64,
        /// The value found.
        payload_len: u32,
    },
    /// Transaction `tx`'s payload or signature runs past `body_len`.
    TxPastBody {
        /// Index of the transaction in the body.
        tx: u32,
        /// Where it starts in the file.
        offset: u64,
        /// Its `payload_len`.
        payload_len: u32,
    },
    /// Bytes are left in the body after its `tx_count` transactions.
    TrailingBodyBytes {
        /// How many bytes.
        left: usize,
        /// The header's `tx_count`.
        tx_count: u32,
    },
}

impl Malformation {
    /// Whether the block's header checked out and its body is what is
    /// malformed (so framing walked the body to find it).
    pub fn in_body(&self) -> bool {
        use Malformation::*;
        match self {
            HeaderTruncated { .. }
            | BadMagic(_)
            | BadVersion(_)
            | BadFlags(_)
            | TooManyTransactions(_)
            | BodyTruncated { .. } => false,
            TxFixedPartPastBody { .. }
            | TxReserved { .. }
            | TxPayloadTooLong { .. }
            | TxPastBody { .. }
            | TrailingBodyBytes { .. } => true,
        }
    }
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Malformation::*;
        match self {
            HeaderTruncated { left } => {
                write!(f, "header does not fit: {left} bytes left in the file, a header is {HEADER_LEN}")
            }
            BadMagic(m) => {
                f.write_str("bad magic ")?;
                m.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            BadVersion(v) => write!(f, "version {v}, not {VERSION}"),
            BadFlags(v) => write!(f, "flags {v:#06x}, not 0"),
            TooManyTransactions(n) => write!(f, "tx_count {n} > {MAX_TX_COUNT}"),
            BodyTruncated { body_len, left } => {
                write!(f, "body does not fit: body_len {body_len}, {left} bytes left")
            }
            TxFixedPartPastBody { tx, offset, tx_count } => write!(
                f,
                "tx {tx} at offset {offset}: fixed part runs past body_len (tx_count {tx_count}, {tx} parsed)"
            ),
            TxReserved { tx, offset, reserved } => {
                write!(f, "tx {tx} at offset {offset}: reserved {reserved:#06x}, not 0")
            }
            TxPayloadTooLong { tx, offset, payload_len } => {
                write!(f, "tx {tx} at offset {offset}: payload_len {payload_len} > {MAX_PAYLOAD_LEN}")
            }
            TxPastBody { tx, offset, payload_len } => {
                write!(f, "tx {tx} at offset {offset}: payload_len {payload_len} runs past body_len")
            }
            TrailingBodyBytes { left, tx_count } => {
                write!(f, "{left} bytes left in the body after tx_count {tx_count} transactions")
            }
        }
    }
}

/// Checks a block's header. `head` holds the bytes from the block's start
/// (at least `min(HEADER_LEN, file_left)` of them); `file_left` is how many
/// bytes the file has from the block's start to its end.
pub fn check_header(head: &[u8], file_left: u64) -> Result<&BlockHeader, Malformation> {
    if file_left < HEADER_LEN as u64 || head.len() < HEADER_LEN {
        return Err(Malformation::HeaderTruncated { left: file_left.min(head.len() as u64) });
    }
    let header: &BlockHeader = bytemuck::from_bytes(&head[..HEADER_LEN]);
    if header.magic != MAGIC {
        return Err(Malformation::BadMagic(header.magic));
    }
    if header.version() != VERSION {
        return Err(Malformation::BadVersion(header.version()));
    }
    if header.flags() != 0 {
        return Err(Malformation::BadFlags(header.flags()));
    }
    if header.tx_count() > MAX_TX_COUNT {
        return Err(Malformation::TooManyTransactions(header.tx_count()));
    }
    let left = file_left - HEADER_LEN as u64;
    if u64::from(header.body_len()) > left {
        return Err(Malformation::BodyTruncated { body_len: header.body_len(), left });
    }
    Ok(header)
}

/// Checks that `body` parses into exactly `tx_count` well-formed
/// transactions ending exactly at its end. `body_offset` is the body's byte
/// offset in the file, for messages. Allocates nothing.
pub fn check_body(body: &[u8], tx_count: u32, body_offset: u64) -> Result<(), Malformation> {
    walk_body(body, tx_count, body_offset, |_| {})
}

/// [`check_body`] that also tells `on_tx` where each transaction starts in
/// the body, so that later stages need not walk the body again (each step
/// of the walk depends on the length read in the step before).
pub fn walk_body(
    body: &[u8],
    tx_count: u32,
    body_offset: u64,
    mut on_tx: impl FnMut(usize),
) -> Result<(), Malformation> {
    let mut pos = 0usize;
    for tx in 0..tx_count {
        on_tx(pos);
        let offset = body_offset + pos as u64;
        let rest = &body[pos..];
        if rest.len() < TX_FIXED_LEN {
            return Err(Malformation::TxFixedPartPastBody { tx, offset, tx_count });
        }
        let fixed: &TxHeader = bytemuck::from_bytes(&rest[..TX_FIXED_LEN]);
        if fixed.reserved() != 0 {
            return Err(Malformation::TxReserved { tx, offset, reserved: fixed.reserved() });
        }
        let payload_len = fixed.payload_len();
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(Malformation::TxPayloadTooLong { tx, offset, payload_len });
        }
        let len = TX_OVERHEAD + payload_len as usize;
        if rest.len() < len {
            return Err(Malformation::TxPastBody { tx, offset, payload_len });
        }
        pos += len;
    }
    if pos != body.len() {
        return Err(Malformation::TrailingBodyBytes { left: body.len() - pos, tx_count });
    }
    Ok(())
}

/// A well-formed block, borrowed from the bytes that hold it.
#[derive(Clone, Copy)]
pub struct BlockView<'a> {
    /// The checked header.
    pub header: &'a BlockHeader,
    /// The `body_len` bytes after it: `tx_count` well-formed transactions.
    pub body: &'a [u8],
}

impl<'a> BlockView<'a> {
    /// Frames the block at the start of `bytes`, which must run to the end of
    /// the file (so "fits in the file" is decidable). Returns the block and
    /// its total length.
    pub fn parse(bytes: &'a [u8], offset: u64) -> Result<(Self, usize), Malformation> {
        let header = check_header(bytes, bytes.len() as u64)?;
        let body_len = header.body_len() as usize;
        let body = &bytes[HEADER_LEN..HEADER_LEN + body_len];
        check_body(body, header.tx_count(), offset + HEADER_LEN as u64)?;
        Ok((BlockView { header, body }, HEADER_LEN + body_len))
    }

    /// The transactions in body order. Only meaningful on a checked body;
    /// on inconsistent bytes it stops early rather than panicking.
    pub fn txs(&self) -> TxIter<'a> {
        TxIter { body: self.body, pos: 0 }
    }

    /// Bytes of the whole block: header and body.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Always `false`: a block has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One transaction, borrowed.
#[derive(Clone, Copy)]
pub struct TxView<'a> {
    /// All `120 + payload_len` bytes.
    pub bytes: &'a [u8],
}

impl<'a> TxView<'a> {
    /// The 56-byte fixed part.
    pub fn header(&self) -> &'a TxHeader {
        bytemuck::from_bytes(&self.bytes[..TX_FIXED_LEN])
    }
    /// The `payload_len` bytes of the record, opaque to validation.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[TX_FIXED_LEN..self.bytes.len() - SIGNATURE_LEN]
    }
    /// Every byte but the signature: what tx_id hashes after the chain id.
    pub fn signed_part(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_LEN]
    }
    /// The sender's ed25519 signature over the transaction's `tx_id`.
    pub fn signature(&self) -> &'a [u8; 64] {
        self.bytes[self.bytes.len() - SIGNATURE_LEN..].try_into().expect("64 bytes")
    }
}

/// Iterates the transactions of a checked body.
#[derive(Clone)]
pub struct TxIter<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> TxIter<'a> {
    /// Byte position in the body of the next transaction.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for TxIter<'a> {
    type Item = TxView<'a>;
    fn next(&mut self) -> Option<TxView<'a>> {
        let rest = &self.body[self.pos..];
        if rest.len() < TX_OVERHEAD {
            return None;
        }
        let fixed: &TxHeader = bytemuck::from_bytes(&rest[..TX_FIXED_LEN]);
        let len = TX_OVERHEAD.checked_add(fixed.payload_len() as usize)?;
        let bytes = rest.get(..len)?;
        self.pos += len;
        Some(TxView { bytes })
    }
}

/// Frames the blocks of a whole segment file held in memory, in order.
/// Yields `(offset, Ok(block))` for each well-formed block and, if a block
/// is malformed, one `(offset, Err(reason))` after which it stops: a
/// malformed block ends its file.
pub fn blocks(file: &[u8]) -> Blocks<'_> {
    Blocks { file, pos: 0, done: false }
}

/// The iterator of [`blocks`].
pub struct Blocks<'a> {
    file: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = (u64, Result<BlockView<'a>, Malformation>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.file.len() {
            return None;
        }
        let offset = self.pos as u64;
        match BlockView::parse(&self.file[self.pos..], offset) {
            Ok((block, len)) => {
                self.pos += len;
                Some((offset, Ok(block)))
            }
            Err(reason) => {
                self.done = true;
                Some((offset, Err(reason)))
            }
        }
    }
}

/// Appends a transaction without its signature to `out`; the caller hashes
/// `out[start..]` (the signed part) and then appends the 64 signature bytes.
/// Returns `start`.
pub fn write_unsigned_tx(out: &mut Vec<u8>, header: &TxHeader, payload: &[u8]) -> usize {
    let start = out.len();
    out.extend_from_slice(bytemuck::bytes_of(header));
    out.extend_from_slice(payload);
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx_bytes(payload_len: u32, reserved: u16) -> Vec<u8> {
        let mut h = TxHeader::new([7; 32], 3, 9, 1, payload_len);
        h.reserved = reserved.to_le_bytes();
        let mut v = Vec::new();
        write_unsigned_tx(&mut v, &h, &vec![0xAB; payload_len as usize]);
        v.extend_from_slice(&[0x55; 64]);
        v
    }

    #[test]
    fn body_parsing_accepts_exact_and_rejects_everything_else() {
        let mut body = tx_bytes(0, 0);
        body.extend(tx_bytes(5, 0));
        assert_eq!(check_body(&body, 2, 0), Ok(()));
        assert!(matches!(check_body(&body, 1, 0), Err(Malformation::TrailingBodyBytes { left: 125, tx_count: 1 })));
        assert!(matches!(check_body(&body, 3, 0), Err(Malformation::TxFixedPartPastBody { tx: 2, .. })));
        assert!(matches!(
            check_body(&body[..body.len() - 1], 2, 100),
            Err(Malformation::TxPastBody { tx: 1, offset: 220, payload_len: 5 })
        ));
        assert!(matches!(check_body(&tx_bytes(1, 1), 1, 0), Err(Malformation::TxReserved { tx: 0, .. })));
        assert!(matches!(
            check_body(&tx_bytes(MAX_PAYLOAD_LEN + 1, 0), 1, 0),
            Err(Malformation::TxPayloadTooLong { .. })
        ));
        assert_eq!(check_body(&tx_bytes(MAX_PAYLOAD_LEN, 0), 1, 0), Ok(()));

        let view = BlockView { header: bytemuck::from_bytes(&[0u8; HEADER_LEN]), body: &body };
        let lens: Vec<usize> = view.txs().map(|t| t.payload().len()).collect();
        assert_eq!(lens, vec![0, 5]);
        let t = view.txs().nth(1).unwrap();
        assert_eq!(t.header().nonce(), 3);
        assert_eq!(t.signature(), &[0x55; 64]);
        assert_eq!(t.signed_part().len(), TX_FIXED_LEN + 5);
    }

    #[test]
    fn header_checks_in_order() {
        let mut h: BlockHeader = Zeroable::zeroed();
        assert!(matches!(
            check_header(&bytemuck::bytes_of(&h)[..100], 100),
            Err(Malformation::HeaderTruncated { left: 100 })
        ));
        assert!(matches!(check_header(bytemuck::bytes_of(&h), 224), Err(Malformation::BadMagic(_))));
        h.magic = MAGIC;
        assert!(matches!(check_header(bytemuck::bytes_of(&h), 224), Err(Malformation::BadVersion(0))));
        h.version = 1u16.to_le_bytes();
        h.flags = 1u16.to_le_bytes();
        assert!(matches!(check_header(bytemuck::bytes_of(&h), 224), Err(Malformation::BadFlags(1))));
        h.flags = [0; 2];
        h.tx_count = (MAX_TX_COUNT + 1).to_le_bytes();
        assert!(matches!(check_header(bytemuck::bytes_of(&h), 224), Err(Malformation::TooManyTransactions(_))));
        h.tx_count = [0; 4];
        h.body_len = u32::MAX.to_le_bytes();
        assert!(matches!(check_header(bytemuck::bytes_of(&h), 300), Err(Malformation::BodyTruncated { left: 76, .. })));
        h.body_len = 76u32.to_le_bytes();
        assert!(check_header(bytemuck::bytes_of(&h), 300).is_ok());
    }
}
