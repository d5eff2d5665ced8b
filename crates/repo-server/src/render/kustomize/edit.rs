//! Applying an Application's `spec.source.kustomize` options to a kustomization file with the
//! same result as the `kustomize edit` commands Argo CD runs: `set nameprefix/namesuffix`,
//! `set namespace`, `set image` (merging by image name), `add label`/`add annotation`
//! (refusing to overwrite unless forced), `set replicas`, `add component`, and appending
//! `patches`. Values go through `$ARGOCD_APP_*` substitution like in Argo CD.

use std::collections::BTreeMap;
use std::path::Path;

use keelson_model::source::KustomizeSource;
use serde_yaml_ng::{Mapping, Value};

use crate::render::{RenderContext, RenderError};

/// Rewrites `file` with the options applied (the file is in the scratch checkout).
pub fn apply(
    ctx: &RenderContext<'_>,
    file: &Path,
    options: &KustomizeSource,
) -> Result<(), RenderError> {
    let shown = ctx.display_path(file);
    let text = crate::render::directory::read_text(file, &shown, ctx.req.limits.max_file_bytes)?;
    let bad = |message: String| RenderError::Kustomization {
        file: shown.clone(),
        message,
    };
    let mut doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if doc.is_null() {
        doc = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = &mut doc else {
        return Err(bad("not a mapping".into()));
    };
    let env = ctx.build_env();
    edit(map, options, &|s: &str| env.substitute(s))?;
    let out = serde_yaml_ng::to_string(&doc).map_err(|e| bad(e.to_string()))?;
    std::fs::write(file, out).map_err(|source| RenderError::ReadFile {
        path: file.to_path_buf(),
        source,
    })
}

/// Applies the options to a kustomization mapping.
pub fn edit(
    map: &mut Mapping,
    options: &KustomizeSource,
    subst: &dyn Fn(&str) -> String,
) -> Result<(), RenderError> {
    if let Some(prefix) = options.name_prefix.as_deref().filter(|s| !s.is_empty()) {
        map.insert("namePrefix".into(), subst(prefix).into());
    }
    if let Some(suffix) = options.name_suffix.as_deref().filter(|s| !s.is_empty()) {
        map.insert("nameSuffix".into(), subst(suffix).into());
    }
    if let Some(ns) = options.namespace.as_deref().filter(|s| !s.is_empty()) {
        map.insert("namespace".into(), subst(ns).into());
    }
    for image in options.images.iter().flatten() {
        set_image(map, &parse_image(&subst(image))?);
    }
    if let Some(labels) = &options.common_labels {
        add_pairs(
            map,
            "commonLabels",
            "label",
            labels,
            options.force_common_labels.unwrap_or(false),
            subst,
        )?;
    }
    if let Some(annotations) = &options.common_annotations {
        let force = options.force_common_annotations.unwrap_or(false);
        add_pairs(
            map,
            "commonAnnotations",
            "annotation",
            annotations,
            force,
            subst,
        )?;
    }
    for replica in options.replicas.iter().flatten() {
        set_replicas(map, replica)?;
    }
    for component in options.components.iter().flatten() {
        let list = list_mut(map, "components");
        let value = Value::from(component.as_str());
        if !list.contains(&value) {
            list.push(value);
        }
    }
    for patch in options.patches.iter().flatten() {
        let value = serde_yaml_ng::to_value(patch)
            .map_err(|e| RenderError::KustomizeOption(format!("patch: {e}")))?;
        list_mut(map, "patches").push(value);
    }
    Ok(())
}

/// One `kustomize edit set image` argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageOverride {
    /// Image name matched in resources.
    pub name: String,
    /// Replacement name.
    pub new_name: Option<String>,
    /// Replacement tag.
    pub new_tag: Option<String>,
    /// Replacement digest.
    pub digest: Option<String>,
}

/// Parses `name=newName:tag`, `name=newName@digest`, `name:tag`, `name@digest`.
pub fn parse_image(arg: &str) -> Result<ImageOverride, RenderError> {
    let arg = arg.trim();
    if arg.is_empty() {
        return Err(RenderError::KustomizeOption("empty image override".into()));
    }
    let (name, reference, renamed) = match arg.split_once('=') {
        Some((name, rest)) => (name.to_string(), rest, true),
        None => (String::new(), arg, false),
    };
    let (base, tag, digest) = split_reference(reference);
    let mut out = ImageOverride {
        name,
        new_tag: tag,
        digest,
        ..Default::default()
    };
    if renamed {
        out.new_name = Some(base).filter(|b| !b.is_empty());
    } else {
        out.name = base;
    }
    if out.name.is_empty() {
        return Err(RenderError::KustomizeOption(format!(
            "image override {arg:?} has no image name"
        )));
    }
    Ok(out)
}

