//! Everything the driver reads from the machine, probed once into a plain value.
//! Planning only ever looks at this struct, so tests build one by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::platform::{AARCH64_CROSS_LIBS, Platform, Runner};
use crate::tools::{self, Tools, ToolsState};

/// Where `.ci/aarch64-setup.sh` unpacks Debian's arm64 CPython (override: `XTASK_AARCH64_PYTHON`).
pub const AARCH64_PYTHON_SYSROOT: &str = "/opt/boxspec-aarch64-python";

#[derive(Debug, Clone)]
pub struct HostEnv {
    /// The workspace root.
    pub root: PathBuf,
    /// The process environment, read once.
    pub vars: BTreeMap<String, String>,
    pub tools: Tools,
    pub tools_state: ToolsState,
    /// sdks/node/node_modules was installed from the current lockfile.
    pub node_modules_current: bool,
    /// The wheel smoke tests' venv holds today's smoke wheels (it is kept between runs).
    pub smoke_venv_ready: bool,
    pub python3: Option<PathBuf>,
    pub node: Option<PathBuf>,
    pub npm: Option<PathBuf>,
    /// Scratch space outside the repository, for smoke tests.
    pub temp: PathBuf,
    /// The workspace version (names the wheel).
    pub version: String,
    /// examples/box.digest: what every artifact must compute for examples/box.json.
    pub example_digest: String,
    /// The machine's own platform (the default `--target`), if the SDKs ship for it.
    pub platform: Option<Platform>,
    /// qemu user-mode emulation for aarch64 artifacts on an x86_64 host.
    pub qemu_aarch64: Option<PathBuf>,
    /// aarch64 C and C++ libraries for emulated binaries (Debian's libc6/libstdc++6-arm64-cross).
    pub aarch64_libs: Option<PathBuf>,
    /// A sysroot with an aarch64 CPython (`usr/bin/python3`), for emulated wheel smoke tests.
    pub aarch64_python: Option<PathBuf>,
    /// The invoking user, whom container builds run as.
    pub uid: u32,
    pub gid: u32,
    /// When the driver started (the report's `driver_seconds`).
    pub started: std::time::Instant,
}

