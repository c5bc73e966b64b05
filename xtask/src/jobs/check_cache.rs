//! check-cache: a plain release build of any crate with the compile environment every job uses (the fault
//! drills build a tiny fixture this way).

use std::path::Path;

use crate::cache::CacheSetup;
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
use crate::tools;

pub fn plan(host: &HostEnv, cache: &CacheSetup, manifest: &Path) -> Vec<Step> {
    let manifest = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    vec![
        Cmd::new(host.cargo(), manifest.parent().unwrap_or(&host.root))
            .args(["build", "--release", "--target", tools::TARGET])
            .args(["--manifest-path"])
            .arg_path(&manifest)
            .compile_env(&super::compile::compile_env(host, cache))
            .into_step("cargo build (check-cache)"),
    ]
}
