//! The working tree copied to another absolute path, as a cross-path build or a fresh runner sees it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::host::HostEnv;

/// The working tree at another absolute path (see `copy_sources`), with its own driver binary.
pub fn copy_workspace(host: &HostEnv, to: &Path) -> Result<PathBuf> {
    copy_sources(host, to, true)?;
    let sh = Shell::new()?;
    sh.change_dir(to);
    let cargo = host.cargo();
    cmd!(sh, "{cargo} build --quiet -p xtask")
        .env_remove("RUSTC_WRAPPER")
        .quiet()
        .run()
        .with_context(|| format!("building the driver in {}", to.display()))?;
    Ok(to.join("target/debug/xtask"))
}

/// The working tree's files (tracked or not, minus ignored ones — the same sources the running driver
/// was built from) at another absolute path, and node_modules if asked (so npm ci does not skew the
/// timing; a runner has only what its cache restores).
pub fn copy_sources(host: &HostEnv, to: &Path, node_modules: bool) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(&host.root);
    let files = cmd!(sh, "git ls-files -z --cached --others --exclude-standard")
        .quiet()
        .read()?;
    for rel in files.split('\0').filter(|f| !f.is_empty()).map(Path::new) {
        if !host.root.join(rel).is_file() {
            continue; // deleted in the working tree
        }
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(host.root.join(rel), &dest)?;
    }
    if !node_modules {
        return Ok(());
    }
    let node_modules = host.root.join("sdks/node/node_modules");
    let sdk = to.join("sdks/node/");
    cmd!(sh, "cp -a {node_modules} {sdk}")
        .quiet()
        .run()
        .context("copying node_modules")
}
