//! vigil's coprocessor wire protocol, version 1 (`docs/PROTOCOL.md` is the
//! normative description; this crate is its one implementation, shared by
//! `vigil serve` and the Rust client).
//!
//! Every message, both ways, is a frame:
//!
//! ```text
//! u32 length   bytes after this field: 12 + body (little-endian, like every integer)
//! u8  version  1
//! u8  kind     what the body is
//! u16 flags    0
//! u64 id       chosen by the client, echoed by the response
//! body         length − 12 bytes
//! ```
//!
//! Decoding never panics and never allocates more than the bytes it was
//! given justify: counts are checked against what is left of the body.

#![warn(missing_docs)]
pub mod transport;

use std::io::{self, Read, Write};

/// The protocol version every frame carries; others get `bad_version`.
pub const VERSION: u8 = 1;
/// Bytes of a frame after the length field and before the body.
pub const HEADER_LEN: usize = 12;
/// Bytes of the length field plus the header.
pub const PREFIX_LEN: usize = 4 + HEADER_LEN;
/// The largest frame (length field) a server accepts by default.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Frame kinds: requests, and each request's response kind (request | 0x80).
pub mod kind {
    /// Request: one block to check in its chain.
    pub const SUBMIT_BLOCK: u8 = 0x01;
    /// Request: a list of ed25519 signatures to verify.
    pub const VERIFY_SIGNATURES: u8 = 0x02;
    /// Request: messages to hash with BLAKE3, plain or keyed.
    pub const HASH: u8 = 0x03;
    /// Request: the server's counters and settings.
    pub const STATUS: u8 = 0x04;
    /// Request: the token of a server started with `--token-file`.
    pub const AUTH: u8 = 0x05;
    /// Response to [`SUBMIT_BLOCK`].
    pub const BLOCK_VERDICT: u8 = 0x81;
    /// Response to [`VERIFY_SIGNATURES`].
    pub const SIGNATURE_VERDICTS: u8 = 0x82;
    /// Response to [`HASH`].
    pub const DIGESTS: u8 = 0x83;
    /// Response to [`STATUS`]: a JSON object.
    pub const STATUS_REPORT: u8 = 0x84;
    /// Response to [`AUTH`] when the token is right.
    pub const AUTHENTICATED: u8 = 0x85;
    /// Response to any request that fails: a code and a message.
    pub const ERROR: u8 = 0xff;
}

/// FORMAT.md's rules in the order of its table; a failure carries its index.
pub const RULE_NAMES: [&str; 10] = [
    "malformed",
    "chain_id",
    "height",
    "prev_hash",
    "timestamp",
    "tx_root",
    "block_signature",
    "tx_signature",
    "tx_timestamp",
    "nonce",
];

/// A frame's fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The length field: `HEADER_LEN` + body bytes.
    pub length: u32,
    /// Protocol version; [`VERSION`] in every valid frame.
    pub version: u8,
    /// What the body is: one of [`kind`].
    pub kind: u8,
    /// 0 in every valid frame (no flag is defined yet).
    pub flags: u16,
    /// Chosen by the client; the response to a request carries the same id.
    pub id: u64,
}

impl Header {
    /// Decodes the length field and header; checks nothing (see [`Header::body_len`]).
    pub fn parse(prefix: &[u8; PREFIX_LEN]) -> Header {
        Header {
            length: u32::from_le_bytes(prefix[0..4].try_into().expect("4 bytes")),
            version: prefix[4],
            kind: prefix[5],
            flags: u16::from_le_bytes(prefix[6..8].try_into().expect("2 bytes")),
            id: u64::from_le_bytes(prefix[8..16].try_into().expect("8 bytes")),
        }
    }

    /// Body bytes, when the length field is sane: at least the header, at
    /// most `max_frame`.
    pub fn body_len(&self, max_frame: usize) -> Result<usize, FrameError> {
        let length = self.length as usize;
        if length < HEADER_LEN {
            return Err(FrameError::TooShort { length: self.length });
        }
        if length > max_frame {
            return Err(FrameError::TooLarge { length: self.length, max: max_frame });
        }
        Ok(length - HEADER_LEN)
    }
}

