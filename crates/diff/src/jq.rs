//! jq path expressions (jaq), compiled once as `del(EXPR)` and evaluated on a helper
//! thread bounded by a timeout. jaq cannot be interrupted: a runaway evaluation's thread
//! is abandoned (it keeps one core busy until it ends or the process exits) and the
//! caller gets [`DiffError::JqTimeout`].
//!
//! Known gap: unbounded recursion such as `def f: f; f` overflows the helper thread's
//! stack, and a stack overflow aborts the whole process; expressions need a recursion
//! guard (or process isolation) before user input reaches this module.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use jaq_core::load::{Arena, File, Loader};
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
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Runs the deletion on `input`. `Ok(None)` when the expression yields no value or a
    /// runtime error (Argo CD skips such patches); an error on timeout.
    pub fn apply(&self, input: &Value, timeout: Duration) -> Result<Option<Value>, DiffError> {
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
                Err(DiffError::JqTimeout {
                    expression: self.expression.clone(),
                    timeout,
                })
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
    fn runaway_expression_times_out() {
        // `def f: f; f` overflows the helper thread's stack, which aborts the process: see the
        // module docs; only non-recursive runaway expressions are bounded here.
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
        }
    }
}
