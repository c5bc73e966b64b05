//! publish: the preflight (release/preflight_run.rs: every registry asked, also under --dry-run), then
//! the upload of what is not out yet (release/publish.rs), after checking the release directory is the
//! release `--targets` names.

use anyhow::{Result, bail};

use crate::context::Context;
use crate::exec::Executor;
use crate::flags::Publish;
use crate::release::manifest::Manifest;
use crate::release::preflight_run::preflight;
use crate::release::publish::{check_targets, execute, file_name, npm_packages, plan};
use crate::release::release_dir;
use crate::tools::ExtraVenv;

impl Publish {
    pub fn run(self, cx: &Context) -> Result<()> {
        let (host, targets) = (&cx.host, &self.targets);
        let release = release_dir(host);
        let manifest = Manifest::read(&release)?;
        check_targets(&manifest, targets, &host.relative(&release))?;
        let npm_packages = npm_packages(&release, &manifest)?;
        // The preflight needs twine even in a dry run: installing a tool uploads nothing.
        cx.extra_installed(&mut Executor::new(host, false), ExtraVenv::Publish)?;
        let mut exec = cx.executor();
        let (registries, found) = preflight(&exec, host, &manifest, &release, &npm_packages)?;
        let v = &manifest.version;
        exec.info(&format!(
            "publishing boxspec {v} for {}: PyPI {} (asked: {}), npm {}",
            manifest.targets.join(", "),
            registries.pypi_upload,
            registries.pypi_index,
            registries.npm
        ));
        let out: Vec<String> = (manifest.python.iter().map(|f| file_name(f).to_string()))
            .filter(|f| found.pypi_out.contains(f))
            .chain(
                (npm_packages.iter().map(|p| p.name.clone())).filter(|n| found.npm_out.contains(n)),
            )
            .collect();
        let total = manifest.python.len() + npm_packages.len();
        if out.len() == total {
            bail!(
                "nothing was uploaded: boxspec {v} is already out everywhere ({} PyPI files on {}, {} \
             npm packages on {}): a new release needs a new version",
                manifest.python.len(),
                registries.pypi_index,
                npm_packages.len(),
                registries.npm
            );
        }
        if !out.is_empty() {
            exec.notice(&format!(
            "boxspec {v} is partly out (a publish stopped half-way): {} already out; the other {} \
             go now",
            out.join(", "),
            total - out.len()
        ));
        }
        let plan = plan(
            host,
            &release,
            &manifest,
            &npm_packages,
            &found,
            &registries.npm,
        );
        execute(&mut exec, &plan)
    }
}
