//! Kubernetes resource quantities: parsing to an exact nano-unit count and a canonical
//! string, so that `"500m"`, `"0.5"` and `0.5` compare equal, as do `"1Gi"` and
//! `"1024Mi"`.

use serde_json::Value;

const NANO: i128 = 1_000_000_000;
const BINARY_SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL_SUFFIXES: [&str; 6] = ["k", "M", "G", "T", "P", "E"];

/// Parses a quantity (`"1.5Gi"`, `"500m"`, `"1e3"`, `2`) into a count of nano-units.
/// Fractions finer than a nano-unit round up, as the API server does. `None` when the
/// value is not a quantity or does not fit.
pub fn parse_nanos(value: &Value) -> Option<i128> {
    match value {
        Value::String(s) => parse_str(s),
        Value::Number(n) => parse_str(&n.to_string()),
        _ => None,
    }
}

fn parse_str(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || number.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(frac.chars()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)?))?;
    }
    let frac_digits = i32::try_from(frac.len()).ok()?;
    let (binary_power, decimal_power) = suffix_scale(suffix)?;
    let mut value = mantissa.checked_mul(1i128.checked_shl(binary_power)?)?;
    let exponent = decimal_power + 9 - frac_digits;
    if exponent >= 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(exponent).ok()?)?)?;
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-exponent).ok()?)?;
        let rounded_up = value % divisor != 0;
        value = value / divisor + i128::from(rounded_up);
    }
    Some(if negative { -value } else { value })
}

/// Returns (power of two, power of ten) of a suffix.
fn suffix_scale(suffix: &str) -> Option<(u32, i32)> {
    if let Some(i) = BINARY_SUFFIXES.iter().position(|s| *s == suffix) {
        return Some((10 * (u32::try_from(i).ok()? + 1), 0));
    }
    if let Some(i) = DECIMAL_SUFFIXES.iter().position(|s| *s == suffix) {
        return Some((0, 3 * (i32::try_from(i).ok()? + 1)));
    }
    match suffix {
        "" => Some((0, 0)),
        "n" => Some((0, -9)),
        "u" => Some((0, -6)),
        "m" => Some((0, -3)),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let exp: i32 = exp.parse().ok()?;
            (-30..=30).contains(&exp).then_some((0, exp))
        }
    }
}

/// A canonical spelling of a nano-unit count: equal counts give equal strings. Whole
/// numbers use the largest exact binary suffix, else the largest exact decimal suffix;
/// fractions use `m`, `u` or `n`.
pub fn canonical_string(nanos: i128) -> String {
    if nanos % NANO != 0 {
        return match nanos {
            n if n % 1_000_000 == 0 => format!("{}m", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}u", n / 1_000),
            n => format!("{n}n"),
        };
    }
    let whole = nanos / NANO;
    if whole == 0 {
        return "0".to_string();
    }
    if whole % 1024 == 0 {
        let (mut value, mut index) = (whole / 1024, 0);
        while index + 1 < BINARY_SUFFIXES.len() && value % 1024 == 0 {
            value /= 1024;
            index += 1;
        }
        return format!("{value}{}", BINARY_SUFFIXES[index]);
    }
    let (mut value, mut suffix) = (whole, "");
    for next in DECIMAL_SUFFIXES {
        if value % 1000 != 0 {
            break;
        }
        value /= 1000;
        suffix = next;
    }
    format!("{value}{suffix}")
}

/// The canonical form of `value` when it is a quantity, else `None`.
pub fn canonicalize(value: &Value) -> Option<Value> {
    parse_nanos(value).map(|n| Value::String(canonical_string(n)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        canonicalize(&v)
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| "<none>".into())
    }

    #[test]
    fn equal_quantities_share_a_canonical_form() {
        let table: &[(Value, Value)] = &[
            (json!("500m"), json!("0.5")),
            (json!("500m"), json!(0.5)),
            (json!("1Gi"), json!("1024Mi")),
            (json!("1"), json!(1)),
            (json!("1000m"), json!("1")),
            (json!("1k"), json!("1000")),
            (json!("1e3"), json!("1k")),
            (json!("1.5Gi"), json!("1536Mi")),
            (json!("0"), json!("0m")),
            (json!("100M"), json!("0.1G")),
            (json!("1Gi"), json!("1073741824")),
            (json!("250m"), json!("0.25")),
        ];
        for (a, b) in table {
            assert_eq!(canon(a.clone()), canon(b.clone()), "{a} vs {b}");
            assert_ne!(canon(a.clone()), "<none>");
        }
    }

    #[test]
    fn different_quantities_differ() {
        let table: &[(Value, Value)] = &[
            (json!("500m"), json!("0.6")),
            (json!("1Gi"), json!("1G")),
            (json!("1"), json!(2)),
            (json!("128Mi"), json!("128M")),
        ];
        for (a, b) in table {
            assert_ne!(canon(a.clone()), canon(b.clone()), "{a} vs {b}");
        }
    }

    #[test]
    fn canonical_spellings() {
        assert_eq!(canon(json!("0.5")), "500m");
        assert_eq!(canon(json!("1024Mi")), "1Gi");
        assert_eq!(canon(json!(2)), "2");
        assert_eq!(canon(json!("1500")), "1500");
        assert_eq!(canon(json!("0.1m")), "100u");
        assert_eq!(canon(json!("1n")), "1n");
        assert_eq!(canon(json!("-1")), "-1");
    }

    #[test]
    fn non_quantities_are_rejected() {
        for v in [
            json!("abc"),
            json!("1Xi"),
            json!(""),
            json!("1.2.3"),
            json!(true),
            json!("Gi"),
        ] {
            assert_eq!(canon(v.clone()), "<none>", "{v}");
        }
    }
}
