//! lint-workflows: the pinned actionlint and zizmor (the security audit, offline) on .github/workflows.

use anyhow::Result;

use crate::exec::Executor;
use crate::host::HostEnv;
use crate::plan::Cmd;

pub fn run(exec: &mut Executor, host: &HostEnv) -> Result<()> {
    let actionlint = Cmd::new(host.tools.bin("actionlint"), &host.root).into_step("actionlint");
    // --strict-collection: a workflow zizmor cannot read is an error, not a skipped file.
    let zizmor = Cmd::new(host.tools.bin("zizmor"), &host.root)
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
