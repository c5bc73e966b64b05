//! Container mode for real: podman and a locally built image (`.ci/container-setup.sh` makes both).
//! Where this machine cannot run a container the tests that need one print "SKIPPED" and why; with
//! CI=true or XTASK_REQUIRE_CONTAINER_TEST=1 (set by .ci/run once the setup worked) that is a failure.
//! The ownership test proves nothing as root (root owns every file): .ci/run runs the suite as a user
//! with rootless podman, as GitHub's runner does.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

mod common;
use common::server::Server;
use common::{
    Run, copy_dir, driver, finish_within, fixture, free_port, fresh_dir, pinned_sccache, root,
    tools_installed, wait_for,
};

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
    if required() {
        panic!("the container test is required here, but {why}");
    }
    common::skipped(&format!(
        "SKIPPED container test: {why}. `sudo .ci/container-setup.sh` sets a Debian machine up."
    ));
    None
}

/// CI, or .ci/run once the container setup worked: a test that cannot run is a failure.
fn required() -> bool {
    std::env::var("XTASK_REQUIRE_CONTAINER_TEST").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
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
        let dir = fresh_dir("container", name);
        fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let cache = dir.join("sccache");
        Scratch { dir, port, cache }
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let start = Instant::now();
        let run = Run::finish(self.command(args, extra).output().unwrap(), start);
        if !run.ok {
            eprintln!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
        }
        run
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut cmd = driver(false);
        cmd.args(args);
        cmd.env("SCCACHE_DIR", &self.cache)
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .env("SCCACHE_IDLE_TIMEOUT", "60")
            .env("XTASK_DIST_DIR", self.dir.join("dist"))
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            .envs(extra.iter().copied());
        cmd
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

/// `check-cache` of the crate at `manifest`, compiled in podman.
fn check_cache_in_podman<'a>(manifest: &'a str, image: &'a str) -> [&'a str; 7] {
    [
        "check-cache",
        "--manifest-path",
        manifest,
        "--container",
        "podman",
        "--image",
        image,
    ]
}

fn own_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

fn hit_rate(report: &Value) -> f64 {
    report["hit_rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("no hit rate in {report}"))
}

/// The acceptance test: a working binary from the container and the cache shared both ways
/// between host and container builds. (Who owns what the container writes: the ownership test below.)
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

/// The paths a container may write: the driver's own plan (`--dry-run`), its read-write `--volume`s.
fn writable_mounts(plan: &str) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = (plan.split_whitespace())
        .filter_map(|arg| arg.strip_prefix("--volume="))
        .filter(|volume| !volume.ends_with(":ro"))
        .filter_map(|volume| volume.split(':').next())
        .map(PathBuf::from)
        .collect();
    mounts.sort();
    mounts.dedup();
    mounts
}

/// What `check_owner` found under one mount.
#[derive(Default)]
struct Owners {
    checked: usize,
    /// Paths whose inode changed since the build began: created, written or given another owner.
    changed: usize,
    foreign: Vec<Foreign>,
}

/// A path the invoking user does not own.
struct Foreign {
    path: PathBuf,
    uid: u32,
    changed: bool,
}

/// `path` and everything under it (not following links) against `uid`; `since` in ns since the epoch.
fn check_owner(path: &Path, uid: u32, since: i128, found: &mut Owners) {
    let meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
        Err(err) => panic!("{}: {err}", path.display()),
    };
    let changed = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()) >= since;
    found.checked += 1;
    found.changed += usize::from(changed);
    if meta.uid() != uid {
        found.foreign.push(Foreign {
            path: path.to_path_buf(),
            uid: meta.uid(),
            changed,
        });
    }
    if meta.is_dir() {
        // A directory this user cannot read is not the user's: it was reported just above.
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            check_owner(&entry.path(), uid, since, found);
        }
    }
}

/// Nanoseconds since the epoch.
fn unix_now() -> i128 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i128::try_from(now.as_nanos()).unwrap()
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// As root a wrong owner cannot show (root owns every file): say so rather than pass. CI runs the suite
/// as an unprivileged user with rootless podman (.ci/run), as GitHub does: there root is a failure.
fn ownership_can_show() -> bool {
    if own_uid() != 0 {
        return true;
    }
    let why = "it runs as root, and root owns every file whatever the container does";
    if required() {
        panic!(
            "the ownership test is required here, but {why}. Run the suite as a user with rootless \
             podman, as .ci/run does"
        );
    }
    common::skipped(&format!(
        "NOT PROVEN here: {why}. Run it as a user who has rootless podman and the image \
         (.ci/run does)"
    ));
    false
}

