//! The names of the validity rules, as reports give them.

use std::fmt;
use std::str::FromStr;

/// The validity rules of FORMAT.md, in the order of its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// The block is not well formed: it cannot be framed ([`Malformation`](crate::Malformation)).
    Malformed,
    /// `chain_id` is not the chain's (the pinned one, else the first block's).
    ChainId,
    /// `height` is not the parent's height + 1.
    Height,
    /// `prev_hash` is not the parent's block hash.
    PrevHash,
    /// `timestamp_ms` is earlier than the parent's.
    Timestamp,
    /// `tx_root` is not the Merkle root of the body.
    TxRoot,
    /// `proposer_sig` does not verify, or `proposer` is not an authority.
    BlockSignature,
    /// A transaction's signature does not verify.
    TxSignature,
    /// A transaction's `timestamp_ms` is later than its block's.
    TxTimestamp,
    /// A transaction does not carry the nonce its sender is expected to use next.
    Nonce,
}

impl Rule {
    /// Every rule, in the order of the table (the order reports use).
    pub const ALL: [Rule; 10] = [
        Rule::Malformed,
        Rule::ChainId,
        Rule::Height,
        Rule::PrevHash,
        Rule::Timestamp,
        Rule::TxRoot,
        Rule::BlockSignature,
        Rule::TxSignature,
        Rule::TxTimestamp,
        Rule::Nonce,
    ];

    /// The rule's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Malformed => "malformed",
            Rule::ChainId => "chain_id",
            Rule::Height => "height",
            Rule::PrevHash => "prev_hash",
            Rule::Timestamp => "timestamp",
            Rule::TxRoot => "tx_root",
            Rule::BlockSignature => "block_signature",
            Rule::TxSignature => "tx_signature",
            Rule::TxTimestamp => "tx_timestamp",
            Rule::Nonce => "nonce",
        }
    }

    /// Whether the rule is about one transaction (its failures carry `tx`).
    pub fn is_per_transaction(self) -> bool {
        matches!(self, Rule::TxSignature | Rule::TxTimestamp | Rule::Nonce)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule name that [`Rule::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRule(pub String);

impl fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown rule {:?}", self.0)
    }
}

impl std::error::Error for UnknownRule {}

impl FromStr for Rule {
    type Err = UnknownRule;
    fn from_str(s: &str) -> Result<Self, UnknownRule> {
        Rule::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| UnknownRule(s.to_owned()))
    }
}