/// A whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The length field and fixed part, as read.
    pub header: Header,
    /// `header.length - HEADER_LEN` bytes, not yet decoded.
    pub body: Vec<u8>,
}

/// A frame whose length field cannot be trusted: the stream is out of step
/// and the connection must close.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length field is under [`HEADER_LEN`] (`frame_too_short`).
    #[error("frame length {length} is shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// The length field.
        length: u32,
    },
    /// The length field is over the reader's limit (`frame_too_large`).
    #[error("frame length {length} is over the limit of {max} bytes")]
    TooLarge {
        /// The length field.
        length: u32,
        /// The limit, in bytes.
        max: usize,
    },
    /// The stream ended after part of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading the stream failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Encodes one frame.
pub fn encode_frame(kind: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(&[0; PREFIX_LEN]);
    out.extend_from_slice(body);
    finish_frame(&mut out, kind, id);
    out
}

/// Fills in the prefix of `frame`, whose first [`PREFIX_LEN`] bytes were
/// left for it and whose body follows, so a frame can be built in one
/// buffer without copying its body.
pub fn finish_frame(frame: &mut [u8], kind: u8, id: u64) {
    let length = (frame.len() - 4) as u32;
    frame[0..4].copy_from_slice(&length.to_le_bytes());
    frame[4] = VERSION;
    frame[5] = kind;
    frame[6..8].copy_from_slice(&0u16.to_le_bytes());
    frame[8..16].copy_from_slice(&id.to_le_bytes());
}

/// Body bytes [`read_frame`] reserves before they arrive.
const READ_AHEAD: usize = 64 << 10;

/// Reads one frame from a blocking stream; `Ok(None)` at a clean end of
/// stream (between frames).
pub fn read_frame(r: &mut impl Read, max_frame: usize) -> Result<Option<Frame>, FrameError> {
    let mut prefix = [0u8; PREFIX_LEN];
    let mut got = 0;
    while got < PREFIX_LEN {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let header = Header::parse(&prefix);
    let len = header.body_len(max_frame)?;
    // The buffer grows with the bytes that arrive, not with what the length
    // field claims: 16 bytes must not make a reader hold `max_frame`.
    let mut body = Vec::with_capacity(len.min(READ_AHEAD));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() < len {
        return Err(FrameError::Truncated);
    }
    Ok(Some(Frame { header, body }))
}

/// Encodes one frame and writes it whole.
pub fn write_frame(w: &mut impl Write, kind: u8, id: u64, body: &[u8]) -> io::Result<()> {
    w.write_all(&encode_frame(kind, id, body))
}

/// Signature rules of a `verify_signatures` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rules {
    /// ZIP-215, the chain's rules (ed25519-zebra); wire value 0.
    Zip215 = 0,
    /// ed25519-dalek's `verify_strict`; wire value 1.
    Strict = 1,
}

/// One signature to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signer's ed25519 public key, as encoded.
    pub public_key: [u8; 32],
    /// `R ‖ S`.
    pub signature: [u8; 64],
    /// The signed message, any length.
    pub message: Vec<u8>,
}

/// A request body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// One block, format v1 bytes.
    SubmitBlock(Vec<u8>),
    /// Verify each signature; answered with one verdict per signature.
    VerifySignatures {
        /// Which ed25519 rules to apply.
        rules: Rules,
        /// The signatures, in the order the verdicts come back.
        signatures: Vec<Signature>,
    },
    /// BLAKE3 of each message, keyed when `key` is set.
    Hash {
        /// The BLAKE3 key, for keyed mode (format v1's hashes are keyed).
        key: Option<[u8; 32]>,
        /// The messages, in the order the digests come back.
        messages: Vec<Vec<u8>>,
    },
    /// Ask for the server's counters and settings.
    Status,
    /// The shared secret of a server started with `--token-file`: the first
    /// frame of every connection to such a server.
    Auth(Vec<u8>),
}

