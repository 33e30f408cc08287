//! Sentry's JSON encoding: compact separators, keys in insertion order, and
//! every character outside printable ASCII escaped as `\u` plus four hex
//! digits (Python's `ensure_ascii`). Signatures are computed over exactly
//! these bytes.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io;

/// Serializes `value` as Sentry's encoder would.
pub fn to_sentry_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    value.serialize(&mut serializer).expect("serializing JSON into memory cannot fail");
    out
}

/// The compact format (the trait's defaults), except that string contents are escaped the way
/// Python's `json` module does with `ensure_ascii=True`: anything outside
/// `' '..='~'` becomes `\u` plus four lower-case hex digits, characters
/// beyond the Basic Multilingual Plane as a surrogate pair.
struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..index])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = index + ch.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(value: &serde_json::Value) -> String {
        String::from_utf8(to_sentry_json(value)).unwrap()
    }

    #[test]
    fn is_compact_and_keeps_key_order() {
        let value = json!({"action": "created", "installation": {"uuid": "x"}, "data": {}, "actor": {"id": 1}});
        assert_eq!(encode(&value), r#"{"action":"created","installation":{"uuid":"x"},"data":{},"actor":{"id":1}}"#);
    }

    #[test]
    fn escapes_non_ascii_like_python() {
        assert_eq!(encode(&json!({"comment": "héllo"})), r#"{"comment":"h\u00e9llo"}"#);
        // Astral characters become a surrogate pair, as json.dumps does.
        assert_eq!(encode(&json!("🐛")), r#""\ud83d\udc1b""#);
        // DEL is outside ' '..='~' and is escaped too.
        assert_eq!(encode(&json!("a\u{7f}b")), r#""a\u007fb""#);
    }

    #[test]
    fn control_characters_use_short_escapes() {
        assert_eq!(encode(&json!("a\"b\\c\nd\te\u{1}")), r#""a\"b\\c\nd\te\u0001""#);
        assert_eq!(encode(&json!("/")), r#""/""#);
    }
}
