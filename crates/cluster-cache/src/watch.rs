//! One watch task per API resource: kube-runtime's `watcher` (list then watch, resuming from
//! the last resourceVersion, relisting after 410 Gone, with its own backoff) feeding the
//! cluster's store. Initial-list objects are applied as they come; at the end of a list,
//! objects of the kind that were not listed are removed.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use keelson_model::ResourceKey;
use kube::api::{Api, DynamicObject, TypeMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::cache::Shared;
use crate::discovery::{WatchedResource, is_crd};
use crate::store::{Body, OwnerRef, Record};
use crate::tracking::app_of;

/// Runs until aborted.
pub(crate) async fn run(shared: Arc<Shared>, watched: WatchedResource, rediscover: Arc<Notify>) {
    let ar = watched.resource.clone();
    shared.register_kind(&ar);
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &ar);
    let config = watcher::Config::default().page_size(shared.config.page_size);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let api_version: Arc<str> = Arc::from(ar.api_version.as_str());
    let crd = is_crd(&ar);
    let mut seen: Option<HashSet<ResourceKey>> = None;
    let mut first_list = true;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                shared.watch_failed(&ar, &e);
                continue;
            }
        };
        shared.status.connected();
        let notify = shared.notify_enabled();
        match event {
            Event::Init => seen = Some(HashSet::new()),
            Event::InitApply(obj) => {
                shared.count_event(&ar);
                let key = apply(&shared, &watched, &api_version, obj, notify);
                if let (Some(key), Some(s)) = (key, seen.as_mut()) {
                    s.insert(key);
                }
            }
            Event::InitDone => {
                if watched.store {
                    shared.prune_kind(&ar.group, &ar.kind, seen.take().as_ref(), notify);
                }
                if first_list {
                    first_list = false;
                    shared.resource_synced();
                } else if crd {
                    rediscover.notify_one();
                }
            }
            Event::Apply(obj) => {
                shared.count_event(&ar);
                apply(&shared, &watched, &api_version, obj, true);
                if crd {
                    rediscover.notify_one();
                }
            }
            Event::Delete(obj) => {
                shared.count_event(&ar);
                if watched.store {
                    let key = key_of(&watched, &obj);
                    shared.delete(&key);
                }
                if crd {
                    rediscover.notify_one();
                }
            }
        }
    }
}

fn key_of(watched: &WatchedResource, obj: &DynamicObject) -> ResourceKey {
    ResourceKey::new(
        watched.resource.group.as_str(),
        watched.resource.kind.as_str(),
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

fn apply(
    shared: &Shared,
    watched: &WatchedResource,
    api_version: &Arc<str>,
    mut obj: DynamicObject,
    notify: bool,
) -> Option<ResourceKey> {
    if !watched.store {
        return None;
    }
    let key = key_of(watched, &obj);
    let cfg = &shared.config;
    let meta = &obj.metadata;
    let app = app_of(
        cfg.tracking,
        &cfg.label_key,
        &key,
        meta.labels.as_ref(),
        meta.annotations.as_ref(),
    )
    .map(|a| shared.store.read().intern_app(a));
    let owners: Box<[OwnerRef]> = meta
        .owner_references
        .iter()
        .flatten()
        .map(|o| OwnerRef {
            api_version: o.api_version.as_str().into(),
            kind: o.kind.as_str().into(),
            name: o.name.as_str().into(),
            uid: o.uid.as_str().into(),
            controller: o.controller.unwrap_or(false),
        })
        .collect();
    let body = if app.is_some() {
        obj.types = Some(TypeMeta {
            api_version: api_version.to_string(),
            kind: watched.resource.kind.clone(),
        });
        Body::Full(serde_json::to_vec(&obj).unwrap_or_default().into())
    } else {
        Body::Slim(health_slice(&obj))
    };
    let meta = &obj.metadata;
    let record = Record {
        api_version: api_version.clone(),
        uid: meta.uid.as_deref().unwrap_or_default().into(),
        resource_version: meta.resource_version.as_deref().unwrap_or_default().into(),
        app,
        owners,
        deletion_timestamp: meta
            .deletion_timestamp
            .as_ref()
            .map(|t| t.0.to_string().into()),
        body,
    };
    shared.upsert(key.clone(), record, notify);
    Some(key)
}

/// `metadata.generation`, `spec.replicas`, `spec.paused`, `spec.restartPolicy` and
/// `status`, enough for health assessment of owned objects.
fn health_slice(obj: &DynamicObject) -> Option<Arc<[u8]>> {
    let mut out = Map::new();
    if let Some(g) = obj.metadata.generation {
        out.insert("generation".into(), g.into());
    }
    if let Some(spec) = obj.data.get("spec").and_then(Value::as_object) {
        let kept: Map<String, Value> = ["replicas", "paused", "restartPolicy"]
            .iter()
            .filter_map(|f| spec.get(*f).map(|v| ((*f).to_string(), v.clone())))
            .collect();
        if !kept.is_empty() {
            out.insert("spec".into(), Value::Object(kept));
        }
    }
    if let Some(status) = obj.data.get("status") {
        out.insert("status".into(), status.clone());
    }
    if out.is_empty() {
        return None;
    }
    serde_json::to_vec(&Value::Object(out)).ok().map(Into::into)
}
