//! Static confinement of Jsonnet imports. Jsonnet imports are string literals, so the whole
//! import graph is known before evaluation: every `import`/`importstr` in the entrypoint, in
//! ext/TLA code and (transitively) in imported files is parsed with jrsonnet's own parser and
//! resolved exactly as jrsonnet's `FileImportResolver` will resolve it (importing file's
//! directory, then the library paths); any resolution whose real path leaves the checkout root
//! is refused before evaluation starts.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use jrsonnet_parser::{
    ArgsDesc, BindSpec, CompSpec, Expr, FieldName, LocExpr, Member, ObjBody, ParamsDesc,
    ParserSettings,
};

use crate::render::confine;

/// Bound on files visited in one import graph.
const MAX_FILES: usize = 10_000;

/// An import found in a source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    path: PathBuf,
    code: bool,
}

/// Checks the import graph of the given sources (`(name jrsonnet knows it by, text)`).
/// Returns a message naming the offending import.
pub fn check(
    root: &Path,
    libs: &[PathBuf],
    sources: &[(PathBuf, String)],
    max_file_bytes: usize,
) -> Result<(), String> {
    let mut queue: VecDeque<(PathBuf, String)> = sources.iter().cloned().collect();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut visited = 0usize;
    while let Some((name, text)) = queue.pop_front() {
        visited += 1;
        if visited > MAX_FILES {
            return Err(format!("more than {MAX_FILES} files in the import graph"));
        }
        let Some(imports) = imports_of(&name, &text) else {
            continue; // jrsonnet reports the syntax error itself
        };
        let from = name.parent().map(Path::to_path_buf).unwrap_or_default();
        for import in imports {
            let Some(resolved) = resolve(&from, libs, &import.path) else {
                continue; // jrsonnet reports the missing file itself
            };
            let real = resolved
                .canonicalize()
                .map_err(|e| format!("import {:?}: {e}", import.path.display()))?;
            if !confine::is_inside(&real, root) {
                return Err(format!(
                    "import {:?} resolves outside the repository",
                    import.path.display()
                ));
            }
            let size = std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0);
            if size > max_file_bytes as u64 {
                return Err(format!(
                    "import {:?} is {size} bytes, over the limit of {max_file_bytes} bytes",
                    import.path.display()
                ));
            }
            if import.code
                && seen.insert(resolved.clone())
                && let Ok(text) = std::fs::read_to_string(&resolved)
            {
                queue.push_back((resolved, text));
            }
        }
    }
    Ok(())
}

/// jrsonnet 0.4's `FileImportResolver::resolve_file`, without reading anything.
fn resolve(from: &Path, libs: &[PathBuf], path: &Path) -> Option<PathBuf> {
    let direct = from.join(path);
    if direct.exists() {
        return Some(direct);
    }
    libs.iter().map(|lib| lib.join(path)).find(|p| p.exists())
}

/// The imports of one source, or `None` when it does not parse.
fn imports_of(name: &Path, text: &str) -> Option<Vec<Import>> {
    let file_name: Rc<Path> = name.into();
    let expr = jrsonnet_parser::parse(
        text,
        &ParserSettings {
            loc_data: true,
            file_name,
        },
    )
    .ok()?;
    let mut out = Vec::new();
    walk(&expr, &mut out, 0);
    Some(out)
}

fn walk_all<'a>(exprs: impl IntoIterator<Item = &'a LocExpr>, out: &mut Vec<Import>, depth: usize) {
    for e in exprs {
        walk(e, out, depth);
    }
}

fn walk_binds(binds: &[BindSpec], out: &mut Vec<Import>, depth: usize) {
    for b in binds {
        walk_params(b.params.as_ref(), out, depth);
        walk(&b.value, out, depth);
    }
}

fn walk_params(params: Option<&ParamsDesc>, out: &mut Vec<Import>, depth: usize) {
    for p in params.iter().flat_map(|p| p.0.iter()) {
        walk_all(p.1.iter(), out, depth);
    }
}

fn walk_args(args: &ArgsDesc, out: &mut Vec<Import>, depth: usize) {
    walk_all(args.0.iter().map(|a| &a.1), out, depth);
}

fn walk_specs(specs: &[CompSpec], out: &mut Vec<Import>, depth: usize) {
    for spec in specs {
        match spec {
            CompSpec::IfSpec(s) => walk(&s.0, out, depth),
            CompSpec::ForSpec(s) => walk(&s.1, out, depth),
        }
    }
}

