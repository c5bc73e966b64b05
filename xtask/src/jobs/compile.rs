//! The environment every compile step shares, whichever tool (cargo, maturin, napi) drives cargo.

use super::build::Build;
use crate::env_delta::EnvDelta;
use crate::platform::{MACOSX_DEPLOYMENT_TARGET, Os};

/// The cache decision and the platform's one linker (its path is part of every cache key). Only this
/// platform's linker variable is set: every `CARGO_*` variable is part of every key. For the same reason
/// cargo's terminal settings (`CARGO_TERM_*`: colour, progress, verbosity) stay out: they change no
/// artifact, and CI sets `CARGO_TERM_COLOR=always` (dtolnay/rust-toolchain) where a laptop does not:
/// measured, 0 of 24 hits between the two.
pub fn compile_env(b: &Build) -> EnvDelta {
    let mut env = b.cache.env.clone();
    for name in (b.host.vars.keys()).filter(|name| name.starts_with("CARGO_TERM_")) {
        env.unset(name);
    }
    match b.platform.os {
        Os::Linux => {
            let linker = b.host.tools.linker(b.platform);
            env.set(&b.platform.linker_var(), linker.display().to_string());
        }
        Os::MacOs => {
            env.set("MACOSX_DEPLOYMENT_TARGET", MACOSX_DEPLOYMENT_TARGET);
        }
    }
    env
}
