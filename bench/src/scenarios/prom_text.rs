//! Reading Prometheus text exposition (what a controller's `/metrics` serves): samples
//! with their labels, and sums over a metric name.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with any `_count`/`_sum`/`_bucket` suffix).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Every sample in `text`; comments and unreadable lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let (labels, after) = parse_labels(&line[open + 1..])?;
            (&line[..open], labels, after)
        }
        None => {
            let (name, rest) = line.split_once(char::is_whitespace)?;
            (name, BTreeMap::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Labels up to the closing `}` and the text after it.
fn parse_labels(text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_eq) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after_eq.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    value.push(if escaped == 'n' { '\n' } else { escaped });
                }
                '"' => break i,
                _ => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = &after_eq[end + 1..];
    }
}

/// Sum of the samples named `name` whose labels pass `keep`.
pub fn sum(
    samples: &[Sample],
    name: &str,
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && keep(&s.labels))
        .map(|s| s.value)
        .sum()
}

/// Values of `name` by the value of label `label`.
pub fn by_label(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter_map(|s| Some((s.labels.get(label)?.clone(), s.value)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_values_and_sums() {
        let text = "# HELP x y\n# TYPE x counter\nx{verb=\"Apply\",dry_run=\"false\"} 3\nx{verb=\"Get\",dry_run=\"false\"} 4\nx{verb=\"Apply\",dry_run=\"true\"} 5\nplain 1.5\nq{a=\"with \\\"quote\\\", comma\"} 2\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 5);
        assert_eq!(sum(&samples, "x", |l| l["dry_run"] == "false"), 7.0);
        assert_eq!(sum(&samples, "plain", |_| true), 1.5);
        assert_eq!(samples[4].labels["a"], "with \"quote\", comma");
        assert_eq!(by_label(&samples, "x", "verb").len(), 2);
    }
}