/// A request body checked and viewed in place, without copying its lists:
/// what a server uses, so a frame costs no more memory decoded than it did
/// on the wire. [`Request::decode`] is this, copied out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestView<'a> {
    /// See [`Request::SubmitBlock`]: the whole body.
    SubmitBlock(&'a [u8]),
    /// See [`Request::VerifySignatures`]; [`RequestView::signatures`] walks it.
    VerifySignatures {
        /// Which ed25519 rules to apply.
        rules: Rules,
        /// How many signatures `items` holds.
        count: usize,
        /// The checked list, after the count field.
        items: &'a [u8],
    },
    /// See [`Request::Hash`]; [`RequestView::messages`] walks it.
    Hash {
        /// The BLAKE3 key, for keyed mode.
        key: Option<[u8; 32]>,
        /// How many messages `items` holds.
        count: usize,
        /// The checked list, after the count field.
        items: &'a [u8],
    },
    /// See [`Request::Status`].
    Status,
    /// See [`Request::Auth`]: the token.
    Auth(&'a [u8]),
}

/// A signature of a [`RequestView::VerifySignatures`], borrowed from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureRef<'a> {
    /// The signer's ed25519 public key, as encoded.
    pub public_key: &'a [u8; 32],
    /// `R ‖ S`.
    pub signature: &'a [u8; 64],
    /// The signed message.
    pub message: &'a [u8],
}

/// What a checked block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passes every rule. Applied to its chain.
    Valid = 0,
    /// Breaks at least one rule (see `failures`). Applied to its chain all the same.
    Invalid = 1,
    /// Not a well-formed block; `message` says why. Not applied.
    Malformed = 2,
    /// A well-formed block followed by more bytes. Not applied.
    ExtraBytes = 3,
    /// A new chain when the server keeps as many as it may. Not applied.
    TooManyChains = 4,
}

/// One rule a block breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Index into [`RULE_NAMES`].
    pub rule: u8,
    /// The transaction's index in the block, for per-transaction rules.
    pub tx: Option<u32>,
    /// What was wrong, as `vigil verify` words it.
    pub detail: String,
}

impl Failure {
    /// The rule's name in reports, or `"unknown"` for an index past [`RULE_NAMES`].
    pub fn rule_name(&self) -> &'static str {
        RULE_NAMES.get(self.rule as usize).copied().unwrap_or("unknown")
    }
}

/// The answer to a `submit_block` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockVerdict {
    /// Whether the block was checked, and how it fared.
    pub outcome: Outcome,
    /// 0-based index of the block in its chain (checked blocks only).
    pub position: u64,
    /// The header's height (0 when not checked).
    pub height: u64,
    /// The block hash (zeros when not checked).
    pub hash: [u8; 32],
    /// The header's `tx_count`.
    pub tx_count: u32,
    /// Every rule the block breaks, in FORMAT.md's order; empty when valid.
    pub failures: Vec<Failure>,
    /// Why a block was not checked (empty for checked blocks).
    pub message: String,
}

/// Error codes of an `error` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame's version is not [`VERSION`]. The connection stays open.
    BadVersion = 1,
    /// The frame's flags are not 0. The connection stays open.
    BadFlags = 2,
    /// The frame's kind is not a request kind. The connection stays open.
    UnknownKind = 3,
    /// The body does not decode ([`DecodeError`]). The connection stays open.
    BadBody = 4,
    /// Sent with id 0 when `--max-connections` are open; then closed.
    Overloaded = 5,
    /// The server is stopping and takes no new work.
    ShuttingDown = 6,
    /// The length field is over `--max-frame`; then closed.
    FrameTooLarge = 7,
    /// The length field is under [`HEADER_LEN`]; then closed.
    FrameTooShort = 8,
    /// The server failed to compute an answer. The connection stays open.
    Internal = 9,
    /// The response would be larger than the server's `--max-frame`; it is
    /// refused before it is computed.
    ResponseTooLarge = 10,
    /// A server with a token: the first frame was not `auth`, or its token
    /// was wrong. The connection is closed.
    Unauthorized = 11,
}

