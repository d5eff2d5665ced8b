//! The Git layer against real repositories and the real `git` binary: revision
//! resolution and its cache, checkout, listing, globbing, diffs, single-flight fetches,
//! typed errors, mirror repair and time limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use keelson_repo_server::git::{
    GitConfig, GitError, GitRequestKind, GitStep, GitStore, RepoAccess,
};
use keelson_testbed::GitRepo;

/// Counts observer calls per kind.
#[derive(Default)]
struct Counts(parking_lot::Mutex<HashMap<GitRequestKind, usize>>);

impl Counts {
    fn get(&self, kind: GitRequestKind) -> usize {
        self.0.lock().get(&kind).copied().unwrap_or(0)
    }
}

struct Fixture {
    store: GitStore,
    counts: Arc<Counts>,
    root: tempfile::TempDir,
}

fn store_with(adjust: impl FnOnce(&mut GitConfig)) -> Result<Fixture> {
    let root = tempfile::tempdir()?;
    let mut config = GitConfig::new(root.path().join("mirrors"));
    config.fetch_timeout = Duration::from_secs(30);
    config.ls_remote_timeout = Duration::from_secs(30);
    adjust(&mut config);
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    let store =
        GitStore::new(config)?.with_observer(Arc::new(move |kind, url, _elapsed, _failed| {
            assert!(
                !url.contains("secret"),
                "observer got an unredacted url: {url}"
            );
            *seen.0.lock().entry(kind).or_default() += 1;
        }));
    Ok(Fixture {
        store,
        counts,
        root,
    })
}

fn store() -> Result<Fixture> {
    store_with(|_| {})
}

/// A repository with two commits, a tag on each and a side branch.
struct History {
    repo: GitRepo,
    first: String,
    second: String,
}

