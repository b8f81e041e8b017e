//! `vigil sigs`'s input: one JSON object a line,
//! `{"pubkey":hex,"msg":hex,"sig":hex}`. In the engine (not the CLI) so that
//! the fuzz targets (`fuzz/`) reach the parser that reads untrusted lines.

/// One decoded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigLine {
    pub public_key: [u8; 32],
    pub message: Vec<u8>,
    pub signature: [u8; 64],
}

#[derive(serde::Deserialize)]
struct Line {
    pubkey: String,
    msg: String,
    sig: String,
}

/// Decodes one line; the error says which field is wrong and why. Allocates
/// no more than the line's own length justifies.
pub fn parse_sig_line(line: &str) -> Result<SigLine, String> {
    let l: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let bytes = |field: &str, hex_text: &str| hex::decode(hex_text).map_err(|e| format!("{field}: {e}"));
    let public_key = bytes("pubkey", &l.pubkey)?
        .try_into()
        .map_err(|v: Vec<u8>| format!("pubkey is {} bytes, expected 32", v.len()))?;
    let signature =
        bytes("sig", &l.sig)?.try_into().map_err(|v: Vec<u8>| format!("sig is {} bytes, expected 64", v.len()))?;
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
        let short = parse_sig_line(&format!(r#"{{"pubkey":"07","msg":"","sig":"{sig}"}}"#)).unwrap_err();
        assert!(short.contains("pubkey is 1 bytes"), "{short}");
        let odd = parse_sig_line(&format!(r#"{{"pubkey":"{pk}","msg":"abc","sig":"{sig}"}}"#)).unwrap_err();
        assert!(odd.starts_with("msg:"), "{odd}");
        assert!(parse_sig_line("{").is_err());
    }
}