impl ErrorCode {
    /// Every code, in order of its wire value.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::BadVersion,
        ErrorCode::BadFlags,
        ErrorCode::UnknownKind,
        ErrorCode::BadBody,
        ErrorCode::Overloaded,
        ErrorCode::ShuttingDown,
        ErrorCode::FrameTooLarge,
        ErrorCode::FrameTooShort,
        ErrorCode::Internal,
        ErrorCode::ResponseTooLarge,
        ErrorCode::Unauthorized,
    ];

    /// The code with this wire value, if any.
    pub fn from_u16(v: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| *c as u16 == v)
    }

    /// The code's name in PROTOCOL.md (`bad_body`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadVersion => "bad_version",
            ErrorCode::BadFlags => "bad_flags",
            ErrorCode::UnknownKind => "unknown_kind",
            ErrorCode::BadBody => "bad_body",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::FrameTooShort => "frame_too_short",
            ErrorCode::Internal => "internal",
            ErrorCode::ResponseTooLarge => "response_too_large",
            ErrorCode::Unauthorized => "unauthorized",
        }
    }
}

/// A response body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Answers `submit_block`.
    BlockVerdict(BlockVerdict),
    /// One verdict per signature, in request order.
    SignatureVerdicts(Vec<bool>),
    /// One 32-byte BLAKE3 digest per message, in request order.
    Digests(Vec<[u8; 32]>),
    /// A JSON object (see PROTOCOL.md).
    Status(String),
    /// The `auth` token was right: the connection may send requests.
    Authenticated,
    /// The request failed.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// Details, for people.
        message: String,
    },
}

/// A body that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The kind is not one this decoder knows (a request kind for
    /// requests, a response kind for responses).
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// The body ends too early.
    #[error("body ends at byte {at} but {need} more bytes are needed for {what}")]
    Short {
        /// The field being read.
        what: &'static str,
        /// Its byte offset in the body.
        at: usize,
        /// How many bytes are missing.
        need: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{what} at byte {at}: {problem}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Its byte offset in the body.
        at: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Bytes are left after the body's content.
    #[error("{left} bytes after the end of the body's content")]
    Trailing {
        /// How many.
        left: usize,
    },
}

