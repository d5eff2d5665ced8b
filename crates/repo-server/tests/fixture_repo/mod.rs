//! A scratch repository checkout for render tests: the checkout at `<tmp>/repo`, with
//! `<tmp>` itself standing for "outside" (holding a secret file escapes must not reach).

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};

/// A repository checkout at `<tmp>/repo`, with `<tmp>` itself standing for "outside".
pub struct Repo {
    tmp: tempfile::TempDir,
}

impl Repo {
    /// An empty checkout with a secret file beside it.
    pub fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("repo")).unwrap();
        std::fs::write(tmp.path().join("outside-secret.txt"), "top secret\n").unwrap();
        Repo { tmp }
    }

    /// The checkout root.
    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    /// The directory around the checkout.
    pub fn outside(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes a file inside the checkout.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Creates a symlink inside the checkout.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }
}
