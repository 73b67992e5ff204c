//! How Ollama's Go code words its request errors: `encoding/json` type names,
//! `time.ParseDuration`, `encoding/base64`. The scripted server uses these to answer bad
//! requests with the real server's messages.

use serde_json::Value;

/// Go's `%q` of a string (close enough for the ASCII and UTF-8 text of error messages).
pub(crate) fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// The word `encoding/json` uses for a JSON value's kind ("cannot unmarshal array into ...").
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What `reflect.TypeOf` names a decoded JSON value (api/types.go `Duration.UnmarshalJSON`:
/// "Unsupported type: '%s'").
pub(crate) fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Checks a duration the way Go's `time.ParseDuration` does, returning its error message:
/// a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`),
/// optionally signed; `0` alone needs no unit.
pub(crate) fn parse_duration(text: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {}", quote(text));
    let mut s = text;
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        s = rest;
    }
    if s == "0" {
        return Ok(());
    }
    if s.is_empty() {
        return Err(invalid());
    }
    while !s.is_empty() {
        let digits = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let number = &s[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        s = &s[digits..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {}", quote(text)));
        }
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(unit),
                quote(text)
            ));
        }
        s = &s[unit_len..];
    }
    Ok(())
}

/// Where Go's `base64.StdEncoding` (padded) first fails on `text`, as its
/// `CorruptInputError` reports it ("illegal base64 data at input byte N"); `None` if valid.
/// Carriage returns and newlines are skipped, as Go does.
pub(crate) fn base64_error(text: &str) -> Option<usize> {
    const fn is_alphabet(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        // One quantum of four symbols, newlines skipped.
        let mut symbols = 0;
        while symbols < 4 {
            while i < bytes.len() && (bytes[i] == b'\n' || bytes[i] == b'\r') {
                i += 1;
            }
            if i == bytes.len() {
                return match symbols {
                    0 => None,
                    // Go: CorruptInputError(si - j) with j symbols of the quantum read.
                    _ => Some(i - symbols),
                };
            }
            let b = bytes[i];
            if b == b'=' {
                // Padding: only in the last two places of a quantum, then nothing else.
                return match symbols {
                    0 | 1 => Some(i),
                    2 => {
                        let mut j = i + 1;
                        while j < bytes.len() && (bytes[j] == b'\n' || bytes[j] == b'\r') {
                            j += 1;
                        }
                        if j == bytes.len() || bytes[j] != b'=' {
                            return Some(bytes.len().min(j));
                        }
                        trailing(bytes, j + 1)
                    }
                    _ => trailing(bytes, i + 1),
                };
            }
            if !is_alphabet(b) {
                return Some(i);
            }
            symbols += 1;
            i += 1;
        }
    }
}

/// After padding only newlines may follow.
fn trailing(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&k| bytes[k] != b'\n' && bytes[k] != b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fail_like_go() {
        for ok in ["5m", "1h30m", "-1s", "0", "1.5h", "300ms", "2µs"] {
            assert_eq!(parse_duration(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            parse_duration("-1"),
            Err("time: missing unit in duration \"-1\"".into())
        );
        assert_eq!(
            parse_duration("forever"),
            Err("time: invalid duration \"forever\"".into())
        );
        assert_eq!(
            parse_duration("5x"),
            Err("time: unknown unit \"x\" in duration \"5x\"".into())
        );
        assert_eq!(
            parse_duration(""),
            Err("time: invalid duration \"\"".into())
        );
    }

    #[test]
    fn base64_errors_point_where_go_does() {
        assert_eq!(base64_error("aGVsbG8="), None);
        assert_eq!(base64_error("aGVsbA=="), None);
        assert_eq!(base64_error("aGVs\nbG8="), None);
        assert_eq!(base64_error(""), None);
        // A data: URL fails at the colon.
        assert_eq!(base64_error("data:image/png;base64,iVBOR"), Some(4));
        // Missing padding: the start of the short quantum.
        assert_eq!(base64_error("aGVsbG8"), Some(4));
        assert_eq!(base64_error("ab!d"), Some(2));
        assert_eq!(base64_error("aGVsbA==x"), Some(8));
    }
}