/// Reads a body front to back.
struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(body: &'a [u8]) -> Self {
        Cursor { body, at: 0 }
    }

    fn left(&self) -> usize {
        self.body.len() - self.at
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.left() < n {
            return Err(DecodeError::Short { what, at: self.at, need: n - self.left() });
        }
        let out = &self.body[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items of at least `min_item` bytes each, checked against
    /// what is left so no allocation outgrows the body.
    fn count(&mut self, what: &'static str, min_item: usize) -> Result<usize, DecodeError> {
        let at = self.at;
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item) > self.left() {
            return Err(DecodeError::Invalid {
                what,
                at,
                problem: format!("{n} items of at least {min_item} bytes do not fit in {} bytes", self.left()),
            });
        }
        Ok(n)
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self.u16(what)? as usize;
        let at = self.at;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| DecodeError::Invalid { what, at, problem: e.to_string() })
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            left => Err(DecodeError::Trailing { left }),
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Strings are at most 65,535 bytes; longer ones are cut at a char boundary.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

impl Request {
    /// The frame kind of this request ([`kind`]).
    pub fn kind(&self) -> u8 {
        match self {
            Request::SubmitBlock(_) => kind::SUBMIT_BLOCK,
            Request::VerifySignatures { .. } => kind::VERIFY_SIGNATURES,
            Request::Hash { .. } => kind::HASH,
            Request::Status => kind::STATUS,
            Request::Auth(_) => kind::AUTH,
        }
    }

    /// The body bytes, without the frame prefix.
    pub fn encode_body(&self) -> Vec<u8> {
        match self {
            Request::SubmitBlock(block) => block.clone(),
            Request::VerifySignatures { rules, signatures } => {
                let mut out = vec![*rules as u8];
                out.extend_from_slice(&(signatures.len() as u32).to_le_bytes());
                for s in signatures {
                    out.extend_from_slice(&s.public_key);
                    out.extend_from_slice(&s.signature);
                    out.extend_from_slice(&(s.message.len() as u32).to_le_bytes());
                    out.extend_from_slice(&s.message);
                }
                out
            }
            Request::Hash { key, messages } => {
                let mut out = Vec::new();
                match key {
                    None => out.push(0),
                    Some(k) => {
                        out.push(1);
                        out.extend_from_slice(k);
                    }
                }
                out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
                for m in messages {
                    out.extend_from_slice(&(m.len() as u32).to_le_bytes());
                    out.extend_from_slice(m);
                }
                out
            }
            Request::Status => Vec::new(),
            Request::Auth(token) => token.clone(),
        }
    }

    /// The whole frame.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        encode_frame(self.kind(), id, &self.encode_body())
    }

    /// Decodes a request body of frame kind `kind`, copying its lists out
    /// ([`RequestView::parse`] checks it in place).
    pub fn decode(kind: u8, body: &[u8]) -> Result<Request, DecodeError> {
        Ok(match RequestView::parse(kind, body)? {
            RequestView::SubmitBlock(block) => Request::SubmitBlock(block.to_vec()),
            view @ RequestView::VerifySignatures { rules, count, .. } => {
                let mut signatures = Vec::with_capacity(count);
                signatures.extend(view.signatures().map(|s| Signature {
                    public_key: *s.public_key,
                    signature: *s.signature,
                    message: s.message.to_vec(),
                }));
                Request::VerifySignatures { rules, signatures }
            }
            view @ RequestView::Hash { key, count, .. } => {
                let mut messages = Vec::with_capacity(count);
                messages.extend(view.messages().map(<[u8]>::to_vec));
                Request::Hash { key, messages }
            }
            RequestView::Status => Request::Status,
            RequestView::Auth(token) => Request::Auth(token.to_vec()),
        })
    }
}

