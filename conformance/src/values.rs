//! Session values that every driver must store and load back unchanged: the hard cases
//! by name (deep, wide, unicode, NUL, big numbers, empty keys) and a seeded stream of
//! arbitrary JSON trees. The core accepts any JSON value up to
//! [`MAX_VALUE_DEPTH`](sessionkit::core::MAX_VALUE_DEPTH) levels deep, so a driver that
//! cannot store one of these would log a user out at the next load.

use serde_json::{Map, Number, Value, json};
use sessionkit::core::MAX_VALUE_DEPTH;

/// The hard cases, by name.
pub fn tricky() -> Vec<(String, Value)> {
    let deepest = (0..MAX_VALUE_DEPTH).fold(json!("bottom"), |inner, i| {
        if i % 2 == 0 {
            json!([inner])
        } else {
            json!({ "level": inner })
        }
    });
    let wide: Map<String, Value> = (0..1000).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases = [
        ("deepest", deepest),
        ("wide", Value::Object(wide)),
        ("long array", Value::Array((0..5000).map(|i| json!(i)).collect())),
        ("nul in a string", json!("before\u{0}after")),
        ("only nul", json!("\u{0}")),
        ("nul in a key", json!({ "a\u{0}b": "\u{0}", "\u{0}": 1 })),
        (
            "control characters",
            json!("\u{1}\u{7}\u{8}\u{b}\u{c}\u{1f}\u{7f}\t\r\n"),
        ),
        (
            "unicode",
            json!("é\u{301} ключ 鍵 🔑 \u{200f}rtl\u{200e} \u{feff}bom \u{fffd}"),
        ),
        (
            "escapes",
            json!("\"quoted\" \\back\\slash\\ /slash\\u0000 literal"),
        ),
        ("empty key", json!({ "": "" })),
        ("empty containers", json!([[], {}, [[]], {"": {}}])),
        ("u64 max", json!(u64::MAX)),
        ("i64 min", json!(i64::MIN)),
        ("big float", json!(1.797_693_134_862_315_7e308)),
        ("tiny float", json!(5e-324)),
        ("negative zero", json!(-0.0)),
        ("fractions", json!([0.1, 1.0, -2.5, 1e-7, 123_456_789.123_456_79])),
        ("literals", json!([null, true, false])),
        ("null", Value::Null),
        ("json-looking string", json!("{\"a\": [1, 2]}")),
        (
            "sql-looking",
            json!({ "'; DROP TABLE sessions; --": "$1 || '' \\x00" }),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// `count` arbitrary JSON values from `seed` (the same values for the same seed), of
/// nesting up to 6 levels, with strings and keys drawn from a pool that includes NUL,
/// control characters, quotes, backslashes and characters outside the BMP.
pub fn generated(seed: u64, count: usize) -> Vec<Value> {
    let mut rng = SplitMix(seed);
    (0..count).map(|_| value(&mut rng, 6)).collect()
}

/// A small deterministic generator, so failures reproduce from the seed alone.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CHARS: [char; 16] = [
    'a',
    'Z',
    '0',
    ' ',
    '"',
    '\\',
    '/',
    '\u{0}',
    '\u{1}',
    '\n',
    'é',
    '\u{301}',
    'ж',
    '鍵',
    '😀',
    '\u{10ffff}',
];

fn string(rng: &mut SplitMix) -> String {
    let len = rng.below(12);
    (0..len)
        .map(|_| CHARS[usize::try_from(rng.below(CHARS.len() as u64)).unwrap_or(0)])
        .collect()
}

fn number(rng: &mut SplitMix) -> Value {
    match rng.below(4) {
        0 => json!(rng.next()),
        #[allow(clippy::cast_possible_wrap, reason = "any i64 bit pattern will do")]
        1 => json!(rng.next() as i64),
        2 => json!(rng.below(1000)),
        _ => {
            let float = f64::from_bits(rng.next());
            Number::from_f64(float).map_or(json!(0.5), Value::Number)
        }
    }
}

fn value(rng: &mut SplitMix, depth: u32) -> Value {
    let kinds = if depth == 0 { 5 } else { 7 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 1),
        2 => number(rng),
        3 | 4 => Value::String(string(rng)),
        5 => Value::Array((0..rng.below(5)).map(|_| value(rng, depth - 1)).collect()),
        _ => Value::Object(
            (0..rng.below(5))
                .map(|_| (string(rng), value(rng, depth - 1)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_reproducible_and_varied() {
        assert_eq!(generated(7, 50), generated(7, 50));
        let values = generated(7, 200);
        let text = serde_json::to_string(&values).expect("encodes");
        assert!(
            text.contains("\\u0000") && text.contains('😀'),
            "the pool is used"
        );
        assert!(values.iter().any(Value::is_object) && values.iter().any(Value::is_array));
    }

    #[test]
    fn every_case_is_accepted_by_the_core() {
        let keys =
            sessionkit::core::KeyRing::new(&sessionkit::Secret::new([1u8; 32].to_vec()).expect("long"));
        let def = sessionkit::SessionDef::new(sessionkit::SessionName::new("web").expect("valid"));
        let ns = sessionkit::core::Namespace::new("app").expect("valid");
        let spec = std::sync::Arc::new(sessionkit::core::SessionSpec::new(def, &ns, &keys).expect("valid"));
        let mut machine = sessionkit::core::SessionMachine::begin(
            spec,
            std::iter::empty::<&[u8]>(),
            sessionkit::Timestamp::from_millis(1),
        );
        for (name, value) in tricky() {
            machine.insert_value(name, value).expect("accepted");
        }
        for (i, value) in generated(1, 100).into_iter().enumerate() {
            machine.insert_value(format!("g{i}"), value).expect("accepted");
        }
    }
}
