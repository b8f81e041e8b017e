//! `vigil sigs`'s input: one JSON object a line,
//! `{"pubkey":hex,"msg":hex,"sig":hex}`. In the engine (not the CLI) so that
//! the fuzz targets (`fuzz/`) reach the parser that reads untrusted lines.

/// One decoded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigLine {
    /// `pubkey`: the ed25519 public key, as encoded.
    pub public_key: [u8; 32],
    /// `msg`: the signed message, any length.
    pub message: Vec<u8>,
    /// `sig`: `R ‖ S`.
    pub signature: [u8; 64],
}

/// Why a line is not a signature line; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SigLineError {
    /// Not a JSON object with the three string fields (serde_json's message).
    #[error("{0}")]
    Json(String),
    /// A field is not hex.
    #[error("{field}: {source}")]
    Hex {
        /// `pubkey`, `msg` or `sig`.
        field: &'static str,
        /// What is wrong with the hex.
        source: hex::FromHexError,
    },
    /// `pubkey` or `sig` decodes to the wrong number of bytes.
    #[error("{field} is {len} bytes, expected {expected}")]
    Length {
        /// `pubkey` or `sig`.
        field: &'static str,
        /// Bytes decoded.
        len: usize,
        /// Bytes needed: 32 or 64.
        expected: usize,
    },
}

#[derive(serde::Deserialize)]
struct Line {
    pubkey: String,
    msg: String,
    sig: String,
}

/// Decodes one line; the error says which field is wrong and why. Allocates
/// no more than the line's own length justifies.
pub fn parse_sig_line(line: &str) -> Result<SigLine, SigLineError> {
    let l: Line = serde_json::from_str(line).map_err(|e| SigLineError::Json(e.to_string()))?;
    let bytes = |field: &'static str, hex_text: &str| {
        hex::decode(hex_text).map_err(|source| SigLineError::Hex { field, source })
    };
    let length = |field, expected| move |v: Vec<u8>| SigLineError::Length { field, len: v.len(), expected };
    let public_key = bytes("pubkey", &l.pubkey)?.try_into().map_err(length("pubkey", 32))?;
    let signature = bytes("sig", &l.sig)?.try_into().map_err(length("sig", 64))?;
    Ok(SigLine { public_key, message: bytes("msg", &l.msg)?, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_decodes_and_each_bad_field_is_named() {
        let (pk, sig) = ("07".repeat(32), "09".repeat(64));
        let ok = parse_sig_line(&format!(r#"{{"pubkey":"{pk}","msg":"abcd","sig":"{sig}"}}"#)).unwrap();
        assert_eq!(ok, SigLine { public_key: [7; 32], message: vec![0xab, 0xcd], signature: [9; 64] });
        let short = parse_sig_line(&format!(r#"{{"pubkey":"07","msg":"","sig":"{sig}"}}"#)).unwrap_err().to_string();
        assert!(short.contains("pubkey is 1 bytes"), "{short}");
        let odd = parse_sig_line(&format!(r#"{{"pubkey":"{pk}","msg":"abc","sig":"{sig}"}}"#)).unwrap_err().to_string();
        assert!(odd.starts_with("msg:"), "{odd}");
        assert!(parse_sig_line("{").is_err());
    }
}
