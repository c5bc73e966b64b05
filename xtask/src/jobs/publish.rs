//! publish: upload the release directory `release` made (release/publish.rs), after checking it is the
//! release `--targets` names.

use anyhow::Result;

use super::pipeline::extra_installed;
use crate::exec::Executor;
use crate::flags::{Global, ReleaseTargets};
use crate::host::HostEnv;
use crate::release::manifest::Manifest;
use crate::release::publish::{check_targets, execute, npm_packages, plan};
use crate::release::registries::Registries;
use crate::release::release_dir;
use crate::tools::ExtraVenv;

pub fn run(global: &Global, host: &HostEnv, targets: &ReleaseTargets) -> Result<()> {
    let release = release_dir(host);
    let manifest = Manifest::read(&release)?;
    check_targets(&manifest, targets, &host.relative(&release))?;
    let registries = Registries::of(host)?;
    let npm_packages = npm_packages(&release, &manifest)?;
    let mut exec = Executor::new(host, global.dry_run);
    extra_installed(&mut exec, host, ExtraVenv::Publish)?;
    exec.info(&format!(
        "publishing boxspec {} for {}: PyPI {} (asked first: {}), npm {}",
        manifest.version,
        manifest.targets.join(", "),
        registries.pypi_upload,
        registries.pypi_index,
        registries.npm
    ));
    let plan = plan(host, &release, &manifest, &npm_packages, &registries);
    execute(&mut exec, &plan)
}
