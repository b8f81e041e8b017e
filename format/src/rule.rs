//! The names of the validity rules, as reports give them.

use std::fmt;
use std::str::FromStr;

/// The validity rules of FORMAT.md, in the order of its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Malformed,
    ChainId,
    Height,
    PrevHash,
    Timestamp,
    TxRoot,
    BlockSignature,
    TxSignature,
    TxTimestamp,
    Nonce,
}

impl Rule {
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
