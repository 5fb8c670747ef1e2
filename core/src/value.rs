//! What a session value may be: any JSON value within a nesting and a size limit.
//!
//! Both limits are checked when a value is inserted, so a value that was accepted always
//! loads back: a store never has to refuse, and a load never hits a decoder's recursion
//! limit (`serde_json` stops at 128 levels for a whole record; a value sits two levels
//! down in it, and drivers may wrap it once more).

use serde_json::Value;

/// The deepest nesting of arrays and objects a session value may have: a scalar is
/// depth 0, `[1]` depth 1, `{"a": [1]}` depth 2.
pub const MAX_VALUE_DEPTH: usize = 64;

/// The largest a session value may be once encoded as JSON, in bytes (4 MiB).
pub const MAX_VALUE_LEN: usize = 4 * 1024 * 1024;

/// Why a value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueLimit {
    /// Nested deeper than [`MAX_VALUE_DEPTH`].
    Depth,
    /// Longer than [`MAX_VALUE_LEN`] encoded.
    Len,
}

/// Checks `value` against both limits without allocating: one walk that tracks the depth
/// and the exact length of its compact JSON encoding, stopping as soon as a limit is
/// passed.
pub(crate) fn check(value: &Value) -> Result<(), ValueLimit> {
    let mut len = 0usize;
    walk(value, 0, &mut len)
}

fn walk(value: &Value, depth: usize, len: &mut usize) -> Result<(), ValueLimit> {
    let add = |len: &mut usize, n: usize| {
        *len = len.saturating_add(n);
        if *len > MAX_VALUE_LEN {
            Err(ValueLimit::Len)
        } else {
            Ok(())
        }
    };
    match value {
        Value::Null => add(len, 4),
        Value::Bool(b) => add(len, if *b { 4 } else { 5 }),
        Value::Number(n) => add(len, number_len(n)),
        Value::String(s) => add(len, string_len(s)),
        Value::Array(items) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(ValueLimit::Depth);
            }
            // Brackets and the commas between items.
            add(len, 2 + items.len().saturating_sub(1))?;
            items.iter().try_for_each(|item| walk(item, depth + 1, len))
        }
        Value::Object(map) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(ValueLimit::Depth);
            }
            // Braces, commas and one colon per entry.
            add(len, 2 + map.len().saturating_sub(1) + map.len())?;
            map.iter().try_for_each(|(key, item)| {
                add(len, string_len(key))?;
                walk(item, depth + 1, len)
            })
        }
    }
}

/// The encoded length of a number, as `serde_json` writes it.
fn number_len(n: &serde_json::Number) -> usize {
    if let Some(u) = n.as_u64() {
        decimal_digits(u)
    } else if let Some(i) = n.as_i64() {
        1 + decimal_digits(i.unsigned_abs())
    } else {
        // Floats print in at most 24 bytes (sign, 17 digits, point, exponent).
        24
    }
}

fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// The encoded length of a string: quotes, and escapes for `"`, `\` and control
/// characters.
fn string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |inner, i| {
            if i % 2 == 0 {
                json!([inner])
            } else {
                json!({ "k": inner })
            }
        })
    }

    #[test]
    fn depth_is_limited() {
        assert_eq!(check(&nested(MAX_VALUE_DEPTH)), Ok(()));
        assert_eq!(check(&nested(MAX_VALUE_DEPTH + 1)), Err(ValueLimit::Depth));
        assert_eq!(check(&nested(127)), Err(ValueLimit::Depth));
    }

    #[test]
    fn the_length_is_the_encoded_length() {
        for value in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-17),
            json!("plain"),
            json!("quote \" backslash \\ newline \n nul \u{0} bell \u{7} é 😀"),
            json!([]),
            json!({}),
            json!([1, "two", [3], {"four": 4}]),
            json!({"": "", "a\"b": [null, {"c": "d"}]}),
        ] {
            let encoded = serde_json::to_string(&value).expect("encodes");
            let mut len = 0;
            walk(&value, 0, &mut len).expect("small");
            assert_eq!(len, encoded.len(), "{encoded}");
        }
        let float = json!(-1.234_567_890_123_456_7e-300);
        let mut len = 0;
        walk(&float, 0, &mut len).expect("small");
        assert!(len >= serde_json::to_string(&float).expect("encodes").len());
    }

    #[test]
    fn size_is_limited() {
        let fits = Value::String("x".repeat(MAX_VALUE_LEN - 2));
        assert_eq!(check(&fits), Ok(()));
        let over = Value::String("x".repeat(MAX_VALUE_LEN - 1));
        assert_eq!(check(&over), Err(ValueLimit::Len));
        let escaped = Value::String("\u{1}".repeat(MAX_VALUE_LEN / 6 + 1));
        assert_eq!(check(&escaped), Err(ValueLimit::Len), "escapes count");
    }
}
