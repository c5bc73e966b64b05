//! lint-workflows: the pinned actionlint and zizmor (the security audit, offline) on .github/workflows,
//! from a venv of their own that no build installs.

use anyhow::Result;

use super::pipeline::extra_installed;
use crate::exec::Executor;
use crate::host::HostEnv;
use crate::plan::Cmd;
use crate::tools::ExtraVenv;

pub fn run(exec: &mut Executor, host: &HostEnv) -> Result<()> {
    extra_installed(exec, host, ExtraVenv::Lint)?;
    let bin = host.tools.extra_venv(ExtraVenv::Lint).join("bin");
    let actionlint = Cmd::new(bin.join("actionlint"), &host.root).into_step("actionlint");
    // --strict-collection: a workflow zizmor cannot read is an error, not a skipped file.
    let zizmor = Cmd::new(bin.join("zizmor"), &host.root)
        .args([
            "--offline",
            "--strict-collection",
            "--no-progress",
            "--color",
            "never",
        ])
        .args([".github/workflows"])
        .into_step("zizmor");
    exec.run_steps(&[actionlint, zizmor])
}
