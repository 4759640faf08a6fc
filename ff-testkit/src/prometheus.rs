//! A strict reader of Prometheus text format 0.0.4, for tests of
//! `/metrics`: it refuses what Prometheus would refuse (bad names, bad
//! escapes, a family's samples split apart, a `TYPE` after samples or
//! twice).

use std::collections::{BTreeMap, HashSet};

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base;
        }
    }
    name
}

fn parse_labels(s: &str, line: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("label without =\"…\": {line}"))?;
        if !is_name(name, false) {
            return Err(format!("bad label name {name:?}: {line}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars
                .next()
                .ok_or_else(|| format!("unterminated label value: {line}"))?;
            match c {
                '"' => break i,
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err(format!("bad escape in label value: {line}")),
                },
                '\n' => return Err(format!("raw newline in label value: {line}")),
                c => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice: {line}"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

/// Parses `text`.
///
/// # Errors
/// The first line Prometheus would refuse, and why.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_families: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_name(name, true) {
                        return Err(format!("bad metric name in TYPE: {line}"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("unknown type {kind}: {line}"));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(format!("TYPE of {name} given twice"));
                    }
                    if seen_families.contains(name) {
                        return Err(format!("TYPE of {name} after its samples"));
                    }
                }
                (Some("HELP"), Some(name), _) if !is_name(name, true) => {
                    return Err(format!("bad metric name in HELP: {line}"));
                }
                _ => {}
            }
            continue;
        }
        let (name_labels, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("no value: {line}"))?;
        // An optional timestamp after the value.
        let (name_labels, value) = match name_labels.rsplit_once(' ') {
            Some((nl, v)) if !nl.ends_with(',') && parse_value(v).is_some() && !v.contains('"') => {
                (nl, v)
            }
            _ => (name_labels, value),
        };
        let value = parse_value(value).ok_or_else(|| format!("bad value: {line}"))?;
        let (name, labels) = match name_labels.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| format!("labels not closed: {line}"))?;
                (name, parse_labels(inner, line)?)
            }
            None => (name_labels, BTreeMap::new()),
        };
        if !is_name(name, true) {
            return Err(format!("bad metric name {name:?}: {line}"));
        }
        let family = family_of(name, &types).to_owned();
        if current.as_deref() != Some(family.as_str()) {
            if !seen_families.insert(family.clone()) {
                return Err(format!(
                    "the samples of {family} are not together (again at: {line})"
                ));
            }
            current = Some(family);
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The value of the first sample named `name` whose labels include `labels`.
#[must_use]
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_text_parses() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\n\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2.5\nh_count 1\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(value(&s, "a_total", &[("y", "q\"\n")]), Some(3.0));
        assert_eq!(value(&s, "h_bucket", &[("le", "+Inf")]), Some(1.0));
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in [
            "1abc 3\n",
            "a{x=1} 3\n",
            "a{x=\"1\"} three\n",
            "a 1\nb 1\na 2\n",
            "a 1\n# TYPE a gauge\n",
            "# TYPE a gauge\n# TYPE a gauge\n",
            "a{x=\"\\q\"} 1\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