/// Splits `repo[:tag][@digest]` (a `:` before the last `/` is a registry port).
fn split_reference(reference: &str) -> (String, Option<String>, Option<String>) {
    if let Some((base, digest)) = reference.split_once('@') {
        return (base.to_string(), None, Some(digest.to_string()));
    }
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => {
            let at = slash + i;
            (
                reference[..at].to_string(),
                Some(reference[at + 1..].to_string()),
                None,
            )
        }
        None => (reference.to_string(), None, None),
    }
}

fn set_image(map: &mut Mapping, image: &ImageOverride) {
    let list = list_mut(map, "images");
    let existing = list
        .iter_mut()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(image.name.as_str()));
    let entry = match existing {
        Some(entry) => entry,
        None => {
            let mut m = Mapping::new();
            m.insert("name".into(), image.name.as_str().into());
            list.push(Value::Mapping(m));
            let Some(last) = list.last_mut() else { return };
            last
        }
    };
    let Value::Mapping(entry) = entry else { return };
    if let Some(new_name) = &image.new_name {
        entry.insert("newName".into(), new_name.as_str().into());
    }
    if let Some(tag) = &image.new_tag {
        entry.insert("newTag".into(), tag.as_str().into());
        entry.remove("digest");
    }
    if let Some(digest) = &image.digest {
        entry.insert("digest".into(), digest.as_str().into());
        entry.remove("newTag");
    }
}

fn add_pairs(
    map: &mut Mapping,
    key: &str,
    what: &str,
    pairs: &BTreeMap<String, String>,
    force: bool,
    subst: &dyn Fn(&str) -> String,
) -> Result<(), RenderError> {
    let target = map
        .entry(key.into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if !target.is_mapping() {
        *target = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(target) = target else {
        return Ok(());
    };
    for (k, v) in pairs {
        if !force && target.contains_key(k.as_str()) {
            return Err(RenderError::KustomizeOption(format!(
                "{what} {k:?} already in the kustomization file; set force to overwrite"
            )));
        }
        target.insert(k.as_str().into(), subst(v).into());
    }
    Ok(())
}

fn set_replicas(map: &mut Mapping, replica: &serde_json::Value) -> Result<(), RenderError> {
    let name = replica
        .get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let count = match replica.get("count") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let (false, Some(count)) = (name.is_empty(), count) else {
        return Err(RenderError::KustomizeOption(format!(
            "invalid replica override {replica}"
        )));
    };
    let list = list_mut(map, "replicas");
    let mut entry = Mapping::new();
    entry.insert("name".into(), name.into());
    entry.insert("count".into(), count.into());
    match list
        .iter_mut()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = Value::Mapping(entry),
        None => list.push(Value::Mapping(entry)),
    }
    Ok(())
}

/// The sequence at `key`, created (or replaced if not a sequence) when needed.
fn list_mut<'a>(map: &'a mut Mapping, key: &str) -> &'a mut Vec<Value> {
    let value = map
        .entry(key.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if !value.is_sequence() {
        *value = Value::Sequence(Vec::new());
    }
    match value {
        Value::Sequence(seq) => seq,
        _ => unreachable!("just made a sequence"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn image_forms() {
        let p = parse_image("nginx=registry:5000/web/nginx:1.25").unwrap();
        assert_eq!(p.name, "nginx");
        assert_eq!(p.new_name.as_deref(), Some("registry:5000/web/nginx"));
        assert_eq!(p.new_tag.as_deref(), Some("1.25"));
        let p = parse_image("registry:5000/nginx:1.2").unwrap();
        assert_eq!(
            (p.name.as_str(), p.new_tag.as_deref()),
            ("registry:5000/nginx", Some("1.2"))
        );
        let p = parse_image("nginx@sha256:abc").unwrap();
        assert_eq!(p.digest.as_deref(), Some("sha256:abc"));
    }

    #[test]
    fn edits_merge_like_kustomize_edit() {
        let mut map: Mapping = serde_yaml_ng::from_str(
            "images:\n- name: nginx\n  newTag: '1.0'\ncommonLabels:\n  team: a\n",
        )
        .unwrap();
        let options = KustomizeSource {
            name_prefix: Some("p-".into()),
            images: Some(vec!["nginx:2.0".into(), "redis=quay.io/redis:7".into()]),
            common_labels: Some(BTreeMap::from([("team".to_string(), "b".to_string())])),
            ..Default::default()
        };
        let err = edit(&mut map.clone(), &options, &|s: &str| s.to_string()).unwrap_err();
        assert!(err.to_string().contains("team"), "{err}");
        let forced = KustomizeSource {
            force_common_labels: Some(true),
            ..options
        };
        edit(&mut map, &forced, &|s: &str| s.to_string()).unwrap();
        let doc = serde_json::to_value(&map).unwrap();
        assert_eq!(doc["namePrefix"], "p-");
        assert_eq!(doc["images"][0]["newTag"], "2.0");
        assert_eq!(doc["images"][1]["newName"], "quay.io/redis");
        assert_eq!(doc["commonLabels"]["team"], "b");
    }
}
