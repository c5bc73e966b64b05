//! lint-workflows: the pinned actionlint and zizmor (the security audit, offline) on .github/workflows,
//! from a venv of their own that no build installs.

use anyhow::Result;

use crate::context::Context;
use crate::flags::LintWorkflows;
use crate::plan::Cmd;
use crate::tools::ExtraVenv;

impl LintWorkflows {
    /// The linters have a venv of their own: no build tool is needed.
    pub fn run(self, cx: &Context) -> Result<()> {
        let (host, mut exec) = (&cx.host, cx.executor());
        cx.extra_installed(&mut exec, ExtraVenv::Lint)?;
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
}
