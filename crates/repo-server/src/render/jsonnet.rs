//! Jsonnet entrypoints evaluated with jrsonnet 0.4: TLAs and ext vars (string or code, with
//! `$ARGOCD_APP_*` substitution), library paths relative to the repository root, and imports
//! confined to the checkout ([`imports`] checks the whole import graph before evaluation,
//! resolving exactly as jrsonnet's file resolver does). jrsonnet's state is `!Send`,
//! so each evaluation runs on its own OS thread (with a large stack for deep recursion) that
//! creates the state; the async caller waits with the render time limit.

mod imports;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use jrsonnet_evaluator::{EvaluationState, FileImportResolver, ManifestFormat};
use keelson_model::source::JsonnetVar;
use serde_json::Value;

use crate::render::confine;
use crate::render::manifest::objects_from_documents;
use crate::render::{RenderContext, RenderError};

/// Stack size of the evaluation thread.
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// How deeply arrays in the output may nest.
const MAX_ARRAY_DEPTH: usize = 16;

/// Everything one evaluation needs, owned so it can move to the worker thread.
#[derive(Debug, Clone)]
struct Job {
    root: PathBuf,
    entry: PathBuf,
    shown: String,
    libs: Vec<PathBuf>,
    ext_vars: Vec<(String, String, bool)>,
    tlas: Vec<(String, String, bool)>,
    max_file_bytes: usize,
    max_output_bytes: usize,
}

/// Evaluates the entrypoint `entry` (canonical, inside the root) into objects.
pub async fn evaluate(
    ctx: &RenderContext<'_>,
    entry: &Path,
    shown: &str,
) -> Result<Vec<Value>, RenderError> {
    let job = job_for(ctx, entry, shown)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(run(&job));
        })
        .map_err(|e| RenderError::JsonnetWorker(e.to_string()))?;
    let limit = ctx.req.limits.timeout;
    let output = match tokio::time::timeout(limit, rx).await {
        Err(_) => {
            return Err(RenderError::JsonnetTimeout {
                file: shown.to_string(),
                after: limit,
            });
        }
        Ok(Err(_)) => return Err(RenderError::JsonnetWorker("evaluation thread died".into())),
        Ok(Ok(result)) => result?,
    };
    let value: Value = serde_json::from_str(&output).map_err(|e| RenderError::Jsonnet {
        file: shown.to_string(),
        message: format!("output is not json: {e}"),
    })?;
    let mut docs = Vec::new();
    flatten(value, 0, &mut docs).map_err(|message| RenderError::Jsonnet {
        file: shown.to_string(),
        message,
    })?;
    Ok(objects_from_documents(docs, shown)?)
}

fn job_for(ctx: &RenderContext<'_>, entry: &Path, shown: &str) -> Result<Job, RenderError> {
    let env = ctx.build_env();
    let source = ctx
        .req
        .source
        .directory
        .as_ref()
        .and_then(|d| d.jsonnet.clone())
        .unwrap_or_default();
    // Argo CD searches the app directory first, then the libraries (relative to the root).
    let mut libs = vec![ctx.app_dir.to_path_buf()];
    for lib in source.libs.iter().flatten() {
        let (path, exists) =
            confine::resolve_reference(ctx.root, ctx.root, lib, "jsonnet library path")?;
        if exists {
            libs.push(path);
        }
    }
    let vars = |list: &Option<Vec<JsonnetVar>>| -> Vec<(String, String, bool)> {
        list.iter()
            .flatten()
            .map(|v| {
                let value = env.substitute(v.value.as_deref().unwrap_or(""));
                (v.name.clone(), value, v.code.unwrap_or(false))
            })
            .collect()
    };
    Ok(Job {
        root: ctx.root.to_path_buf(),
        entry: entry.to_path_buf(),
        shown: shown.to_string(),
        libs,
        ext_vars: vars(&source.ext_vars),
        tlas: vars(&source.tlas),
        max_file_bytes: ctx.req.limits.max_file_bytes,
        max_output_bytes: ctx.req.limits.max_output_bytes,
    })
}

/// Runs on the worker thread: builds the state, evaluates, returns the JSON text.
fn run(job: &Job) -> Result<String, RenderError> {
    let fail = |message: String| RenderError::Jsonnet {
        file: job.shown.clone(),
        message,
    };
    let code = crate::render::directory::read_text(&job.entry, &job.shown, job.max_file_bytes)?;
    let mut sources = vec![(job.entry.clone(), code.clone())];
    // Code variables are parsed under the names jrsonnet gives them, so their imports
    // resolve (and are checked) exactly as jrsonnet will resolve them.
    let code_vars = [("ext_code", &job.ext_vars), ("tla_code", &job.tlas)];
    for (kind, vars) in code_vars {
        for (name, value, _) in vars.iter().filter(|v| v.2) {
            sources.push((PathBuf::from(format!("{kind} {name}")), value.clone()));
        }
    }
    imports::check(&job.root, &job.libs, &sources, job.max_file_bytes).map_err(fail)?;
    let state = EvaluationState::default();
    state.with_stdlib();
    state.set_import_resolver(Box::new(FileImportResolver {
        library_paths: job.libs.clone(),
    }));
    state.set_manifest_format(ManifestFormat::Json(0));
    let result = (|| {
        for (name, value, is_code) in &job.ext_vars {
            if *is_code {
                state.add_ext_code(name.as_str().into(), value.as_str().into())?;
            } else {
                state.add_ext_str(name.as_str().into(), value.as_str().into());
            }
        }
        for (name, value, is_code) in &job.tlas {
            if *is_code {
                state.add_tla_code(name.as_str().into(), value.as_str().into())?;
            } else {
                state.add_tla_str(name.as_str().into(), value.as_str().into());
            }
        }
        let path: Rc<Path> = job.entry.clone().into();
        let val = state.evaluate_snippet_raw(path, code.as_str().into())?;
        let val = state.with_tla(val)?;
        state.manifest(val)
    })();
    let text = result.map_err(|e| fail(state.stringify_err(&e)))?;
    if text.len() > job.max_output_bytes {
        return Err(RenderError::OutputTooLarge {
            limit: job.max_output_bytes,
        });
    }
    Ok(text.to_string())
}

/// Flattens nested arrays of objects; `null` entries are dropped.
fn flatten(value: Value, depth: usize, out: &mut Vec<Value>) -> Result<(), String> {
    match value {
        Value::Array(items) => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err("output arrays nested too deeply".into());
            }
            for item in items {
                flatten(item, depth + 1, out)?;
            }
            Ok(())
        }
        Value::Null => Ok(()),
        Value::Object(_) => {
            out.push(value);
            Ok(())
        }
        other => Err(format!(
            "output must be an object or an array of objects, found {other}"
        )),
    }
}
