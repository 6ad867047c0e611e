//! JSON files of a model folder: parse errors that name the file, the line and column and, for a
//! value of the wrong type or range, the field that holds it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Reads a JSON file into `T`, with errors that name the file, line and column.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse_json(&bytes, path)
}

/// Parses the bytes of the JSON file `path` (named in errors, with line and column) into `T`.
/// A well-formed file whose value does not fit (`"hidden_size": "64"`) names the field too.
pub fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], path: &Path) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        // serde names a missing or duplicate field itself; the other data errors get it prepended.
        let named = message.starts_with("missing field") || message.starts_with("duplicate field");
        // serde_json reports an enum given a number (`"hidden_act": 0`) as a syntax error: the
        // document still parses as JSON.
        let misfit = match e.classify() {
            serde_json::error::Category::Data => true,
            serde_json::error::Category::Syntax => serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok(),
            _ => false,
        };
        let field = if misfit && !named { field_at(bytes, e.line(), e.column()) } else { None };
        let message = match field {
            Some(key) => format!("field `{key}`: {message}"),
            None => message,
        };
        Error::Parse { path: PathBuf::from(path), format: "JSON", message }
    })
}

/// The key of the `"key": value` pair that ends before `line`:`column` (1-based, where
/// serde_json reports a value it could not use), if the text there reads as one.
fn field_at(bytes: &[u8], line: usize, column: usize) -> Option<String> {
    let start: usize = bytes.split(|&b| b == b'\n').take(line.saturating_sub(1)).map(|l| l.len() + 1).sum();
    let end = start.saturating_add(column).min(bytes.len());
    let before = bytes.get(..end)?;
    // The last `:` preceded by a closing quote, then the key back to its opening quote.
    let colon = (0..before.len()).rev().find(|&i| before[i] == b':' && before[..i].trim_ascii_end().ends_with(b"\""))?;
    let key = before[..colon].trim_ascii_end();
    let key = &key[..key.len() - 1];
    let open = key.iter().rposition(|&b| b == b'"')?;
    std::str::from_utf8(&key[open + 1..]).ok().filter(|k| !k.is_empty() && k.len() <= 64).map(str::to_string)
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialising a config cannot fail");
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Sizes {
        hidden_size: usize,
        pad_token_id: u32,
        #[serde(default)]
        act: Option<Act>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Act {
        Gelu,
        Relu,
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let path = Path::new("m/config.json");
        for (text, field) in [
            ("{\n  \"hidden_size\": \"64\",\n  \"pad_token_id\": 1\n}", "hidden_size"),
            (r#"{"hidden_size": 64, "pad_token_id": 4294967296}"#, "pad_token_id"),
            (r#"{"hidden_size": 6.5, "pad_token_id": 1}"#, "hidden_size"),
            (r#"{"hidden_size": 6, "pad_token_id": 1, "act": 0}"#, "act"),
            (r#"{"hidden_size": 6, "pad_token_id": 1, "act": "silu"}"#, "act"),
        ] {
            let e = parse_json::<Sizes>(text.as_bytes(), path).unwrap_err().to_string();
            assert!(e.contains("m/config.json") && e.contains(&format!("field `{field}`")), "{e}");
        }
        let e = parse_json::<Sizes>(br#"{"hidden_size": 64}"#, path).unwrap_err().to_string();
        assert!(e.contains("missing field `pad_token_id`") && !e.contains("field `hidden_size`"), "{e}");
        let e = parse_json::<Sizes>(br#"{"hidden_size": 6"#, path).unwrap_err().to_string();
        assert!(e.contains("m/config.json") && e.contains("EOF"), "{e}");
    }
}
