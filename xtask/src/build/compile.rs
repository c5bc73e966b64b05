//! The environment every compile step shares, whichever tool (cargo, maturin, napi) drives cargo.

use super::Build;
use crate::env_delta::EnvDelta;
use crate::host::HostEnv;
use crate::platform::{MACOSX_DEPLOYMENT_TARGET, Os, linux_platforms};

/// The cache decision and the linkers (a linker's path is part of every cache key). sccache hashes every
/// `CARGO_*` variable, so a Linux step sets the linker variable of every Linux platform, not only its
/// own: then an aarch64 build's host units (syn, quote, build dependencies) are the x86_64 build's
/// (measured: 7 of 25 hits for build-runtime; 0 with one variable each). For the same reason cargo's
/// terminal settings (`CARGO_TERM_*`: colour, progress, verbosity) stay out: they change no artifact,
/// and CI sets `CARGO_TERM_COLOR=always` (dtolnay/rust-toolchain) where a laptop does not: measured, 0
/// of 24 hits between the two.
pub fn compile_env(b: &Build) -> EnvDelta {
    let mut env = b.cache.env.clone();
    for name in (b.host.vars.keys()).filter(|name| is_terminal_setting(name)) {
        env.unset(name);
    }
    match b.platform.os {
        Os::Linux => {
            for platform in linux_platforms() {
                let linker = b.host.tools.linker(platform);
                env.set(&platform.linker_var(), linker.display().to_string());
            }
        }
        Os::MacOs => {
            env.set("MACOSX_DEPLOYMENT_TARGET", MACOSX_DEPLOYMENT_TARGET);
        }
    }
    env
}

fn is_terminal_setting(name: &str) -> bool {
    name.starts_with("CARGO_TERM_")
}

/// The caller's `CARGO_*` variables that reach a compile step whose environment is `step_env`, and so
/// every sccache key: not set anew by cargo for each crate, not set or dropped by the step, not skipped
/// by sccache (`CARGO_MAKEFLAGS`). Two machines share cache entries only where these agree (doctor
/// shows them).
pub fn key_variables<'a>(host: &'a HostEnv, step_env: &EnvDelta) -> Vec<&'a str> {
    const SET_BY_CARGO: &[&str] = &["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_MAKEFLAGS"];
    const SET_BY_CARGO_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_MANIFEST_"];
    (host.vars.keys().map(String::as_str))
        .filter(|name| name.starts_with("CARGO_") && !SET_BY_CARGO.contains(name))
        .filter(|name| !SET_BY_CARGO_PREFIXES.iter().any(|p| name.starts_with(p)))
        .filter(|name| step_env.get(name).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildJob;
    use crate::cache::{Backend, CacheSetup};
    use crate::plan::Step;

    #[test]
    fn only_the_callers_own_cargo_variables_are_listed() {
        let host = HostEnv::fixture(&[
            ("CARGO_HOME", "/home/u/.cargo"),
            ("CARGO_TARGET_DIR", "/tmp/t"),
            ("CARGO_REGISTRIES_MINE_TOKEN", "secret"),
            ("CARGO_TERM_COLOR", "always"),
            ("CARGO_PKG_NAME", "xtask"),
            ("CARGO_MANIFEST_DIR", "/src/boxspec/xtask"),
            ("CARGO", "/home/u/.cargo/bin/cargo"),
            ("CARGO_INCREMENTAL", "1"),
            ("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", "gcc"),
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "gcc"),
            ("CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER", "gcc"),
            ("HOME", "/home/u"),
        ]);
        let cache = CacheSetup::fixture(
            Some("/t/venv/bin/sccache"),
            Backend::Local {
                dir: "/home/u/.cache/sccache".into(),
            },
        );
        let steps = BuildJob::Runtime.plan(&host, &cache, host.platform.unwrap());
        let cmd = steps.iter().find_map(Step::compile_cmd).unwrap();
        assert_eq!(
            key_variables(&host, &cmd.env),
            [
                "CARGO_HOME",
                "CARGO_REGISTRIES_MINE_TOKEN",
                "CARGO_TARGET_DIR",
                "CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER"
            ]
        );
    }
}
