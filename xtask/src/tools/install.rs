//! The steps that install the pinned tools into the tools directory, each only when it is missing or
//! stale (`ToolsState` says which).

use std::path::{Path, PathBuf};

use super::{
    EMULATED_NODE, ExtraVenv, RUNNER_NODE, Tools, ToolsState, Trim, VERDACCIO_PROJECT,
    VERDACCIO_VERSION, pin_lines, requirements, smoke_requirements, ziglang_pin,
};
use crate::plan::{Action, Cmd, Step};
use crate::platform::linux_platforms;

/// How every pip the driver runs speaks: only errors.
const PIP_QUIET: [&str; 2] = ["--quiet", "--disable-pip-version-check"];

/// `pip install` with the venv's own interpreter, quietly.
pub fn pip_install(python: &Path, cwd: &Path) -> Cmd {
    Cmd::new(python, cwd)
        .args(["-m", "pip", "install"])
        .args(PIP_QUIET)
}

/// `pip install` by `python`'s pip into the environment of `target`, a venv without a pip of its own
/// (pip wants `--python` before the subcommand).
pub fn pip_install_into(python: &Path, target: &Path, cwd: &Path) -> Cmd {
    Cmd::new(python, cwd)
        .args(["-m", "pip", "--python"])
        .arg_path(target)
        .args(["install"])
        .args(PIP_QUIET)
}

/// `pip download` into `dest` with the tools venv's interpreter, quietly.
fn pip_download(python: &Path, cwd: &Path, dest: &Path) -> Cmd {
    Cmd::new(python, cwd)
        .args(["-m", "pip", "download"])
        .args(PIP_QUIET)
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
        let mut finish = trims(tools, state.venv.exists);
        finish.push(smoke_wheels);
        steps.extend(venv.install(python3, state.venv.exists, finish));
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

/// What the tools venv leaves out (see `ZIG_LIB_KEEP`). A venv installed before may hold a zig trimmed
/// by another rule: zig comes back in full before it is trimmed again.
fn trims(tools: &Tools, stale: bool) -> Vec<Step> {
    let python = tools.bin("python");
    let mut steps = Vec::new();
    if stale {
        steps.push(
            pip_install(&python, &tools.dir)
                .args(["--force-reinstall", "--no-deps", &ziglang_pin()])
                .into_step("tools: zig in full"),
        );
    }
    steps.push(Step::new(
        "tools: trim zig",
        Action::Trim(Trim::ZigLib { venv: tools.venv() }),
    ));
    steps.push(
        Cmd::new(&python, &tools.dir)
            .args(["-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"])
            .into_step("tools: remove setuptools"),
    );
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

pub fn stamp(venv: &Path) -> PathBuf {
    venv.join("xtask-pins.txt")
}
