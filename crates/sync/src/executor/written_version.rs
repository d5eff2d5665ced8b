//! The resourceVersion a write left on the server, handed from [`KubeOps`](super::KubeOps)
//! to a caller that asks for it, without widening [`WriteOutcome`](crate::WriteOutcome)
//! (which is persisted in `status.operationState`).
//!
//! A destination's resourceVersion is one counter per cluster, so the versions of two
//! writes order them as the server applied them. The fleet's safety checker uses this to
//! tell a write that was in flight while its replica froze and landed before the new
//! owner's writes (safe) from one that landed after them (double work).

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static WRITTEN_VERSION: Cell<Option<u64>>;
}

/// Runs `write` and returns its output with the resourceVersion of the object it
/// created or changed, when the write reported one (deletes and failures do not).
pub async fn with_written_version<F: Future>(write: F) -> (F::Output, Option<u64>) {
    WRITTEN_VERSION
        .scope(Cell::new(None), async {
            let out = write.await;
            (out, WRITTEN_VERSION.with(Cell::get))
        })
        .await
}

/// Notes the resourceVersion of an object the server returned for a write; a no-op
/// outside [`with_written_version`].
pub(crate) fn note_written<K: kube::Resource>(object: &K) {
    let version = object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok());
    let _ = WRITTEN_VERSION.try_with(|slot| slot.set(version));
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[tokio::test]
    async fn the_last_noted_version_is_returned_and_nothing_leaks_outside() {
        let mut cm = ConfigMap::default();
        cm.metadata.resource_version = Some("42".to_owned());
        note_written(&cm);
        let ((), v) = with_written_version(async { note_written(&cm) }).await;
        assert_eq!(v, Some(42));
        let ((), none) = with_written_version(async {}).await;
        assert_eq!(none, None);
    }
}
