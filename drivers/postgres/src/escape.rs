//! How strings that `jsonb` cannot hold are stored.
//!
//! `jsonb` refuses the NUL character (`\u0000`) in strings and object keys. Every string
//! of the session data, at any depth, value or key, is stored as [`escape`] makes it:
//!
//! - a string without NUL that does not start with [`MARKER`] is stored as it is, so
//!   ordinary data stays readable and queryable (`data->>'user_id'`);
//! - any other string is stored as [`MARKER`] followed by the string with each
//!   [`MARKER`] doubled and each NUL written as [`MARKER`] `0`.
//!
//! [`unescape`] is the exact inverse, and refuses every stored string that [`escape`]
//! cannot produce (an escaped form of a string that needs no escaping, a lone marker,
//! a marker followed by anything but itself or `0`, a NUL), so no two stored strings
//! decode to the same string and a decoded row re-encodes to the same row.
//!
//! Rows written before this encoding hold no NUL (`jsonb` refused it) and load
//! unchanged, except for strings that start with [`MARKER`], a character from Unicode's
//! Supplementary Private Use Area-B: such a string now reads as an escaped one, and the
//! row as corrupt when it is not a valid escape.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The escape marker: U+10FFFD, the last private-use code point, which no standard
/// assigns and text rarely holds.
pub(crate) const MARKER: char = '\u{10FFFD}';

/// What follows [`MARKER`] in an escaped string to stand for NUL.
const NUL_CODE: char = '0';

/// A stored string that [`escape`] cannot have produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadEscape;

/// Whether `s` is stored escaped.
fn needs_escape(s: &str) -> bool {
    s.starts_with(MARKER) || s.contains('\0')
}

/// The stored form of `s`: `s` itself unless it holds NUL or starts with [`MARKER`].
/// Never holds NUL.
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    if !needs_escape(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push(MARKER);
    for c in s.chars() {
        match c {
            MARKER => out.extend([MARKER, MARKER]),
            '\0' => out.extend([MARKER, NUL_CODE]),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The string whose stored form is `stored`.
///
/// # Errors
/// [`BadEscape`] when [`escape`] never produces `stored`.
pub(crate) fn unescape(stored: &str) -> Result<Cow<'_, str>, BadEscape> {
    let Some(body) = stored.strip_prefix(MARKER) else {
        return if stored.contains('\0') {
            Err(BadEscape)
        } else {
            Ok(Cow::Borrowed(stored))
        };
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            MARKER => match chars.next() {
                Some(MARKER) => out.push(MARKER),
                Some(NUL_CODE) => out.push('\0'),
                _ => return Err(BadEscape),
            },
            '\0' => return Err(BadEscape),
            c => out.push(c),
        }
    }
    // Canonical forms only: a string that needs no escape is never stored escaped.
    if needs_escape(&out) {
        Ok(Cow::Owned(out))
    } else {
        Err(BadEscape)
    }
}

/// `value` with every string and object key in its stored form.
///
/// Recursive: session values are at most
/// [`MAX_VALUE_DEPTH`](sessionkit::core::MAX_VALUE_DEPTH) deep, and serialising a
/// value recurses as deep anyway.
pub(crate) fn escape_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(escape(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(escape_value).collect()),
        Value::Object(map) => Value::Object(escape_map(map)),
        other => other.clone(),
    }
}

/// `map` with every string and object key in its stored form.
pub(crate) fn escape_map<'a>(map: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Map<String, Value> {
    // `escape` is injective, so distinct keys stay distinct.
    map.into_iter()
        .map(|(k, v)| (escape(k).into_owned(), escape_value(v)))
        .collect()
}