fn history() -> Result<History> {
    let repo = GitRepo::init()?;
    repo.write("README.md", "first\n")?;
    repo.write("apps/a/deploy.yaml", "kind: Deployment\nname: a\n")?;
    repo.write("apps/b/config.json", "{\"b\": 1}\n")?;
    repo.write("scripts/run.sh", "#!/bin/sh\necho hi\n")?;
    std::fs::set_permissions(
        repo.path().join("scripts/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    std::os::unix::fs::symlink("apps/a/deploy.yaml", repo.path().join("link.yaml"))?;
    let first = repo.commit("first")?;
    repo.tag("v1")?;
    repo.branch("side")?;
    repo.write("README.md", "second\n")?;
    repo.write("apps/c/deploy.yaml", "kind: Deployment\nname: c\n")?;
    repo.remove("apps/b")?;
    let second = repo.commit("second")?;
    repo.tag_annotated("v2", "release 2")?;
    Ok(History {
        repo,
        first,
        second,
    })
}

fn access(repo: &GitRepo) -> RepoAccess {
    RepoAccess::public(repo.url())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The error is a timeout of `step`, reported within 5 s of `started`.
fn assert_timed_out(err: &GitError, step: GitStep, started: Instant) {
    assert!(
        matches!(err, GitError::Timeout { step: s, .. } if *s == step),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn git_resolves_branches_tags_head_and_shas() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    assert_eq!(f.store.resolve(&repo, "main").await?, h.second);
    assert_eq!(f.store.resolve(&repo, "HEAD").await?, h.second);
    assert_eq!(f.store.resolve(&repo, "").await?, h.second);
    assert_eq!(f.store.resolve(&repo, "refs/heads/side").await?, h.first);
    assert_eq!(f.store.resolve(&repo, "side").await?, h.first);
    assert_eq!(f.store.resolve(&repo, "v1").await?, h.first);
    assert_eq!(
        f.store.resolve(&repo, "v2").await?,
        h.second,
        "annotated tag peeled"
    );
    assert_eq!(f.store.resolve(&repo, &h.first).await?, h.first);
    assert_eq!(f.store.resolve(&repo, &h.first[..7]).await?, h.first);
    assert_eq!(
        f.store
            .resolve(&repo, &h.second[..4].to_uppercase())
            .await?,
        h.second
    );
    Ok(())
}

#[tokio::test]
async fn git_new_commits_are_seen_after_the_revision_cache_ttl() -> Result<()> {
    let h = history()?;
    let f = store_with(|c| c.revision_cache_ttl = Duration::from_secs(3))?;
    let repo = access(&h.repo);
    assert_eq!(f.store.resolve(&repo, "main").await?, h.second);
    h.repo.write("README.md", "third\n")?;
    let third = h.repo.commit("third")?;
    assert_eq!(
        f.store.resolve(&repo, "main").await?,
        h.second,
        "cached within the ttl"
    );
    assert_eq!(
        f.store.resolve(&repo, &third).await?,
        third,
        "shas bypass the cache"
    );
    assert_eq!(
        f.store.resolve_latest(&repo, "main").await?,
        third,
        "a requested refresh asks the remote"
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(f.store.resolve(&repo, "main").await?, third);

    let uncached = store_with(|c| c.revision_cache_ttl = Duration::ZERO)?;
    assert_eq!(uncached.store.resolve(&repo, "main").await?, third);
    h.repo.write("README.md", "fourth\n")?;
    let fourth = h.repo.commit("fourth")?;
    assert_eq!(uncached.store.resolve(&repo, "main").await?, fourth);
    Ok(())
}

/// Two repo-servers: the one that did not answer a requested refresh must not resolve the
/// branch from refs listed before that refresh when the caller says when it asked.
#[tokio::test]
async fn git_refs_listed_before_a_floor_are_not_reused() -> Result<()> {
    let h = history()?;
    let a = store_with(|c| c.revision_cache_ttl = Duration::from_secs(300))?;
    let b = store_with(|c| c.revision_cache_ttl = Duration::from_secs(300))?;
    let repo = access(&h.repo);
    assert_eq!(b.store.resolve(&repo, "main").await?, h.second);
    h.repo.write("README.md", "third\n")?;
    let third = h.repo.commit("third")?;
    let asked = std::time::Instant::now();
    assert_eq!(a.store.resolve_latest(&repo, "main").await?, third);
    assert_eq!(
        b.store.resolve(&repo, "main").await?,
        h.second,
        "without a floor the other server's cache answers"
    );
    assert_eq!(
        b.store.resolve_listed_after(&repo, "main", asked).await?,
        third,
        "refs listed before the floor are listed again"
    );
    h.repo.write("README.md", "fourth\n")?;
    h.repo.commit("fourth")?;
    assert_eq!(
        b.store.resolve_listed_after(&repo, "main", asked).await?,
        third,
        "refs listed after the floor are reused within the ttl"
    );
    Ok(())
}

#[tokio::test]
async fn git_checkout_materialises_each_commit() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    let one = f.root.path().join("one");
    let two = f.root.path().join("two");
    std::fs::create_dir(&one)?;
    f.store.checkout(&repo, &h.first, &one).await?;
    f.store.checkout(&repo, &h.second, &two).await?;

    assert_eq!(read(&one.join("README.md")), "first\n");
    assert_eq!(read(&one.join("apps/b/config.json")), "{\"b\": 1}\n");
    assert!(!one.join("apps/c").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(one.join("scripts/run.sh"))?.permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "executable bit kept");
    let link = one.join("link.yaml");
    assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(&link)?,
        PathBuf::from("apps/a/deploy.yaml")
    );
    assert!(!one.join(".git").exists());

    assert_eq!(read(&two.join("README.md")), "second\n");
    assert_eq!(
        read(&two.join("apps/c/deploy.yaml")),
        "kind: Deployment\nname: c\n"
    );
    assert!(!two.join("apps/b").exists());

    // A checkout into a used directory replaces its contents.
    f.store.checkout(&repo, "v1", &two).await?;
    assert_eq!(read(&two.join("README.md")), "first\n");
    assert!(!two.join("apps/c").exists());
    Ok(())
}

#[tokio::test]
async fn git_subtree_checkout_writes_one_directory() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    let dest = f.root.path().join("sub");
    assert!(
        f.store
            .checkout_subtree(&repo, &h.second, "./apps/c/", &dest)
            .await?
    );
    assert_eq!(
        read(&dest.join("apps/c/deploy.yaml")),
        "kind: Deployment\nname: c\n"
    );
    assert!(!dest.join("README.md").exists(), "only the directory");
    assert!(!dest.join("apps/a").exists());
    // Missing directories, `..` and directories with symlinks or Jsonnet do not stand
    // on their own: the caller falls back to the whole tree.
    assert!(
        !f.store
            .checkout_subtree(&repo, &h.second, "apps/b", &dest)
            .await?
    );
    assert!(
        !f.store
            .checkout_subtree(&repo, &h.second, "apps/../apps/a", &dest)
            .await?
    );
    assert!(
        !f.store
            .checkout_subtree(&repo, &h.second, "", &dest)
            .await?,
        "the root has a symlink"
    );
    h.repo
        .write("apps/j/main.jsonnet", "import '../lib.libsonnet'\n")?;
    let third = h.repo.commit("jsonnet")?;
    assert!(
        !f.store
            .checkout_subtree(&repo, &third, "apps/j", &dest)
            .await?
    );
    Ok(())
}

#[tokio::test]
async fn git_lists_directories() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    assert_eq!(
        f.store.list_directories(&repo, &h.first).await?,
        vec!["apps", "apps/a", "apps/b", "scripts"]
    );
    assert_eq!(
        f.store.list_directories(&repo, "main").await?,
        vec!["apps", "apps/a", "apps/c", "scripts"]
    );
    Ok(())
}

#[tokio::test]
async fn git_gets_files_by_glob_with_a_size_bound() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    let files = f.store.get_files(&repo, &h.first, "apps/**/*.yaml").await?;
    assert_eq!(
        files,
        vec![(
            "apps/a/deploy.yaml".to_string(),
            b"kind: Deployment\nname: a\n".to_vec()
        )]
    );
    let top = f.store.get_files(&repo, &h.first, "*.md").await?;
    assert_eq!(top.len(), 1, "`*` does not cross directories: {top:?}");
    let all_json = f.store.get_files(&repo, &h.first, "**/*.json").await?;
    assert_eq!(all_json[0].0, "apps/b/config.json");
    assert!(
        f.store
            .get_files(&repo, &h.second, "apps/b/*")
            .await?
            .is_empty()
    );
    assert!(matches!(
        f.store.get_files(&repo, &h.first, "apps/[").await,
        Err(GitError::InvalidGlob { .. })
    ));

    let tight = store_with(|c| c.max_files_bytes = 10)?;
    let err = tight
        .store
        .get_files(&repo, &h.first, "**")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitError::FilesTooLarge { limit: 10, .. }),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn git_changed_paths_between_commits() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    assert_eq!(
        f.store.changed_paths(&repo, &h.first, &h.second).await?,
        vec!["README.md", "apps/b/config.json", "apps/c/deploy.yaml"]
    );
    assert!(
        f.store
            .changed_paths(&repo, &h.second, "main")
            .await?
            .is_empty()
    );
    h.repo
        .write("scripts/run.sh", "#!/bin/sh\necho changed\n")?;
    let third = h.repo.commit("third")?;
    assert_eq!(
        f.store.changed_paths(&repo, &h.second, &third).await?,
        vec!["scripts/run.sh"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn git_concurrent_requests_share_one_fetch() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = f.store.clone();
        let repo = access(&h.repo);
        let dest = f.root.path().join(format!("co-{i}"));
        tasks.push(tokio::spawn(async move {
            let sha = store.resolve(&repo, "main").await?;
            store.checkout(&repo, &sha, &dest).await?;
            anyhow::Ok((sha, dest))
        }));
    }
    for task in tasks {
        let (sha, dest) = task.await??;
        assert_eq!(sha, h.second);
        assert_eq!(read(&dest.join("README.md")), "second\n");
    }
    assert_eq!(
        f.counts.get(GitRequestKind::Fetch),
        1,
        "one clone for 20 requests"
    );
    assert_eq!(
        f.counts.get(GitRequestKind::LsRemote),
        1,
        "one ls-remote for 20 requests"
    );
    Ok(())
}

