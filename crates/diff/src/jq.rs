//! jq path expressions (jaq), compiled once as `del(EXPR)` and evaluated on a helper
//! thread bounded by a timeout. jaq cannot be interrupted: a runaway evaluation's thread
//! is abandoned (it keeps one core busy until it ends or the process exits) and the
//! caller gets [`DiffError::JqTimeout`].
//!
//! A stack overflow cannot be caught (it aborts the process), so expressions that can
//! recurse without a bound in the data are refused at compile time: user function
//! definitions and the recursive builtins `repeat`, `while`, `until` and `recurse(f)`
//! (`..` and bare `recurse` walk the input, whose depth serde_json bounds). An expression
//! that timed out once is poisoned: later calls fail at once instead of abandoning another
//! thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use jaq_core::load::lex::{StrPart, Tok, Token};
use jaq_core::load::{Arena, File, Lexer, Loader};
use jaq_core::{Compiler, Ctx, Native, RcIter};
use jaq_json::Val;
use serde_json::Value;

use crate::error::DiffError;

type Filter = jaq_core::Filter<Native<Val>>;

/// A compiled `del(EXPR)` filter.
#[derive(Clone)]
pub struct JqPath {
    expression: String,
    filter: Arc<Filter>,
    timed_out: Arc<AtomicBool>,
}

/// Builtins defined by recursion on themselves rather than on the input's structure.
const UNBOUNDED_BUILTINS: [&str; 3] = ["repeat", "while", "until"];

/// The first construct of `tokens` that can recurse without a bound, if any.
fn unbounded_recursion<'a>(tokens: &[Token<&'a str>]) -> Option<&'a str> {
    tokens.iter().enumerate().find_map(|(i, Token(text, tok))| match tok {
        Tok::Word if *text == "def" || UNBOUNDED_BUILTINS.contains(text) => Some(*text),
        Tok::Word if *text == "recurse" => {
            let has_args = matches!(tokens.get(i + 1), Some(Token(next, Tok::Block(_))) if next.starts_with('('));
            has_args.then_some("recurse(f)")
        }
        Tok::Block(inner) => unbounded_recursion(inner),
        Tok::Str(parts) => parts.iter().find_map(|part| match part {
            StrPart::Term(Token(_, Tok::Block(inner))) => unbounded_recursion(inner),
            _ => None,
        }),
        _ => None,
    })
}

impl std::fmt::Debug for JqPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JqPath")
            .field("expression", &self.expression)
            .finish()
    }
}

impl JqPath {
    /// Compiles `del(expression)`.
    pub fn compile(expression: &str) -> Result<JqPath, DiffError> {
        let fail = |message: String| DiffError::JqCompile {
            expression: expression.to_string(),
            message,
        };
        let tokens = Lexer::new(expression)
            .lex()
            .map_err(|errs| fail(format!("{} lexical error(s)", errs.len())))?;
        if let Some(construct) = unbounded_recursion(&tokens) {
            return Err(fail(format!(
                "`{construct}` can recurse without bound and is not allowed"
            )));
        }
        let code = format!("del({expression})");
        let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: code.as_str(),
                    path: (),
                },
            )
            .map_err(|errs| fail(format!("{} parse error(s)", errs.len())))?;
        let filter = Compiler::default()
            .with_funs(jaq_std::funs().chain(jaq_json::funs()))
            .compile(modules)
            .map_err(|errs| {
                let names: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, e)| e.iter().map(|(name, _)| (*name).to_string()))
                    .collect();
                fail(format!("undefined {}", names.join(", ")))
            })?;
        Ok(JqPath {
            expression: expression.to_string(),
            filter: Arc::new(filter),
            timed_out: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Runs the deletion on `input`. `Ok(None)` when the expression yields no value or a
    /// runtime error (Argo CD skips such patches); an error on timeout.
    pub fn apply(&self, input: &Value, timeout: Duration) -> Result<Option<Value>, DiffError> {
        let timed_out = || DiffError::JqTimeout {
            expression: self.expression.clone(),
            timeout,
        };
        if self.timed_out.load(Ordering::Relaxed) {
            return Err(timed_out());
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let filter = Arc::clone(&self.filter);
        let input = input.clone();
        std::thread::Builder::new()
            .name("keelson-jq".to_string())
            .spawn(move || {
                let inputs = RcIter::new(core::iter::empty());
                let mut out = filter.run((Ctx::new([], &inputs), Val::from(input)));
                let first = match out.next() {
                    Some(Ok(v)) => Some(Value::from(v)),
                    _ => None,
                };
                let _ = tx.send(first);
            })
            .map_err(DiffError::JqThread)?;
        match rx.recv_timeout(timeout) {
            Ok(result) => Ok(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(expression = %self.expression, ?timeout, "jq path expression timed out");
                self.timed_out.store(true, Ordering::Relaxed);
                Err(timed_out())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    #[test]
    fn deletes_selected_paths() {
        let jq =
            JqPath::compile(".spec.template.spec.containers[] | select(.name == \"a\") | .image")
                .unwrap();
        let input = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let out = jq.apply(&input, Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(
            out,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "y"}]}}}})
        );
    }

    #[test]
    fn compile_errors_are_reported() {
        let err = JqPath::compile(".spec | nosuchfn").unwrap_err();
        assert!(err.to_string().contains("nosuchfn"), "{err}");
        assert!(JqPath::compile(".spec[").is_err());
    }

    #[test]
    fn unbounded_recursion_is_refused() {
        for expr in [
            "def f: f; f",
            ".a | last(repeat(.))",
            "[.a | while(true; .)]",
            ".a | until(false; .)",
            ".spec | (\"x\\(recurse(.))\") as $s | .a",
            "first(recurse(. + 1))",
        ] {
            let err = JqPath::compile(expr).unwrap_err();
            assert!(
                err.to_string().contains("recurse without bound"),
                "{expr}: {err}"
            );
        }
        for expr in [
            ".. | select(.name? == \"repeat\") | .image",
            ".spec | recurse | .x?",
            ".metadata.labels.until",
        ] {
            JqPath::compile(expr).unwrap();
        }
    }

    #[test]
    fn runaway_expression_times_out() {
        for expr in [
            ".a | select(last(range(1e15)) > 0)",
            ".[range(1e15) | tostring]",
        ] {
            let jq = JqPath::compile(expr).unwrap();
            let start = Instant::now();
            let err = jq
                .apply(&json!({"a": 1}), Duration::from_millis(300))
                .unwrap_err();
            assert!(matches!(err, DiffError::JqTimeout { .. }), "{err}");
            assert!(start.elapsed() < Duration::from_secs(2));
            // Poisoned: the next call fails at once without another thread.
            let again = Instant::now();
            assert!(jq.apply(&json!({"a": 1}), Duration::from_secs(5)).is_err());
            assert!(again.elapsed() < Duration::from_millis(100));
        }
    }
}