/// Turns stored strings and keys of `value` back into what was written, in place.
///
/// Recursive: a decoded value is at most as deep as `serde_json`'s recursion limit.
///
/// # Errors
/// [`BadEscape`] when a string or key is not a stored form.
pub(crate) fn unescape_value(value: &mut Value) -> Result<(), BadEscape> {
    match value {
        Value::String(s) => {
            if let Cow::Owned(plain) = unescape(s)? {
                *s = plain;
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(unescape_value),
        Value::Object(map) => unescape_map(map),
        _ => Ok(()),
    }
}

/// [`unescape_value`] for the entries of an object.
///
/// # Errors
/// [`BadEscape`] when a string or key is not a stored form.
pub(crate) fn unescape_map(map: &mut Map<String, Value>) -> Result<(), BadEscape> {
    map.values_mut().try_for_each(unescape_value)?;
    // Keys are immutable in a map: rebuild it only when a key is not stored as it is.
    if map.keys().any(|k| k.starts_with(MARKER) || k.contains('\0')) {
        // `unescape` is injective, so no two keys merge.
        *map = std::mem::take(map)
            .into_iter()
            .map(|(k, v)| unescape(&k).map(|k| (k.into_owned(), v)))
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Strings rich in the characters the encoding treats specially.
    fn tricky_string() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            Just('\0'),
            Just(MARKER),
            Just(NUL_CODE),
            Just('a'),
            Just('\u{10FFFC}'),
            any::<char>(),
        ];
        proptest::collection::vec(c, 0..12).prop_map(|chars| chars.into_iter().collect())
    }

    fn tricky_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            tricky_string().prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((tricky_string(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn strings_round_trip_without_nul(s in tricky_string()) {
            let stored = escape(&s);
            prop_assert!(!stored.contains('\0'));
            let back = unescape(&stored);
            prop_assert_eq!(back.as_deref(), Ok(s.as_str()));
            // Ordinary strings are stored as they are.
            prop_assert_eq!(stored == s, !needs_escape(&s));
        }

        #[test]
        fn only_stored_forms_decode_and_they_re_encode_identically(stored in tricky_string()) {
            if let Ok(plain) = unescape(&stored) {
                prop_assert_eq!(escape(&plain), stored.as_str());
            }
        }

        #[test]
        fn values_round_trip_through_json_text(value in tricky_value()) {
            let stored = escape_value(&value);
            let text = stored.to_string();
            prop_assert!(!text.contains("\\u0000"));
            let mut back: Value = serde_json::from_str(&text).expect("valid JSON");
            prop_assert_eq!(unescape_value(&mut back), Ok(()));
            prop_assert_eq!(back, value);
        }
    }

    #[test]
    fn the_stored_forms() {
        let m = MARKER;
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("mid\u{10FFFD}dle"), "mid\u{10FFFD}dle");
        assert_eq!(escape("a\0b"), format!("{m}a{m}0b"));
        assert_eq!(escape("\0"), format!("{m}{m}0"));
        assert_eq!(escape(&format!("{m}x")), format!("{m}{m}{m}x"));
        assert_eq!(escape(&format!("{m}\0{m}")), format!("{m}{m}{m}{m}0{m}{m}"));
        for bad in [
            format!("{m}"),
            format!("{m}abc"),
            format!("{m}a{m}"),
            format!("{m}a{m}1"),
            format!("{m}{m}0{m}x"),
            format!("{m}a\0"),
            "a\0".to_owned(),
        ] {
            assert_eq!(unescape(&bad), Err(BadEscape), "{bad:?}");
        }
    }

    #[test]
    fn keys_and_nested_values_are_escaped_and_restored() {
        let value = json!({"a\0": ["\0", {"\u{10FFFD}": "x"}], "plain": "plain"});
        let stored = escape_value(&value);
        assert_eq!(
            stored,
            json!({"\u{10FFFD}a\u{10FFFD}0": ["\u{10FFFD}\u{10FFFD}0", {"\u{10FFFD}\u{10FFFD}\u{10FFFD}": "x"}], "plain": "plain"})
        );
        let mut back = stored;
        unescape_value(&mut back).expect("stored forms");
        assert_eq!(back, value);
        let mut bad = json!({"ok": [{"\u{10FFFD}": 1}]});
        assert_eq!(unescape_value(&mut bad), Err(BadEscape));
    }
}
