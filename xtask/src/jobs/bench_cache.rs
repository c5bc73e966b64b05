//! bench-cache: the measurements (the bench room: bench/mod.rs). A dry run only installs the tools.

use anyhow::Result;

use crate::context::Context;
use crate::flags::BenchCache;

impl BenchCache {
    pub fn run(self, cx: &Context) -> Result<()> {
        cx.tools_installed()?;
        match cx.global.dry_run {
            true => Ok(()),
            false => crate::bench::run(&cx.host, self.json.as_deref(), &self.only, self.runs),
        }
    }
}