impl HostEnv {
    pub fn probe(root: &Path) -> HostEnv {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let tools = Tools {
            dir: tools_dir(&vars),
        };
        let find =
            |name: &str| find_on_path(name, vars.get("PATH").map(String::as_str).unwrap_or(""));
        // Per user: another user's leftover smoke directory cannot be cleaned by us.
        let (uid, gid) = (own_id("-u"), own_id("-g"));
        let temp = std::env::temp_dir().join(format!("boxspec-xtask-{uid}"));
        let existing =
            |dir: &Path, marker: &str| dir.join(marker).exists().then(|| dir.to_path_buf());
        let aarch64_python = match vars.get("XTASK_AARCH64_PYTHON").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => existing(Path::new(AARCH64_PYTHON_SYSROOT), "usr/bin/python3"),
        };
        HostEnv {
            platform: Platform::host(),
            qemu_aarch64: find("qemu-aarch64"),
            aarch64_libs: existing(Path::new(AARCH64_CROSS_LIBS), "lib"),
            aarch64_python,
            smoke_venv_ready: tools::VenvState::probe(
                &tools.smoke_venv(),
                &tools.smoke_venv().join(tools::SMOKE_STAMP),
                &tools::smoke_stamp(),
            )
            .current,
            root: root.to_path_buf(),
            tools_state: ToolsState::probe(&tools, root),
            tools,
            node_modules_current: node_modules_current(&root.join("sdks/node")),
            python3: find("python3"),
            node: find("node"),
            npm: find("npm"),
            temp,
            version: workspace_version(&root.join("Cargo.toml")).unwrap_or_default(),
            example_digest: std::fs::read_to_string(root.join("examples/box.digest"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            uid,
            gid,
            started: std::time::Instant::now(),
            vars,
        }
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn github_actions(&self) -> bool {
        self.var("GITHUB_ACTIONS") == Some("true")
    }

    pub fn find_on_path(&self, name: &str) -> Option<PathBuf> {
        find_on_path(name, self.var("PATH").unwrap_or(""))
    }

    /// Where artifacts and the cache report go (`XTASK_DIST_DIR` lets tests keep the repository clean).
    pub fn dist(&self) -> PathBuf {
        match self.var("XTASK_DIST_DIR") {
            Some(dir) if !dir.is_empty() => self.root.join(dir),
            _ => self.root.join("dist"),
        }
    }

    pub fn target_dir(&self) -> PathBuf {
        match self.var("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => self.root.join(dir),
            _ => self.root.join("target"),
        }
    }

    /// `path` from the workspace root, for step names.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// How smoke tests run `platform`'s artifacts here.
    pub fn runner(&self, platform: Platform) -> Runner {
        Runner::choose(
            platform,
            self.platform,
            self.qemu_aarch64.as_deref(),
            self.aarch64_libs.as_deref(),
        )
    }

    /// The cargo that runs the driver (`cargo xtask` sets `CARGO`).
    pub fn cargo(&self) -> String {
        self.var("CARGO").unwrap_or("cargo").to_string()
    }

    pub fn cargo_home(&self) -> PathBuf {
        self.home_var("CARGO_HOME", ".cargo")
    }

    pub fn rustup_home(&self) -> PathBuf {
        self.home_var("RUSTUP_HOME", ".rustup")
    }

    fn home_var(&self, name: &str, default: &str) -> PathBuf {
        match self.var(name) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(self.var("HOME").unwrap_or("/")).join(default),
        }
    }

    /// `XDG_CACHE_HOME`, else `~/.cache`: where the tools, the local sccache and container HOME live.
    pub fn user_cache_dir(&self) -> PathBuf {
        user_cache_dir(&self.vars)
    }
}

fn user_cache_dir(vars: &BTreeMap<String, String>) -> PathBuf {
    match (vars.get("XDG_CACHE_HOME"), vars.get("HOME")) {
        (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(home)) => Path::new(home).join(".cache"),
        _ => std::env::temp_dir(),
    }
}

/// `XTASK_TOOLS_DIR`, else a stable directory outside the checkout: the linker wrapper's path is part of
/// every sccache key, so other checkouts share hits.
fn tools_dir(vars: &BTreeMap<String, String>) -> PathBuf {
    match vars.get("XTASK_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => user_cache_dir(vars).join("boxspec-xtask").join("tools"),
    }
}

/// The uid (`-u`) or gid (`-g`) of this process, from POSIX `id` (no libc needed, no /proc).
fn own_id(flag: &str) -> u32 {
    std::process::Command::new("id")
        .arg(flag)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

/// `version = "…"` of `[workspace.package]`.
fn workspace_version(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let section = text.split("[workspace.package]").nth(1)?;
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with("version"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// An absolute path for `name`: itself if it has a slash, else the first executable on `path`.
pub fn find_on_path(name: &str, path: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then(|| std::path::absolute(&p).unwrap_or(p));
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Where build-node keeps a copy of the lockfile `npm ci` installed from.
pub const NODE_MODULES_STAMP: &str = "node_modules/.xtask-package-lock.json";

/// node_modules holds what the lockfile says, trimmed by today's rule: the copy build-node keeps after
/// `npm ci` is the lockfile, byte for byte, and the trim recorded its rule. (Contents, not times: a fresh
/// checkout with a restored node_modules is current.)
fn node_modules_current(dir: &Path) -> bool {
    let read = |p: PathBuf| std::fs::read(p).ok();
    let trimmed = read(dir.join("node_modules").join(tools::NODE_TRIMMED_MARKER));
    match (
        read(dir.join(NODE_MODULES_STAMP)),
        read(dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => {
            installed == lock && trimmed == Some(tools::node_trim_rule().into_bytes())
        }
        _ => false,
    }
}

#[cfg(test)]
impl HostEnv {
    /// A host with everything installed, for plan tests.
    pub fn fixture(vars: &[(&str, &str)]) -> HostEnv {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tools = Tools {
            dir: PathBuf::from("/home/u/.cache/boxspec-xtask/tools"),
        };
        let ready = tools::VenvState {
            exists: true,
            current: true,
        };
        HostEnv {
            root: PathBuf::from("/src/boxspec"),
            vars,
            tools,
            tools_state: ToolsState {
                venv: ready,
                linker_current: true,
                extra: [ready, ready, ready],
                emulated_node: false,
                runner_node: false,
                verdaccio_current: false,
            },
            node_modules_current: true,
            smoke_venv_ready: true,
            python3: Some(PathBuf::from("/usr/bin/python3")),
            node: Some(PathBuf::from("/usr/bin/node")),
            npm: Some(PathBuf::from("/usr/bin/npm")),
            temp: PathBuf::from("/tmp/boxspec-xtask"),
            version: "0.1.0".into(),
            example_digest: "sha256:0123".into(),
            uid: 1000,
            gid: 1000,
            platform: Some(crate::platform::PLATFORMS[0]),
            qemu_aarch64: None,
            aarch64_libs: None,
            aarch64_python: None,
            started: std::time::Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node_modules restored from an entry saved before today's trim rule is installed anew.
    #[test]
    fn node_modules_are_current_only_with_the_lockfile_and_todays_trim() {
        let dir = std::env::temp_dir().join(format!("xtask-node-current-{}", std::process::id()));
        let modules = dir.join("node_modules");
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::write(dir.join("package-lock.json"), "{lock}").unwrap();
        std::fs::write(dir.join(NODE_MODULES_STAMP), "{lock}").unwrap();
        assert!(!node_modules_current(&dir), "untrimmed");
        let marker = modules.join(tools::NODE_TRIMMED_MARKER);
        std::fs::write(&marker, "dropped: *.md\n").unwrap();
        assert!(!node_modules_current(&dir), "trimmed by another rule");
        std::fs::write(&marker, tools::node_trim_rule()).unwrap();
        assert!(node_modules_current(&dir));
        std::fs::write(dir.join("package-lock.json"), "{new lock}").unwrap();
        assert!(!node_modules_current(&dir), "another lockfile");
        std::fs::remove_dir_all(&dir).unwrap();
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
            assert_eq!(tools_dir(&vars), PathBuf::from(want));
        }
    }
}
