//! check-cache's plan: a plain release build of any crate with the compile environment every job uses (the fault
//! drills build a tiny fixture this way).

use std::path::Path;

use super::Build;
use crate::plan::{Cmd, Step};

pub fn plan(b: &Build, manifest: &Path) -> Vec<Step> {
    let manifest = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    vec![
        Cmd::new(b.host.cargo(), manifest.parent().unwrap_or(&b.host.root))
            .args(["build", "--release", "--target", b.platform.triple])
            .args(["--manifest-path"])
            .arg_path(&manifest)
            .compile_env(&super::compile::compile_env(b))
            .into_step("cargo build (check-cache)"),
    ]
}
