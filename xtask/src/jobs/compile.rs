//! The environment every compile step shares, whichever tool (cargo, maturin, napi) drives cargo.

use super::build::Build;
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

/// The caller's `CARGO_*` variables that reach every compile step and so every sccache key: not set
/// anew by cargo for each crate, not set or dropped by the driver, not skipped by sccache. Two machines
/// share cache entries only where these agree (doctor shows them).
pub fn key_variables(host: &HostEnv) -> Vec<&str> {
    const SET_BY_CARGO: &[&str] = &["CARGO", "CARGO_CRATE_NAME", "CARGO_BIN_NAME"];
    const SET_BY_CARGO_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_MANIFEST_"];
    const SET_BY_DRIVER: &[&str] = &["CARGO_INCREMENTAL", "CARGO_BUILD_RUSTC_WRAPPER"];
    // On Linux the driver sets every Linux platform's linker.
    let linkers: Vec<String> = match host.platform.map(|p| p.os) {
        Some(Os::Linux) => linux_platforms().map(|p| p.linker_var()).collect(),
        _ => Vec::new(),
    };
    (host.vars.keys().map(String::as_str))
        .filter(|name| name.starts_with("CARGO_") || *name == "CARGO")
        .filter(|name| !SET_BY_CARGO.contains(name) && !SET_BY_DRIVER.contains(name))
        .filter(|name| !SET_BY_CARGO_PREFIXES.iter().any(|p| name.starts_with(p)))
        .filter(|name| !is_terminal_setting(name) && *name != "CARGO_MAKEFLAGS")
        .filter(|name| !linkers.iter().any(|l| l == name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            key_variables(&host),
            [
                "CARGO_HOME",
                "CARGO_REGISTRIES_MINE_TOKEN",
                "CARGO_TARGET_DIR",
                "CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER"
            ]
        );
    }
}
