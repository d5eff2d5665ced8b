//! Conformance of the built-in checks with the shared health cases (Argo CD facts).

use anyhow::Context;
use keelson_health::builtin_health;
use serde::Deserialize;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/health-builtin"
);

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    file: String,
    status: String,
    message: Option<String>,
}

/// Checks one case; `Some(description)` on mismatch.
fn check(case: &Case) -> anyhow::Result<Option<String>> {
    let path = format!("{DIR}/testdata/{}", case.file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let obj: serde_json::Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {path}"))?;
    let got = builtin_health(&obj);
    let got_status = got.as_ref().map_or("none", |h| h.status.as_str());
    if got_status != case.status {
        return Ok(Some(format!(
            "{}: status {got_status} (message {:?}), expected {}",
            case.file,
            got.map(|h| h.message),
            case.status
        )));
    }
    if let (Some(expected), Some(got)) = (&case.message, &got)
        && &got.message != expected
    {
        return Ok(Some(format!(
            "{}: message {:?}, expected {expected:?}",
            case.file, got.message
        )));
    }
    Ok(None)
}

#[test]
fn every_builtin_case_matches() -> anyhow::Result<()> {
    let index = std::fs::read_to_string(format!("{DIR}/expected.yaml"))?;
    let cases: Cases = serde_yaml_ng::from_str(&index)?;
    let mut mismatches = Vec::new();
    for case in &cases.cases {
        match check(case) {
            Ok(None) => {}
            Ok(Some(mismatch)) => mismatches.push(mismatch),
            Err(error) => mismatches.push(format!("{}: {error:#}", case.file)),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases mismatch:\n{}",
        mismatches.len(),
        cases.cases.len(),
        mismatches.join("\n")
    );
    assert_eq!(cases.cases.len(), 50, "expected 50 cases");
    Ok(())
}
