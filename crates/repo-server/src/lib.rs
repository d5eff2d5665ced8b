//! The repo-server: resolves revisions and keeps bare mirrors of Git repositories
//! ([`git`]), renders manifests from a checkout ([`render`]: directory, Jsonnet,
//! Kustomize, Helm, plugins), caches results by commit ([`cache_key`] with
//! `keelson-cache`), serves the `RepoServer` gRPC API ([`service`]), and gives the
//! controller a client pool over many repo-servers or an in-process one ([`pool`]).

pub mod cache_key;
pub mod checkouts;
pub mod git;
pub mod metrics;
pub mod pool;
pub mod render;
pub mod service;