/// Everything a container build leaves in the paths it can write belongs to the invoking user: the
/// workspace, the crate's directory, target, dist, CARGO_HOME, the sccache directory and the container's
/// HOME, every file in them. On CI (a fresh user who starts out owning all of it) any other owner fails;
/// elsewhere only what changed during the build does, and older files another user owns (say, from a
/// `sudo cargo`) are listed.
#[test]
fn ownership_of_everything_the_container_can_write_stays_the_users() {
    if !ownership_can_show() {
        return;
    }
    let Some(image) = image() else { return };
    let uid = own_uid();
    let s = Scratch::new("ownership");
    let manifest = s.fixture().display().to_string();
    let build = check_cache_in_podman(&manifest, &image);
    let plan = s.run(&[&["--dry-run"], &build[..]].concat(), &[]);
    assert!(plan.ok);
    let writable = writable_mounts(&plan.stdout);
    let home = env_dir("HOME").expect("HOME");
    let cargo_home = env_dir("CARGO_HOME").unwrap_or_else(|| home.join(".cargo"));
    let container_home = (env_dir("XDG_CACHE_HOME").unwrap_or_else(|| home.join(".cache")))
        .join("boxspec-xtask/container-home");
    // The list is the driver's; it must hold these at least (a plan read wrong would check nothing).
    for path in [
        root(),
        s.dir.join("crate"),
        s.dir.join("target"),
        s.dir.join("dist"),
        s.cache.clone(),
        cargo_home,
        container_home,
    ] {
        assert!(
            writable.contains(&path),
            "the plan mounts no {} read-write: {writable:?}\n{}",
            path.display(),
            plan.stdout
        );
    }

    // File times come from a coarser clock: allow it 50 ms.
    let since = unix_now() - 50_000_000;
    let run = s.run(&build, &[]);
    assert!(run.ok);
    assert!(
        run.stdout.contains("cargo build (check-cache) (in podman"),
        "{}",
        run.stdout
    );
    let found: Vec<(&PathBuf, Owners)> = (writable.iter())
        .map(|dir| {
            let mut owners = Owners::default();
            check_owner(dir, uid, since, &mut owners);
            (dir, owners)
        })
        .collect();
    let checked: usize = found.iter().map(|(_, o)| o.checked).sum();
    let strict = required();
    let (failing, older): (Vec<&Foreign>, Vec<&Foreign>) = (found.iter())
        .flat_map(|(_, o)| &o.foreign)
        .partition(|f| strict || f.changed);
    let list = |paths: &[&Foreign]| {
        let mut lines: Vec<String> = (paths.iter().take(20))
            .map(|f| format!("  {} (uid {})", f.path.display(), f.uid))
            .collect();
        if paths.len() > 20 {
            lines.push(format!("  … and {} more", paths.len() - 20));
        }
        lines.join("\n")
    };
    let which = match strict {
        true => "",
        false => " and changed in the build",
    };
    let per_mount: Vec<String> = (found.iter())
        .map(|(dir, o)| {
            let n = (o.foreign.iter()).filter(|f| strict || f.changed).count();
            format!("  {n} in {}", dir.display())
        })
        .collect();
    assert!(
        failing.is_empty(),
        "{} of {checked} paths the container can write are not owned by uid {uid}{which}:\n{}\n{}",
        failing.len(),
        per_mount.join("\n"),
        list(&failing)
    );
    let mounts: Vec<String> = (found.iter())
        .map(|(dir, o)| {
            let (dir, n, changed) = (dir.display(), o.checked, o.changed);
            format!("  {dir} ({n} paths, {changed} changed in the build)")
        })
        .collect();
    let which = match older.is_empty() {
        true => "every path",
        false => "every path the build changed",
    };
    say(&format!(
        "ownership test: {which} under the {} writable mounts is owned by uid {uid}:\n{}",
        found.len(),
        mounts.join("\n")
    ));
    if !older.is_empty() {
        say(&format!(
            "ownership test: older paths there belong to another user (not this build's doing, but a \
             build may fail to overwrite them):\n{}",
            list(&older)
        ));
    }
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

/// The watch guards a container build too: Redis frozen in the middle of it (the container shares the
/// host's network with a remote backend), the container is stopped and removed, and the build finishes
/// uncached in a new one, with one notice.
#[test]
fn a_backend_frozen_mid_build_in_the_container_finishes_uncached() {
    let Some(image) = image() else { return };
    let s = Scratch::new("frozen");
    let redis = Server::redis();
    let manifest = s.fixture();
    // The build script sleeps, inside the container too: cargo passes its [env] to build scripts.
    let config = manifest.parent().unwrap().join(".cargo/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    // It says when it sleeps in a file of the mounted crate: Redis freezes then, not at a fixed time that
    // a slow container start could still be in the cache decision at.
    fs::write(
        &config,
        "[env]\nFIXTURE_SLEEP_MS = \"8000\"\nFIXTURE_SLEEP_MARKER = { value = \"sleeping\", relative = true }\n",
    )
    .unwrap();
    let sleeping = manifest.parent().unwrap().join("sleeping");
    let manifest = manifest.display().to_string();
    let args = check_cache_in_podman(&manifest, &image);
    let endpoint = redis.redis_url();
    let start = Instant::now();
    let child = (s.command(&args, &[("SCCACHE_REDIS_ENDPOINT", &endpoint)]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let driver = child.id();
    let child = wait_for(child, start, || sleeping.exists());
    redis.freeze();
    let run = finish_within(child, start, Duration::from_secs(120));
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.notices(),
        [
            "notice: the redis cache backend stopped answering during the build; stopping sccache and finishing uncached"
        ],
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("(in podman") && run.stdout.contains("(uncached retry)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        s.report("check-cache")["mode"],
        "auto (backend died mid-build)"
    );
    // The stopped container is gone, not left compiling into the same target directory.
    let left = Command::new("podman")
        .args(["ps", "--all", "--quiet", "--filter"])
        .arg(format!("name=^xtask-{driver}-"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "");
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
    let run = s.run(&check_cache_in_podman(&manifest, &image), &[]);
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
