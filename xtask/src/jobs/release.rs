//! release: the build jobs' artifacts for every shipped target (or `--targets`), checked as a set and
//! laid out for the registries in the dist directory's `release/` (the release room: release/mod.rs).

use std::path::Path;

use anyhow::Result;

use super::pipeline::tools_installed;
use crate::flags::{Global, ReleaseTargets};
use crate::host::HostEnv;
use crate::release::artifacts::{left_out, selected};
use crate::release::{Release, plan};

pub fn run(
    global: &Global,
    host: &HostEnv,
    artifacts: &Path,
    tag: Option<&str>,
    targets: &ReleaseTargets,
) -> Result<()> {
    let platforms = selected(targets)?;
    let release = Release::gather(host, artifacts, tag, platforms)?;
    let mut exec = tools_installed(global, host)?;
    let left_out = left_out(&release.platforms);
    if !left_out.is_empty() {
        exec.notice(&format!(
            "a partial release (--targets): it leaves out {}",
            left_out.join(", ")
        ));
    }
    exec.run_steps(&plan(&release))?;
    if !exec.dry_run {
        exec.info(&format!(
            "released {} for {} into {}",
            release.version,
            release.triples(),
            host.relative(&release.out)
        ));
    }
    Ok(())
}
