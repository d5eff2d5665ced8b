//! Git fixture repositories: commits, tags, branches, checkout, clone by URL.

use keelson_testbed::{GitRepo, find_tool, run_checked};

#[test]
fn git_fixture_commit_tag_branch_checkout() -> anyhow::Result<()> {
    let repo = GitRepo::init()?;
    repo.write("apps/guestbook/deploy.yaml", "kind: Deployment\n")?;
    let first = repo.commit("first")?;
    assert_eq!(first.len(), 40);
    assert_eq!(repo.head()?, first);
    assert_eq!(repo.git(&["symbolic-ref", "--short", "HEAD"])?, "main");
    repo.tag("v1.0.0")?;
    repo.tag_annotated("v1.0.1", "annotated")?;
    repo.branch("feature")?;

    repo.write(
        "apps/guestbook/deploy.yaml",
        "kind: Deployment\nreplicas: 2\n",
    )?;
    repo.write("README.md", "hello\n")?;
    let second = repo.commit("second")?;
    assert_ne!(first, second);
    repo.remove("README.md")?;
    let third = repo.commit("third")?;

    assert_eq!(repo.rev_parse("v1.0.0")?, first);
    assert_eq!(repo.rev_parse("v1.0.1")?, first);
    assert_eq!(repo.rev_parse("feature")?, first);
    assert_eq!(repo.rev_parse("main")?, third);

    repo.checkout("feature")?;
    assert_eq!(repo.head()?, first);
    let content = std::fs::read_to_string(repo.path().join("apps/guestbook/deploy.yaml"))?;
    assert_eq!(content, "kind: Deployment\n");
    repo.checkout("main")?;
    assert!(!repo.path().join("README.md").exists());

    // The URL is cloneable by the real git.
    let target = tempfile::tempdir()?;
    let clone = target.path().join("clone");
    let mut cmd = std::process::Command::new(find_tool("git")?);
    cmd.arg("clone").arg("-q").arg(repo.url()).arg(&clone);
    run_checked(cmd, std::time::Duration::from_secs(30))?;
    assert!(clone.join("apps/guestbook/deploy.yaml").is_file());
    Ok(())
}
