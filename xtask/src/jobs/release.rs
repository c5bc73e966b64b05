//! release: the build jobs' artifacts for every shipped target (or `--targets`), checked as a set and
//! laid out for the registries in the dist directory's `release/` (the release room: release/mod.rs).

use anyhow::Result;

use crate::context::Context;
use crate::flags::Release as Args;
use crate::release::artifacts::{left_out, selected};
use crate::release::{Release, plan};

impl Args {
    pub fn run(self, cx: &Context) -> Result<()> {
        let host = &cx.host;
        let platforms = selected(&self.targets)?;
        let release = Release::gather(host, &self.artifacts, self.tag.as_deref(), platforms)?;
        let mut exec = cx.tools_installed()?;
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
}
