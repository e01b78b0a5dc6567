//! The SD parameters of an event: an ordered map with Python-dict semantics.
//!
//! Honeypots emit parameters in insertion order and the dashboard shows them that way, so
//! this is a small vector rather than a hash map. Setting a key that already exists
//! replaces its value in place (first position, last value), which is what the original's
//! `dict` did with a repeated SD-PARAM and keeps the JSON object free of duplicate keys.
//!
//! [`Fields::insert`] finds a repeated key by scanning, so building a list of n
//! parameters with it costs O(n²): a 64 KiB line can carry thousands. Bulk construction
//! (the parser, [`FromIterator`], JSON) goes through [`FieldsBuilder`] instead, which
//! scans while the list is small and switches to a hash index of the keys beyond
//! [`FieldsBuilder::SMALL`] entries, so it stays linear in the input. The index uses the
//! standard library's randomly keyed SipHash, so attacker-chosen keys cannot force
//! collisions.

use std::collections::HashMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ordered `key → value` parameters of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// An empty parameter list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, keeping the key's first position if it is already present.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parameters as JSON object text, in order (the `logs.fields` column).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    /// Appends [`Fields::to_json`]'s text to `out`, byte for byte what `serde_json` writes.
    ///
    /// By hand, into the caller's buffer: the store formats this for every line it
    /// receives, and serde's machinery plus a `String` per line was a tenth of the
    /// listener's work per line.
    pub fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(out, k);
            out.push(':');
            json_string(out, v);
        }
        out.push('}');
    }

    /// Reads back [`Fields::to_json`] output; `None` if the text is not a JSON object of strings.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Appends `s` as a JSON string: `"` and `\` escaped, control characters as serde_json
/// writes them (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00xx`), everything else as is.
fn json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    // Runs without anything to escape are copied whole; only the bytes that need it are
    // looked at one by one.
    while let Some(skip) = bytes[start..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
    {
        let i = start + skip;
        // `bytes[i]` is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        match bytes[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Builds [`Fields`] from many parameters in time linear in their number.
#[derive(Debug, Default)]
pub struct FieldsBuilder {
    pairs: Vec<(String, String)>,
    /// Position of every key in `pairs`, built once there are more than [`Self::SMALL`].
    index: Option<HashMap<String, usize>>,
}

impl FieldsBuilder {
    /// Up to this many parameters a scan beats hashing (typical lines have fewer than ten).
    pub const SMALL: usize = 16;

    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` as [`Fields::insert`] does (first position, last value).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        if let Some(index) = &mut self.index {
            match index.get(&key) {
                Some(&i) => self.pairs[i].1 = value,
                None => {
                    index.insert(key.clone(), self.pairs.len());
                    self.pairs.push((key, value));
                }
            }
            return;
        }
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((key, value)),
        }
        if self.pairs.len() > Self::SMALL {
            let index = self
                .pairs
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            self.index = Some(index);
        }
    }

    /// The parameters collected, in order.
    pub fn finish(self) -> Fields {
        Fields(self.pairs)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut fields = FieldsBuilder::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields.finish()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Reads a JSON object in document order (serde_json's own map would sort the keys).
struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
        let mut fields = FieldsBuilder::new();
        while let Some((k, v)) = access.next_entry::<String, String>()? {
            fields.insert(k, v);
        }
        Ok(fields.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_first_position_and_last_value() {
        let mut f = Fields::new();
        f.insert("a", "1");
        f.insert("b", "2");
        f.insert("a", "3");
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![("a", "3"), ("b", "2")]);
    }

    #[test]
    fn builder_agrees_with_insert_past_the_index_threshold() {
        let keys: Vec<String> = (0..100).map(|i| format!("k{}", i % 40)).collect();
        let mut slow = Fields::new();
        let mut fast = FieldsBuilder::new();
        for (i, k) in keys.iter().enumerate() {
            slow.insert(k.as_str(), i.to_string());
            fast.insert(k.as_str(), i.to_string());
        }
        let fast = fast.finish();
        assert_eq!(fast, slow);
        assert_eq!(fast.len(), 40);
        assert_eq!(fast.get("k0"), Some("80"));
        assert_eq!(fast.iter().next(), Some(("k0", "80")));
    }

    #[test]
    fn json_keeps_order_and_escapes() {
        let f: Fields = [("z", "q\"uote"), ("a", "é\n")].into_iter().collect();
        let json = f.to_json();
        assert_eq!(json, r#"{"z":"q\"uote","a":"é\n"}"#);
        assert_eq!(Fields::from_json(&json), Some(f));
    }

    #[test]
    fn json_is_what_serde_json_writes() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let f: Fields = [
            ("", ""),
            ("ctl\u{0}\u{1f}\u{7f}", all.as_str()),
            ("\"\\", "\u{1f41d}é\u{2028}\r\n\t\u{8}\u{c}"),
            ("plain", "value"),
        ]
        .into_iter()
        .collect();
        let serde = serde_json::to_string(&f).unwrap_or_default();
        assert_eq!(f.to_json(), serde);
        assert_eq!(Fields::new().to_json(), "{}");
        let mut out = String::from("x");
        f.write_json(&mut out);
        assert_eq!(out, format!("x{serde}"));
    }

    #[test]
    fn from_json_rejects_non_objects() {
        assert_eq!(Fields::from_json("[1]"), None);
        assert_eq!(Fields::from_json(r#"{"a":1}"#), None);
        assert_eq!(Fields::from_json("{"), None);
    }
}