#[tokio::test]
async fn git_missing_repository_and_revision_are_typed_errors() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let missing = RepoAccess::public(format!("file://{}/nope", f.root.path().display()));
    let err = f.store.resolve(&missing, "main").await.unwrap_err();
    assert!(matches!(err, GitError::RepositoryNotFound { .. }), "{err}");
    let err = f.store.test(&missing).await.unwrap_err();
    assert!(matches!(err, GitError::RepositoryNotFound { .. }), "{err}");
    let err = f.store.resolve(&missing, &h.first).await.unwrap_err();
    assert!(matches!(err, GitError::RepositoryNotFound { .. }), "{err}");

    let repo = access(&h.repo);
    f.store.test(&repo).await?;
    let err = f.store.resolve(&repo, "no-such-branch").await.unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "unable to resolve revision \"no-such-branch\" in {}",
            h.repo.url()
        )
    );
    let absent = "0123456789abcdef0123456789abcdef01234567";
    let err = f.store.resolve(&repo, absent).await.unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
    let err = f
        .store
        .checkout(&repo, "deadbeef", &f.root.path().join("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn git_credentials_never_appear_in_errors() -> Result<()> {
    let f = store_with(|c| c.ls_remote_timeout = Duration::from_secs(10))?;
    let repo = RepoAccess {
        url: "https://admin:secret-token@127.0.0.1:1/org/repo.git".to_string(),
        username: Some("admin".to_string()),
        password: Some("secret-token".to_string()),
        ..RepoAccess::default()
    };
    let err = f.store.resolve(&repo, "main").await.unwrap_err();
    let text = format!("{err} {err:?} {repo:?}");
    assert!(!text.contains("secret-token"), "{text}");
    assert!(matches!(err, GitError::Unreachable { .. }), "{err}");
    Ok(())
}

/// Deletes every object file of a mirror (loose objects and packs).
fn delete_objects(mirror: &Path) -> Result<usize> {
    let mut deleted = 0;
    for entry in std::fs::read_dir(mirror.join("objects"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name == "pack" || (name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())) {
            for file in std::fs::read_dir(&path)? {
                std::fs::remove_file(file?.path())?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

#[tokio::test]
async fn git_a_corrupted_mirror_is_recloned() -> Result<()> {
    let h = history()?;
    let f = store_with(|c| c.revision_cache_ttl = Duration::ZERO)?;
    let repo = access(&h.repo);
    let dest = f.root.path().join("co");
    f.store.checkout(&repo, "main", &dest).await?;
    let mirror = f.store.mirror_path(&repo.url);
    assert!(mirror.join("HEAD").is_file());

    // Missing objects, seen by a fresh store and by the one that made the mirror.
    assert!(delete_objects(&mirror)? > 0);
    let other = GitStore::new(f.store.config().clone())?;
    other.checkout(&repo, &h.first, &dest).await?;
    assert_eq!(read(&dest.join("README.md")), "first\n");
    assert!(delete_objects(&mirror)? > 0);
    f.store.checkout(&repo, &h.second, &dest).await?;
    assert_eq!(read(&dest.join("README.md")), "second\n");

    // Garbage in HEAD and packed-refs, and a new commit that needs a fetch.
    std::fs::write(mirror.join("HEAD"), "garbage\n")?;
    std::fs::write(mirror.join("packed-refs"), "not a packed-refs file\n")?;
    h.repo.write("README.md", "third\n")?;
    let third = h.repo.commit("third")?;
    assert_eq!(f.store.resolve(&repo, "main").await?, third);
    f.store.checkout(&repo, &third, &dest).await?;
    assert_eq!(read(&dest.join("README.md")), "third\n");
    assert_ne!(
        read(&mirror.join("HEAD")),
        "garbage\n",
        "the mirror was re-cloned"
    );
    let other = GitStore::new(f.store.config().clone())?;
    assert_eq!(other.list_directories(&repo, &third).await?.len(), 4);

    // Garbage in objects/pack.
    std::fs::write(
        mirror.join("objects/pack/pack-0000000000000000000000000000000000000000.idx"),
        "junk",
    )?;
    std::fs::write(
        mirror.join("objects/pack/pack-0000000000000000000000000000000000000000.pack"),
        "junk",
    )?;
    delete_objects_except_pack_garbage(&mirror)?;
    let other = GitStore::new(f.store.config().clone())?;
    other.checkout(&repo, &h.first, &dest).await?;
    assert_eq!(read(&dest.join("README.md")), "first\n");
    assert!(
        f.counts.get(GitRequestKind::Fetch) >= 3,
        "repairs fetched again"
    );
    Ok(())
}

/// Builds, with plumbing, a commit whose tree holds one blob named `name` (which
/// `git add` would refuse) and points branch `evil` at it.
fn hostile_commit(repo: &GitRepo, name: &str) -> Result<String> {
    let blob = run_sh(repo, "echo pwned | git hash-object -w --stdin")?;
    let tree = run_sh(
        repo,
        &format!("printf '100644 blob %s\\t%s\\n' {blob} '{name}' | git mktree"),
    )?;
    let commit = run_sh(repo, &format!("git commit-tree {tree} -m evil"))?;
    run_sh(repo, &format!("git update-ref refs/heads/evil {commit}"))?;
    Ok(commit)
}

fn run_sh(repo: &GitRepo, script: &str) -> Result<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(repo.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

#[tokio::test]
async fn git_hostile_tree_entries_are_refused() -> Result<()> {
    let h = history()?;
    let f = store()?;
    let repo = access(&h.repo);
    let outside = f.root.path().join("outside");
    std::fs::create_dir(&outside)?;
    for name in ["..", ".git", ".GIT"] {
        let sha = hostile_commit(&h.repo, name)?;
        let dest = outside.join("co");
        let err = f.store.checkout(&repo, &sha, &dest).await.unwrap_err();
        assert!(matches!(err, GitError::UnsafePath { .. }), "{name}: {err}");
        let err = f.store.list_directories(&repo, &sha).await.unwrap_err();
        assert!(matches!(err, GitError::UnsafePath { .. }), "{name}: {err}");
        assert!(!outside.join("pwned").exists());
        let names: Vec<_> = std::fs::read_dir(&outside)?
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("co")],
            "nothing written beside the checkout"
        );
    }
    Ok(())
}

/// Removes loose objects and real packs, keeping files named `pack-000…`.
fn delete_objects_except_pack_garbage(mirror: &Path) -> Result<()> {
    for entry in std::fs::read_dir(mirror.join("objects"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name == "pack" || (name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())) {
            for file in std::fs::read_dir(&path)? {
                let file = file?.path();
                if !file.to_string_lossy().contains("pack-0000") {
                    std::fs::remove_file(file)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether process `pid` is gone (or a zombie) within two seconds.
async fn wait_until_dead(pid: &str) -> bool {
    for _ in 0..40 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

#[tokio::test]
async fn git_a_hanging_remote_is_killed_at_the_time_limit() -> Result<()> {
    let h = history()?;
    let scripts = tempfile::tempdir()?;
    let script = scripts.path().join("slow-git");
    let pid_file = scripts.path().join("sleeper.pid");
    // The sleeper is a grandchild: only killing the whole process group stops it.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in ls-remote|fetch) sleep 30 & echo $! > '{}'; wait; exit 1 ;; esac\nexec git \"$@\"\n",
            pid_file.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let f = store_with(|c| {
        c.git_binary = script.clone();
        c.fetch_timeout = Duration::from_secs(1);
        c.ls_remote_timeout = Duration::from_millis(500);
    })?;
    let repo = access(&h.repo);

    let started = Instant::now();
    let err = f.store.resolve(&repo, "main").await.unwrap_err();
    assert_timed_out(&err, GitStep::LsRemote, started);
    let sleeper = std::fs::read_to_string(&pid_file)?.trim().to_string();
    assert!(
        wait_until_dead(&sleeper).await,
        "the remote's child {sleeper} survived"
    );

    let started = Instant::now();
    let err = f
        .store
        .checkout(&repo, &h.first, &f.root.path().join("co"))
        .await
        .unwrap_err();
    assert_timed_out(&err, GitStep::Fetch, started);
    assert!(err.to_string().contains("timed out"), "{err}");
    Ok(())
}
