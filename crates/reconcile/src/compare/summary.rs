//! `status.summary`: container images and external URLs of an application's live
//! resources, as Argo CD's resource tree reports them (`controller/cache/info.go`).
//!
//! Argo CD reads images from the Pods in the tree; Keelson compares top-level resources
//! only, so images come from the live pod templates of workload kinds (Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) and from Pods. URLs come from
//! Ingress rules (`<http|https>://<host><path>`, host falling back to the load-balancer
//! hostname/IP, https when a TLS entry has a `secretName` or names the host) and from
//! `link.argocd.argoproj.io/*` annotations (`url` or `title|url`, http(s) only). Like
//! Argo CD, a LoadBalancer Service gives no URL. Both lists are sorted and de-duplicated.

use std::collections::BTreeSet;

use keelson_model::application_status::ApplicationSummary;
use serde_json::Value;

/// Prefix of annotations holding external links.
pub const LINK_ANNOTATION_PREFIX: &str = "link.argocd.argoproj.io/";
/// Annotation turning off the URLs Keelson derives from an Ingress.
pub const IGNORE_DEFAULT_LINKS: &str = "argocd.argoproj.io/ignore-default-links";

/// Collects images and URLs from live objects.
#[derive(Debug, Default)]
pub(crate) struct SummaryBuilder {
    images: BTreeSet<String>,
    urls: BTreeSet<String>,
}

impl SummaryBuilder {
    /// Adds what one live object contributes.
    pub(crate) fn add(&mut self, group: &str, kind: &str, live: &Value) {
        self.add_links(live);
        let pod_spec = match (group, kind) {
            ("", "Pod") => live.get("spec"),
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
            | ("batch", "Job") => live.pointer("/spec/template/spec"),
            ("batch", "CronJob") => live.pointer("/spec/jobTemplate/spec/template/spec"),
            ("extensions" | "networking.k8s.io", "Ingress") => {
                self.add_ingress(live);
                None
            }
            _ => None,
        };
        if let Some(spec) = pod_spec {
            for list in ["initContainers", "containers"] {
                let containers = spec.get(list).and_then(Value::as_array);
                for image in containers
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("image"))
                {
                    if let Some(image) = image.as_str().filter(|i| !i.is_empty()) {
                        self.images.insert(image.to_owned());
                    }
                }
            }
        }
    }

    fn add_links(&mut self, live: &Value) {
        let Some(annotations) = live
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
        else {
            return;
        };
        for (key, value) in annotations {
            let Some(value) = value
                .as_str()
                .filter(|_| key.starts_with(LINK_ANNOTATION_PREFIX))
            else {
                continue;
            };
            let url = value.split_once('|').map_or(value, |(_, url)| url);
            if url.starts_with("http://") || url.starts_with("https://") {
                self.urls.insert(value.to_owned());
            }
        }
    }

    fn add_ingress(&mut self, live: &Value) {
        let annotations = live.pointer("/metadata/annotations");
        if annotations
            .and_then(|a| a.get(IGNORE_DEFAULT_LINKS))
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1" || v == "t")
        {
            return;
        }
        let lb_host = live
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|i| {
                [i.get("hostname"), i.get("ip")]
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .find(|h| !h.is_empty())
            });
        let tls = live.pointer("/spec/tls").and_then(Value::as_array);
        let rules = live.pointer("/spec/rules").and_then(Value::as_array);
        for rule in rules.into_iter().flatten() {
            let host = rule
                .get("host")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty())
                .or(lb_host);
            let Some(host) = host else {
                continue;
            };
            let secure = tls.into_iter().flatten().any(|entry| {
                entry.get("secretName").is_some_and(|s| !s.is_null())
                    || entry.get("host").and_then(Value::as_str) == Some(host)
                    || entry
                        .get("hosts")
                        .and_then(Value::as_array)
                        .is_some_and(|hosts| hosts.iter().any(|h| h.as_str() == Some(host)))
            });
            let scheme = if secure { "https" } else { "http" };
            let paths = rule.pointer("/http/paths").and_then(Value::as_array);
            for path in paths.into_iter().flatten() {
                let sub = path.get("path").and_then(Value::as_str).unwrap_or_default();
                let sub = sub.strip_suffix('*').unwrap_or(sub);
                self.urls.insert(format!("{scheme}://{host}{sub}"));
            }
        }
    }

    /// The summary; empty lists are left out.
    pub(crate) fn build(self) -> ApplicationSummary {
        let list = |set: BTreeSet<String>| (!set.is_empty()).then(|| set.into_iter().collect());
        ApplicationSummary {
            external_urls: list(self.urls),
            images: list(self.images),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn summary(objects: &[(&str, &str, &str)]) -> ApplicationSummary {
        let mut builder = SummaryBuilder::default();
        for (group, kind, text) in objects {
            let obj: Value = serde_yaml_ng::from_str(text).unwrap();
            builder.add(group, kind, &obj);
        }
        builder.build()
    }

    #[test]
    fn images_from_pod_templates_and_pods() {
        let deploy = "spec: {template: {spec: {initContainers: [{image: 'init:1'}], containers: [{image: 'web:2'}, {image: 'sidecar:1'}]}}}";
        let cron =
            "spec: {jobTemplate: {spec: {template: {spec: {containers: [{image: 'cron:1'}]}}}}}";
        let pod = "spec: {containers: [{image: 'web:2'}]}";
        let s = summary(&[
            ("apps", "Deployment", deploy),
            ("batch", "CronJob", cron),
            ("", "Pod", pod),
            ("", "ConfigMap", "data: {image: 'no'}"),
        ]);
        assert_eq!(
            s.images.unwrap(),
            ["cron:1", "init:1", "sidecar:1", "web:2"]
        );
        assert_eq!(s.external_urls, None);
    }

    #[test]
    fn ingress_urls_with_tls_paths_and_load_balancer_fallback() {
        let ingress = r#"
metadata:
  annotations: {link.argocd.argoproj.io/docs: "Docs|https://docs.example.com", link.argocd.argoproj.io/bad: "javascript:alert(1)"}
spec:
  tls: [{hosts: [secure.example.com]}]
  rules:
  - host: secure.example.com
    http: {paths: [{path: /api/*}]}
  - host: plain.example.com
    http: {paths: [{path: /}, {}]}
  - http: {paths: [{path: /lb}]}
  - host: nopaths.example.com
status: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}
"#;
        let service =
            "spec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.0.0.2}]}}";
        let s = summary(&[
            ("networking.k8s.io", "Ingress", ingress),
            ("", "Service", service),
        ]);
        assert_eq!(
            s.external_urls.unwrap(),
            [
                "Docs|https://docs.example.com",
                "http://10.0.0.1/lb",
                "http://plain.example.com",
                "http://plain.example.com/",
                "https://secure.example.com/api/"
            ]
        );
        assert_eq!(s.images, None);
    }

    #[test]
    fn tls_secret_makes_every_rule_https_and_default_links_can_be_ignored() {
        let ingress = "spec: {tls: [{secretName: s}], rules: [{host: a.example.com, http: {paths: [{path: /}]}}]}";
        let ignored = "metadata: {annotations: {argocd.argoproj.io/ignore-default-links: 'true'}}\nspec: {rules: [{host: b.example.com, http: {paths: [{path: /}]}}]}";
        let s = summary(&[
            ("networking.k8s.io", "Ingress", ingress),
            ("extensions", "Ingress", ignored),
        ]);
        assert_eq!(s.external_urls.unwrap(), ["https://a.example.com/"]);
    }
}
