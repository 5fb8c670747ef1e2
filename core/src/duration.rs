//! Human durations for configuration: `"24h"`, `"30m"`, `"1h30m"`, `"90s"`, `"500ms"`,
//! `"7d"`, `"2w"`.

use std::time::Duration;

/// Parses a human duration: one or more `<integer><unit>` parts, optionally separated by
/// spaces, with units `ms`, `s`, `m`, `h`, `d`, `w`. `"0"` alone is zero.
///
/// # Errors
/// A message saying what is wrong, for the config error that names the key.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration; write e.g. \"30m\", \"24h\" or \"1h30m\"".to_owned());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at {rest:?} in {text:?}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("number too large in {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let millis_per: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "missing unit after {number} in {text:?} (ms, s, m, h, d or w)"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {text:?} (ms, s, m, h, d or w)"
                ));
            }
        };
        total = number
            .checked_mul(millis_per)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`"1h30m"`), for `info()`.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if millis >= size {
            out.push_str(&(millis / size).to_string());
            out.push_str(unit);
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases = [
            ("24h", 86_400),
            ("30m", 1_800),
            ("1h30m", 5_400),
            ("1h 30m", 5_400),
            ("90s", 90),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("0", 0),
        ];
        for (text, secs) in cases {
            let parsed = parse_duration(text).expect(text);
            assert_eq!(parsed, Duration::from_secs(secs), "{text}");
            assert_eq!(
                parse_duration(&format_duration(parsed)).expect("round trip"),
                parsed
            );
        }
        assert_eq!(parse_duration("500ms").expect("ms"), Duration::from_millis(500));
        assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "h",
            "10",
            "10x",
            "1.5h",
            "-1s",
            "99999999999999999999s",
            "18446744073709551615w",
            "1h30",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }
}
