//! gRPC API of Keelson's processes, generated from `proto/` at build time.

/// The repo-server API (`keelson.reposerver.v1`).
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod repo_server {
    tonic::include_proto!("keelson.reposerver.v1");
}
