//! The environment every compile step shares, whichever tool (cargo, maturin, napi) drives cargo.

use crate::cache::CacheSetup;
use crate::env_delta::EnvDelta;
use crate::host::HostEnv;
use crate::tools;

/// The cache decision and the one shared linker (its path is part of every cache key).
pub fn compile_env(host: &HostEnv, cache: &CacheSetup) -> EnvDelta {
    let mut env = cache.env.clone();
    env.set(&linker_var(), host.tools.linker().display().to_string());
    env
}

fn linker_var() -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        tools::TARGET.to_uppercase().replace('-', "_")
    )
}
