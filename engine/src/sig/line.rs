//! `vigil sigs`'s input: one JSON object a line,
//! `{"pubkey":hex,"msg":hex,"sig":hex}`. In the engine (not the CLI) so that
//! the fuzz targets (`fuzz/`) reach the parser that reads untrusted lines.

use std::borrow::Cow;

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

/// The line's fields, borrowed from it (hex needs no escapes; a field that
/// has some is unescaped into its own string).
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    pubkey: Cow<'a, str>,
    #[serde(borrow)]
    msg: Cow<'a, str>,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

/// Decodes one line; the error says which field is wrong and why. Allocates
/// only the message (the key and signature decode in place).
pub fn parse_sig_line(line: &str) -> Result<SigLine, SigLineError> {
    let l: Line<'_> = serde_json::from_str(line).map_err(|e| SigLineError::Json(e.to_string()))?;
    let public_key = fixed("pubkey", &l.pubkey)?;
    let signature = fixed("sig", &l.sig)?;
    let message = hex::decode(&*l.msg).map_err(|source| SigLineError::Hex { field: "msg", source })?;
    Ok(SigLine { public_key, message, signature })
}

/// `N` bytes from hex, in place; otherwise the hex error, or the length
/// the text decodes to.
fn fixed<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], SigLineError> {
    let hex_error = |source| SigLineError::Hex { field, source };
    let mut out = [0u8; N];
    if text.len() == 2 * N {
        hex::decode_to_slice(text, &mut out).map_err(hex_error)?;
        return Ok(out);
    }
    let len = hex::decode(text).map_err(hex_error)?.len();
    Err(SigLineError::Length { field, len, expected: N })
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
        // A field with JSON escapes is unescaped (\u0030 is "0").
        let escaped = format!(r#"{{"pubkey":"\u0030{}","msg":"","sig":"{sig}"}}"#, &pk[1..]);
        assert_eq!(parse_sig_line(&escaped).unwrap().public_key, [7; 32]);
        let long = parse_sig_line(&format!(r#"{{"pubkey":"{pk}00","msg":"","sig":"{sig}"}}"#)).unwrap_err();
        assert_eq!(long.to_string(), "pubkey is 33 bytes, expected 32");
        let bad = parse_sig_line(&format!(r#"{{"pubkey":"{pk}","msg":"","sig":"{}zz"}}"#, &sig[2..])).unwrap_err();
        assert!(bad.to_string().starts_with("sig: Invalid character 'z'"), "{bad}");
    }
}