fn walk_obj(body: &ObjBody, out: &mut Vec<Import>, depth: usize) {
    match body {
        ObjBody::MemberList(members) => {
            for m in members {
                match m {
                    Member::Field(f) => {
                        if let FieldName::Dyn(e) = &f.name {
                            walk(e, out, depth);
                        }
                        walk_params(f.params.as_ref(), out, depth);
                        walk(&f.value, out, depth);
                    }
                    Member::BindStmt(b) => walk_binds(std::slice::from_ref(b), out, depth),
                    Member::AssertStmt(a) => {
                        walk(&a.0, out, depth);
                        walk_all(a.1.iter(), out, depth);
                    }
                }
            }
        }
        ObjBody::ObjComp(c) => {
            walk_binds(&c.pre_locals, out, depth);
            walk(&c.key, out, depth);
            walk(&c.value, out, depth);
            walk_binds(&c.post_locals, out, depth);
            walk_specs(&c.compspecs, out, depth);
        }
    }
}

/// Collects imports; the parser bounds nesting, the depth guard bounds this walk's stack.
fn walk(expr: &LocExpr, out: &mut Vec<Import>, depth: usize) {
    if depth > 10_000 {
        return;
    }
    let d = depth + 1;
    match &*expr.0 {
        Expr::Import(p) => out.push(Import {
            path: p.clone(),
            code: true,
        }),
        Expr::ImportStr(p) => out.push(Import {
            path: p.clone(),
            code: false,
        }),
        Expr::Literal(_) | Expr::Str(_) | Expr::Num(_) | Expr::Var(_) | Expr::Intrinsic(_) => {}
        Expr::Arr(items) => walk_all(items, out, d),
        Expr::ArrComp(e, specs) => {
            walk(e, out, d);
            walk_specs(specs, out, d);
        }
        Expr::Obj(body) => walk_obj(body, out, d),
        Expr::ObjExtend(e, body) => {
            walk(e, out, d);
            walk_obj(body, out, d);
        }
        Expr::Parened(e) | Expr::UnaryOp(_, e) | Expr::ErrorStmt(e) => walk(e, out, d),
        Expr::BinaryOp(a, _, b) | Expr::Index(a, b) => {
            walk(a, out, d);
            walk(b, out, d);
        }
        Expr::AssertExpr(a, e) => {
            walk(&a.0, out, d);
            walk_all(a.1.iter(), out, d);
            walk(e, out, d);
        }
        Expr::LocalExpr(binds, e) => {
            walk_binds(binds, out, d);
            walk(e, out, d);
        }
        Expr::Apply(f, args, _) => {
            walk(f, out, d);
            walk_args(args, out, d);
        }
        Expr::Function(params, body) => {
            walk_params(Some(params), out, d);
            walk(body, out, d);
        }
        Expr::IfElse {
            cond,
            cond_then,
            cond_else,
        } => {
            walk(&cond.0, out, d);
            walk(cond_then, out, d);
            walk_all(cond_else.iter(), out, d);
        }
        Expr::Slice(e, s) => {
            walk(e, out, d);
            walk_all(
                s.start.iter().chain(s.end.iter()).chain(s.step.iter()),
                out,
                d,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_imports_everywhere() {
        let src = r#"
            local a = import "a.libsonnet";
            {
              [importstr "k.txt"]: 1,
              f(x=import "d.libsonnet"):: x,
              list: [i for i in (import "l.json") if importstr "c.txt" != ""],
              s: (import "s.json")[1:2],
            }
        "#;
        let imports = imports_of(Path::new("/x/main.jsonnet"), src).unwrap();
        let paths: Vec<String> = imports
            .iter()
            .map(|i| i.path.display().to_string())
            .collect();
        for want in [
            "a.libsonnet",
            "k.txt",
            "d.libsonnet",
            "l.json",
            "c.txt",
            "s.json",
        ] {
            assert!(
                paths.contains(&want.to_string()),
                "{want} missing from {paths:?}"
            );
        }
    }

    #[test]
    fn escapes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("repo/app")).unwrap();
        let repo = root.join("repo");
        std::fs::write(root.join("secret.txt"), "s").unwrap();
        let entry = repo.join("app/main.jsonnet");
        let check_src = |src: &str| check(&repo, &[], &[(entry.clone(), src.to_string())], 1 << 20);
        assert!(check_src("importstr '/etc/passwd'").is_err());
        assert!(check_src("importstr '../../secret.txt'").is_err());
        assert!(check_src("{}").is_ok());
        std::os::unix::fs::symlink(root.join("secret.txt"), repo.join("app/link.txt")).unwrap();
        assert!(check_src("importstr 'link.txt'").is_err());
    }
}
