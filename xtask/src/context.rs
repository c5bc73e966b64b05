//! What every job runs with: the global flags and the host, probed once, and the executor with the
//! pinned tools it needs installed first.

use anyhow::{Context as _, Result};

use crate::exec::Executor;
use crate::flags::Global;
use crate::host::HostEnv;
use crate::tools::{self, ExtraVenv};

pub struct Context {
    pub global: Global,
    pub host: HostEnv,
}

impl Context {
    /// The executor (`--dry-run` prints its steps instead).
    pub fn executor(&self) -> Executor {
        Executor::new(&self.host, self.global.dry_run)
    }

    /// The executor, after installing whatever pinned tools are missing.
    pub fn tools_installed(&self) -> Result<Executor> {
        let host = &self.host;
        let mut exec = self.executor();
        let python3 =
            (host.python3.as_deref()).context("python3 is not on PATH; the tools venv needs it")?;
        let bootstrap = tools::bootstrap(&host.tools, &host.tools_state, python3);
        exec.run_steps(&bootstrap).context(
            "installing the pinned tools (a package registry must be reachable the first time)",
        )?;
        Ok(exec)
    }

    /// One of the venvs only some jobs need (the test servers, the linters, publish's), installed if
    /// missing or stale.
    pub fn extra_installed(&self, exec: &mut Executor, venv: ExtraVenv) -> Result<()> {
        let host = &self.host;
        let python3 = (host.python3.as_deref()).with_context(|| {
            format!("python3 is not on PATH; the {} venv needs it", venv.label())
        })?;
        let install = tools::bootstrap_extra(&host.tools, &host.tools_state, venv, python3);
        exec.run_steps(&install).with_context(|| {
            format!(
                "installing the pinned {} (a package registry must be reachable the first time)",
                venv.label()
            )
        })
    }
}
