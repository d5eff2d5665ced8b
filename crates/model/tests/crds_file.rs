//! The committed CRD file `deploy/crds/argoproj.io_crds.yaml` must equal the generated
//! output of `keelson_model::crds::crds_yaml()`.

use std::path::PathBuf;

use anyhow::{Context, Result};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds/argoproj.io_crds.yaml")
}

#[test]
fn committed_crds_match_generated_output() -> Result<()> {
    let generated = keelson_model::crds::crds_yaml()?;
    let path = committed_path();
    if std::env::var_os("KEELSON_UPDATE_CRDS").is_some() {
        std::fs::write(&path, &generated).with_context(|| format!("write {}", path.display()))?;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the CRD types; regenerate it with\n  \
         cargo run -p keelson -- crds > deploy/crds/argoproj.io_crds.yaml\n\
         (or KEELSON_UPDATE_CRDS=1 cargo test -p keelson-model --test crds_file)",
        path.display()
    );
    Ok(())
}