impl<'a> RequestView<'a> {
    /// Checks the whole body (every count and length, nothing left over)
    /// and views it in place.
    pub fn parse(kind: u8, body: &'a [u8]) -> Result<RequestView<'a>, DecodeError> {
        let mut c = Cursor::new(body);
        let view = match kind {
            kind::SUBMIT_BLOCK => return Ok(RequestView::SubmitBlock(body)),
            kind::AUTH => return Ok(RequestView::Auth(body)),
            kind::VERIFY_SIGNATURES => {
                let at = c.at;
                let rules = match c.u8("rules")? {
                    0 => Rules::Zip215,
                    1 => Rules::Strict,
                    v => {
                        return Err(DecodeError::Invalid {
                            what: "rules",
                            at,
                            problem: format!("{v} is neither 0 (zip215) nor 1 (strict)"),
                        });
                    }
                };
                let count = c.count("signature count", 32 + 64 + 4)?;
                let start = c.at;
                for _ in 0..count {
                    c.take(32 + 64, "public key and signature")?;
                    let len = c.u32("message length")? as usize;
                    c.take(len, "message")?;
                }
                RequestView::VerifySignatures { rules, count, items: &body[start..c.at] }
            }
            kind::HASH => {
                let at = c.at;
                let key = match c.u8("hash mode")? {
                    0 => None,
                    1 => Some(c.array("key")?),
                    v => {
                        return Err(DecodeError::Invalid {
                            what: "hash mode",
                            at,
                            problem: format!("{v} is neither 0 (plain) nor 1 (keyed)"),
                        });
                    }
                };
                let count = c.count("message count", 4)?;
                let start = c.at;
                for _ in 0..count {
                    let len = c.u32("message length")? as usize;
                    c.take(len, "message")?;
                }
                RequestView::Hash { key, count, items: &body[start..c.at] }
            }
            kind::STATUS => RequestView::Status,
            other => return Err(DecodeError::UnknownKind(other)),
        };
        c.finish()?;
        Ok(view)
    }

    /// The signatures of a `VerifySignatures` view (none for other kinds).
    pub fn signatures(&self) -> impl Iterator<Item = SignatureRef<'a>> + use<'a> {
        let (count, items) = match *self {
            RequestView::VerifySignatures { count, items, .. } => (count, items),
            _ => (0, &[][..]),
        };
        let mut c = Cursor::new(items);
        // `parse` checked every length, so these takes cannot fail.
        (0..count).map_while(move |_| {
            let public_key = c.take(32, "").ok()?.try_into().ok()?;
            let signature = c.take(64, "").ok()?.try_into().ok()?;
            let len = c.u32("").ok()? as usize;
            Some(SignatureRef { public_key, signature, message: c.take(len, "").ok()? })
        })
    }

    /// The messages of a `Hash` view (none for other kinds).
    pub fn messages(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let (count, items) = match *self {
            RequestView::Hash { count, items, .. } => (count, items),
            _ => (0, &[][..]),
        };
        let mut c = Cursor::new(items);
        (0..count).map_while(move |_| {
            let len = c.u32("").ok()? as usize;
            c.take(len, "").ok()
        })
    }
}

impl Response {
    /// The frame kind of this response ([`kind`]).
    pub fn kind(&self) -> u8 {
        match self {
            Response::BlockVerdict(_) => kind::BLOCK_VERDICT,
            Response::SignatureVerdicts(_) => kind::SIGNATURE_VERDICTS,
            Response::Digests(_) => kind::DIGESTS,
            Response::Status(_) => kind::STATUS_REPORT,
            Response::Authenticated => kind::AUTHENTICATED,
            Response::Error { .. } => kind::ERROR,
        }
    }

    /// An `error` response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error { code, message: message.into() }
    }

