//! Container mode for real: podman and a locally built image (`.ci/container-setup.sh` makes both).
//! Where this machine cannot run a container the tests that need one print "SKIPPED" and why; with
//! CI=true or XTASK_REQUIRE_CONTAINER_TEST=1 (set by .ci/run once the setup worked) that is a failure.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

mod common;
use common::{
    Run, copy_dir, fixture, free_port, pinned_sccache, scrub_caller_env, tools_installed,
};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Shown even when the test passes (libtest captures only the print macros).
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The image to build in, if podman can run it here.
fn image() -> Option<String> {
    let image = std::env::var("XTASK_TEST_IMAGE")
        .unwrap_or_else(|_| "localhost/boxspec-bookworm".to_string());
    let why = match Command::new("podman")
        .args(["run", "--rm", "--network=none", &image, "true"])
        .stdin(Stdio::null())
        .output()
    {
        Err(err) => format!("podman cannot be started ({err})"),
        Ok(out) if !out.status.success() => format!(
            "podman cannot run {image}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => return Some(image),
    };
    // CI refuses to skip: there a missing prerequisite is a failure with the reason.
    if std::env::var("XTASK_REQUIRE_CONTAINER_TEST").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
    {
        panic!("the container test is required here, but {why}");
    }
    say(&format!(
        "SKIPPED container test: {why}. `sudo .ci/container-setup.sh` sets a Debian machine up."
    ));
    None
}

/// A scratch area with its own sccache directory and server, target and dist.
struct Scratch {
    dir: PathBuf,
    port: u16,
    cache: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        tools_installed();
        let dir =
            std::env::temp_dir().join(format!("xtask-container-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let cache = dir.join("sccache");
        Scratch { dir, port, cache }
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(XTASK);
        cmd.args(args).current_dir(root()).stdin(Stdio::null());
        scrub_caller_env(&mut cmd);
        cmd.env("SCCACHE_DIR", &self.cache)
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .env("SCCACHE_IDLE_TIMEOUT", "60")
            .env("XTASK_DIST_DIR", self.dir.join("dist"))
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            .envs(extra.iter().copied());
        let start = Instant::now();
        let run = Run::finish(cmd.output().unwrap(), start);
        if !run.ok {
            eprintln!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
        }
        run
    }

    fn clean_target(&self) {
        let _ = fs::remove_dir_all(self.dir.join("target"));
    }

    fn empty_cache(&self) {
        self.stop_server();
        let _ = fs::remove_dir_all(&self.cache);
    }

    fn stop_server(&self) {
        let _ = Command::new(pinned_sccache())
            .arg("--stop-server")
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .stdin(Stdio::null())
            .output();
    }

    /// The report entry of `job` from the last run.
    fn report(&self, job: &str) -> Value {
        let text = fs::read_to_string(self.dir.join("dist/cache-report.json")).unwrap();
        let report: Value = serde_json::from_str(&text).unwrap();
        report["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job"] == job)
            .cloned()
            .unwrap()
    }

    /// A copy of the fixture crate (a bin with two small cacheable libraries).
    fn fixture(&self) -> PathBuf {
        let to = self.dir.join("crate");
        copy_dir(&fixture(), &to);
        to.join("Cargo.toml")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.stop_server();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Every path under `dir` whose owner is not `uid`.
fn foreign_files(dir: &Path, uid: u32) -> Vec<PathBuf> {
    let mut foreign = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.path().symlink_metadata().unwrap();
        if meta.uid() != uid {
            foreign.push(entry.path());
        }
        if meta.is_dir() {
            foreign.extend(foreign_files(&entry.path(), uid));
        }
    }
    foreign
}

fn own_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

fn hit_rate(report: &Value) -> f64 {
    report["hit_rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("no hit rate in {report}"))
}

/// The acceptance test: a working binary from the container, files owned by the invoking user,
/// and the cache shared both ways between host and container builds.
#[test]
fn build_runtime_in_podman_shares_the_cache_with_the_host() {
    let Some(image) = image() else { return };
    let s = Scratch::new("runtime");
    let in_podman = ["build-runtime", "--container", "podman", "--image", &image];

    let host_cold = s.run(&["build-runtime"], &[]);
    assert!(host_cold.ok);
    s.clean_target();
    let container_warm = s.run(&in_podman, &[]);
    assert!(container_warm.ok);
    let host_to_container = s.report("build-runtime");
    assert!(
        container_warm
            .stdout
            .contains("cargo build boxspec-cli (in podman"),
        "{}",
        container_warm.stdout
    );
    let binary = s.dir.join("dist/runtime/boxspec");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "boxspec 0.1.0"
    );
    let foreign = foreign_files(&s.dir, own_uid());
    assert!(
        foreign.is_empty(),
        "not owned by uid {}: {foreign:?}",
        own_uid()
    );

    s.empty_cache();
    s.clean_target();
    let container_cold = s.run(&in_podman, &[]);
    assert!(container_cold.ok);
    s.clean_target();
    let host_warm = s.run(&["build-runtime"], &[]);
    assert!(host_warm.ok);
    let container_to_host = s.report("build-runtime");

    say(&format!(
        "container test: host→container hit rate {:.1} % ({} hits, {} misses); container→host {:.1} % \
         ({} hits, {} misses); cold builds: host {:.1} s, container {:.1} s; warm: container {:.1} s, host {:.1} s",
        hit_rate(&host_to_container) * 100.0,
        host_to_container["hits"],
        host_to_container["misses"],
        hit_rate(&container_to_host) * 100.0,
        container_to_host["hits"],
        container_to_host["misses"],
        host_cold.seconds,
        container_cold.seconds,
        container_warm.seconds,
        host_warm.seconds,
    ));
    assert!(hit_rate(&host_to_container) >= 0.95, "{host_to_container}");
    assert!(hit_rate(&container_to_host) >= 0.95, "{container_to_host}");
}

/// sccache that works on the host but not in the image: the build goes on uncached, with one notice.
#[test]
fn a_wrapper_that_cannot_run_in_the_image_means_an_uncached_build() {
    let Some(image) = image() else { return };
    let s = Scratch::new("wrapper");
    let manifest = s.fixture();
    // Fault injection: refuses to run inside a podman container (podman marks them with this file).
    let wrapper = s.dir.join("sccache-host-only");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e /run/.containerenv ] && exit 1\nexec '{}' \"$@\"\n",
            pinned_sccache().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let wrapper = wrapper.display().to_string();
    let manifest = manifest.display().to_string();
    let run = s.run(
        &[
            "check-cache",
            "--manifest-path",
            &manifest,
            "--sccache",
            &wrapper,
            "--container",
            "podman",
            "--image",
            &image,
        ],
        &[],
    );
    assert!(run.ok);
    assert!(
        run.stdout.contains(&format!("cache: sccache {wrapper}")),
        "the host probe passed: {}",
        run.stdout
    );
    let notices = run.notices();
    assert_eq!(
        notices,
        [format!(
            "notice: {wrapper} does not run in this image; building uncached"
        )],
        "{}",
        run.stderr
    );
    let report = s.report("check-cache");
    assert_eq!(report["compile_requests"], 0, "{report}");
    assert_eq!(
        report["mode"], "auto (sccache did not run in the container)",
        "{report}"
    );
}

#[test]
fn a_compile_error_in_the_container_still_fails() {
    let Some(image) = image() else { return };
    let s = Scratch::new("compile-error");
    let manifest = s.fixture();
    fs::write(
        manifest.parent().unwrap().join("src/main.rs"),
        "fn main() { let x: u32 = \"not a number\"; }\n",
    )
    .unwrap();
    let manifest = manifest.display().to_string();
    let run = s.run(
        &[
            "check-cache",
            "--manifest-path",
            &manifest,
            "--container",
            "podman",
            "--image",
            &image,
        ],
        &[],
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("error[E0308]: mismatched types"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("step `cargo build (check-cache) (in podman"),
        "{}",
        run.stderr
    );
}

/// The user asked for a container: when the engine is missing or broken there is no silent host build.
/// (Fault injection only: a PATH without podman, and a `podman` that cannot run anything.)
#[test]
fn a_missing_or_broken_engine_fails_before_building() {
    let s = Scratch::new("engine");
    let broken = s.dir.join("broken-bin");
    fs::create_dir_all(&broken).unwrap();
    let podman = broken.join("podman");
    fs::write(
        &podman,
        "#!/bin/sh\necho 'Error: cannot connect to the engine' >&2\nexit 125\n",
    )
    .unwrap();
    fs::set_permissions(&podman, fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap();
    let without_podman: Vec<&str> = path
        .split(':')
        .filter(|dir| !Path::new(dir).join("podman").exists())
        .collect();
    let without_podman = without_podman.join(":");
    let with_broken = format!("{}:{without_podman}", broken.display());
    let args = [
        "build-runtime",
        "--container",
        "podman",
        "--image",
        "localhost/whatever",
    ];

    let missing = s.run(&args, &[("PATH", &without_podman)]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("`podman` is not on PATH"),
        "{}",
        missing.stderr
    );

    let broken = s.run(&args, &[("PATH", &with_broken)]);
    assert_eq!(broken.code, Some(1));
    assert!(
        broken
            .stderr
            .contains("podman cannot run a container from localhost/whatever")
            && broken.stderr.contains("cannot connect to the engine"),
        "{}",
        broken.stderr
    );
    for run in [&missing, &broken] {
        assert!(!run.stdout.contains("==> cargo build"), "{}", run.stdout);
    }
    assert!(!s.dir.join("dist").exists());

    let no_image = s.run(&["build-runtime", "--container", "podman"], &[]);
    assert_eq!(no_image.code, Some(2), "{}", no_image.stderr);
    assert!(
        no_image.stderr.contains("needs --image"),
        "{}",
        no_image.stderr
    );
}