    /// The body bytes, without the frame prefix.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_body_into(&mut out);
        out
    }

    /// Appends the body to `out`.
    pub fn encode_body_into(&self, out: &mut Vec<u8>) {
        match self {
            Response::BlockVerdict(v) => {
                out.push(v.outcome as u8);
                out.extend_from_slice(&v.position.to_le_bytes());
                out.extend_from_slice(&v.height.to_le_bytes());
                out.extend_from_slice(&v.hash);
                out.extend_from_slice(&v.tx_count.to_le_bytes());
                out.extend_from_slice(&(v.failures.len() as u32).to_le_bytes());
                for f in &v.failures {
                    out.push(f.rule);
                    out.extend_from_slice(&f.tx.unwrap_or(u32::MAX).to_le_bytes());
                    put_string(out, &f.detail);
                }
                put_string(out, &v.message);
            }
            Response::SignatureVerdicts(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend(v.iter().map(|ok| u8::from(*ok)));
            }
            Response::Digests(d) => {
                out.extend_from_slice(&(d.len() as u32).to_le_bytes());
                for h in d {
                    out.extend_from_slice(h);
                }
            }
            Response::Status(json) => out.extend_from_slice(json.as_bytes()),
            Response::Authenticated => {}
            Response::Error { code, message } => {
                out.extend_from_slice(&(*code as u16).to_le_bytes());
                put_string(out, message);
            }
        }
    }

    /// The whole frame, built in one buffer.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let mut out = vec![0; PREFIX_LEN];
        self.encode_body_into(&mut out);
        finish_frame(&mut out, self.kind(), id);
        out
    }

    /// Decodes a response body of frame kind `kind`: every count and length
    /// is checked, and nothing may be left over.
    pub fn decode(kind: u8, body: &[u8]) -> Result<Response, DecodeError> {
        let mut c = Cursor::new(body);
        let response = match kind {
            kind::BLOCK_VERDICT => {
                let at = c.at;
                let outcome = match c.u8("outcome")? {
                    0 => Outcome::Valid,
                    1 => Outcome::Invalid,
                    2 => Outcome::Malformed,
                    3 => Outcome::ExtraBytes,
                    4 => Outcome::TooManyChains,
                    v => {
                        return Err(DecodeError::Invalid {
                            what: "outcome",
                            at,
                            problem: format!("unknown outcome {v}"),
                        });
                    }
                };
                let position = c.u64("position")?;
                let height = c.u64("height")?;
                let hash = c.array("hash")?;
                let tx_count = c.u32("tx_count")?;
                let n = c.count("failure count", 1 + 4 + 2)?;
                let mut failures = Vec::with_capacity(n);
                for _ in 0..n {
                    let rule = c.u8("rule")?;
                    let tx = c.u32("tx")?;
                    let detail = c.string("detail")?;
                    failures.push(Failure { rule, tx: (tx != u32::MAX).then_some(tx), detail });
                }
                let message = c.string("message")?;
                Response::BlockVerdict(BlockVerdict { outcome, position, height, hash, tx_count, failures, message })
            }
            kind::SIGNATURE_VERDICTS => {
                let n = c.count("verdict count", 1)?;
                let at = c.at;
                let bytes = c.take(n, "verdicts")?;
                if let Some(i) = bytes.iter().position(|b| *b > 1) {
                    return Err(DecodeError::Invalid {
                        what: "verdict",
                        at: at + i,
                        problem: format!("{} is neither 0 nor 1", bytes[i]),
                    });
                }
                Response::SignatureVerdicts(bytes.iter().map(|b| *b == 1).collect())
            }
            kind::DIGESTS => {
                let n = c.count("digest count", 32)?;
                let mut digests = Vec::with_capacity(n);
                for _ in 0..n {
                    digests.push(c.array("digest")?);
                }
                Response::Digests(digests)
            }
            kind::STATUS_REPORT => {
                let json = String::from_utf8(body.to_vec()).map_err(|e| DecodeError::Invalid {
                    what: "status",
                    at: 0,
                    problem: e.to_string(),
                })?;
                return Ok(Response::Status(json));
            }
            kind::AUTHENTICATED => Response::Authenticated,
            kind::ERROR => {
                let at = c.at;
                let raw = c.u16("error code")?;
                let code = ErrorCode::from_u16(raw).ok_or_else(|| DecodeError::Invalid {
                    what: "error code",
                    at,
                    problem: format!("unknown code {raw}"),
                })?;
                Response::Error { code, message: c.string("message")? }
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        c.finish()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<Request> {
        vec![
            Request::SubmitBlock(vec![1, 2, 3]),
            Request::SubmitBlock(Vec::new()),
            Request::VerifySignatures {
                rules: Rules::Strict,
                signatures: vec![
                    Signature { public_key: [7; 32], signature: [9; 64], message: b"hello".to_vec() },
                    Signature { public_key: [1; 32], signature: [2; 64], message: Vec::new() },
                ],
            },
            Request::VerifySignatures { rules: Rules::Zip215, signatures: Vec::new() },
            Request::Hash { key: None, messages: vec![b"a".to_vec(), Vec::new()] },
            Request::Hash { key: Some([3; 32]), messages: vec![vec![0; 1000]] },
            Request::Status,
            Request::Auth(b"secret".to_vec()),
        ]
    }

    fn responses() -> Vec<Response> {
        vec![
            Response::BlockVerdict(BlockVerdict {
                outcome: Outcome::Invalid,
                position: 5,
                height: 6,
                hash: [4; 32],
                tx_count: 3,
                failures: vec![
                    Failure { rule: 7, tx: Some(2), detail: "bad signature ✓".into() },
                    Failure { rule: 2, tx: None, detail: String::new() },
                ],
                message: String::new(),
            }),
            Response::SignatureVerdicts(vec![true, false, true]),
            Response::Digests(vec![[5; 32], [6; 32]]),
            Response::Status("{\"a\":1}".into()),
            Response::error(ErrorCode::BadBody, "nope"),
            Response::error(ErrorCode::Unauthorized, "wrong token"),
            Response::Authenticated,
        ]
    }

    #[test]
    fn every_message_round_trips_through_a_stream() {
        let mut wire = Vec::new();
        for (i, r) in requests().iter().enumerate() {
            wire.extend(r.encode(i as u64 * 1000));
        }
        let mut reader = &wire[..];
        for (i, want) in requests().iter().enumerate() {
            let frame = read_frame(&mut reader, DEFAULT_MAX_FRAME).unwrap().unwrap();
            assert_eq!(frame.header.id, i as u64 * 1000);
            assert_eq!(frame.header.version, VERSION);
            assert_eq!(Request::decode(frame.header.kind, &frame.body).unwrap(), *want);
        }
        assert!(read_frame(&mut reader, DEFAULT_MAX_FRAME).unwrap().is_none());
        for want in responses() {
            let bytes = want.encode(42);
            let frame = read_frame(&mut &bytes[..], DEFAULT_MAX_FRAME).unwrap().unwrap();
            assert_eq!(Response::decode(frame.header.kind, &frame.body).unwrap(), want);
        }
    }

    /// Every strict prefix of every body fails to decode with an error (no
    /// panic), and so does every body with a byte added (except the kinds
    /// whose body is free-form).
    #[test]
    fn cut_or_padded_bodies_are_errors() {
        for r in requests() {
            let body = r.encode_body();
            if !matches!(r, Request::SubmitBlock(_) | Request::Auth(_)) {
                for cut in 0..body.len() {
                    assert!(Request::decode(r.kind(), &body[..cut]).is_err(), "{r:?} cut at {cut}");
                }
                let mut padded = body.clone();
                padded.push(0);
                assert!(Request::decode(r.kind(), &padded).is_err(), "{r:?} padded");
            }
        }
        for r in responses() {
            let body = r.encode_body();
            if !matches!(r, Response::Status(_)) {
                for cut in 0..body.len() {
                    assert!(Response::decode(r.kind(), &body[..cut]).is_err(), "{r:?} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        // A signature count of 2^32 - 1 in a 5-byte body.
        let body = [0u8, 0xff, 0xff, 0xff, 0xff];
        let err = Request::decode(kind::VERIFY_SIGNATURES, &body).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { what: "signature count", .. }), "{err}");
        assert!(Request::decode(0x7e, &[]).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let k = [1u8, 2, 3, 4, 5, 0x81, 0x82, 0x83, 0x84, 0x85, 0xff][(next() % 11) as usize];
            let _ = Request::decode(k, &body);
            let _ = Response::decode(k, &body);
            let _ = read_frame(&mut &body[..], 1 << 10);
        }
    }

    #[test]
    fn bad_length_fields_are_frame_errors() {
        let mut short = encode_frame(kind::STATUS, 1, &[]);
        short[0] = 11;
        assert!(matches!(read_frame(&mut &short[..], 100), Err(FrameError::TooShort { length: 11 })));
        let big = encode_frame(kind::SUBMIT_BLOCK, 1, &[0; 200]);
        assert!(matches!(read_frame(&mut &big[..], 100), Err(FrameError::TooLarge { .. })));
        let ok = encode_frame(kind::SUBMIT_BLOCK, 1, &[0; 20]);
        assert!(matches!(read_frame(&mut &ok[..ok.len() - 1], 100), Err(FrameError::Truncated)));
        assert!(matches!(read_frame(&mut &ok[..3], 100), Err(FrameError::Truncated)));
    }
}
