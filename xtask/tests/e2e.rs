//! End to end: the real jobs on this workspace, as a user runs them, into a scratch dist directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::root;

/// `cargo xtask …` with the environment of a plain laptop shell, a scratch dist and an isolated cache.
fn xtask(args: &[&str], dist: &Path, extra: &[(&str, String)]) -> Output {
    let scratch = root().join("target/e2e");
    let port = common::free_port().to_string();
    let mut cmd = common::driver(false);
    cmd.args(args);
    cmd.env("XTASK_DIST_DIR", dist)
        .env("SCCACHE_DIR", scratch.join("sccache"))
        .env("SCCACHE_SERVER_PORT", &port)
        .env("SCCACHE_IDLE_TIMEOUT", "30")
        .envs(extra.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().unwrap();
    if !out.status.success() {
        eprintln!(
            "--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn scratch_dist(name: &str) -> PathBuf {
    let dir = root().join("target/e2e").join(name);
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn unknown_job_is_a_usage_error() {
    let out = xtask(&["frobnicate"], &scratch_dist("usage"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
    let out = xtask(
        &["build-runtime", "--cache", "sometimes"],
        &scratch_dist("usage"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dry_run_prints_the_plan_and_builds_nothing() {
    let dist = scratch_dist("dry-run");
    let out = xtask(&["build-wheels", "--dry-run"], &dist, &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "[maturin build]",
        "RUSTC_WRAPPER=",
        "--compatibility manylinux2014",
        "[smoke: pytest]",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(!dist.exists(), "a dry run created {}", dist.display());
}

/// The three jobs for real, then the artifacts as a user would see them.
#[test]
fn build_jobs_produce_smoke_tested_artifacts() {
    let dist = scratch_dist("dist");
    // A fresh cache: what build-node and build-wheels hit is what build-runtime wrote in this run, not
    // what a run before left.
    scratch_dist("sccache");
    let summary = root().join("target/e2e/step-summary.md");
    let _ = fs::remove_file(&summary);
    let summary_arg = summary.display().to_string();
    let calls = RustcCalls::new();
    let runtime = xtask(
        &["build-runtime"],
        &dist,
        &calls.env(
            "build-runtime",
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_STEP_SUMMARY", &summary_arg),
            ],
        ),
    );
    assert!(runtime.status.success(), "build-runtime failed");
    let stdout = String::from_utf8_lossy(&runtime.stdout);
    assert!(
        stdout.contains("::group::cargo build boxspec-cli") && stdout.contains("::endgroup::"),
        "{stdout}"
    );
    let md = fs::read_to_string(&summary).expect("step summary");
    assert!(md.contains("| build-runtime | auto |"), "{md}");
    let first = job_report(&dist, "build-runtime");
    assert_eq!(
        first["hits"], 0,
        "build-runtime hit a cache it did not fill: {first}"
    );

    let node = xtask(&["build-node"], &dist, &calls.env("build-node", &[]));
    let wheels = xtask(&["build-wheels"], &dist, &calls.env("build-wheels", &[]));
    for (job, out) in [
        ("build-runtime", &runtime),
        ("build-node", &node),
        ("build-wheels", &wheels),
    ] {
        assert!(out.status.success(), "{job} failed");
        // The README's promise: a working cache is used without a single fallback notice.
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !printed.contains("notice: ") && !printed.contains("::warning::"),
            "{job} fell back: {printed}"
        );
    }
    calls.assert_shared_units_identical();
    // Each job cleaned its target: what build-node and build-wheels share with the jobs before them
    // comes from the cache (serde, serde_json, boxspec and their dependencies).
    for job in ["build-runtime", "build-node", "build-wheels"] {
        let entry = job_report(&dist, job);
        assert_eq!(entry["mode"], "auto", "{entry}");
        assert_eq!(entry["backend"], "local", "{entry}");
        if job != "build-runtime" {
            let hits = entry["hits"].as_u64().unwrap();
            assert!(hits >= 10, "too few cross-job hits: {entry}");
        }
    }
    second_builds_need_no_registry(&dist);

    let binary = dist.join("runtime/boxspec");
    let out = Command::new(&binary)
        .args(["digest", "examples/box.json"])
        .current_dir(root())
        .output()
        .unwrap();
    let digest = fs::read_to_string(root().join("examples/box.digest")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest.trim());
    for file in [
        "boxspec.linux-x64-gnu.node",
        "index.js",
        "index.d.ts",
        "package.json",
    ] {
        assert!(
            dist.join("node").join(file).is_file(),
            "dist/node/{file} missing"
        );
    }
    // The driver's smoke test ran the addon's suite on the node on PATH (CI: a current LTS); it also
    // passes on the oldest Node the package's `engines` allows (tools::OLDEST_NODE, from PyPI).
    let suite = Command::new(common::tool("oldest-node"))
        .args(["--test", "sdks/node/__test__/boxspec.test.mjs"])
        .current_dir(root())
        .env("BOXSPEC_NODE_DIR", dist.join("node"))
        .env("BOXSPEC_EXAMPLES", root().join("examples"))
        .output()
        .unwrap();
    assert!(
        suite.status.success(),
        "{}{}",
        String::from_utf8_lossy(&suite.stdout),
        String::from_utf8_lossy(&suite.stderr)
    );
    let wheels: Vec<String> = fs::read_dir(dist.join("wheels"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    assert!(
        wheels[0].contains("abi3") && wheels[0].contains("manylinux_2_17_x86_64"),
        "{wheels:?}"
    );

    let report: Value =
        serde_json::from_str(&fs::read_to_string(dist.join("cache-report.json")).unwrap()).unwrap();
    let jobs: Vec<&str> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["build-runtime", "build-node", "build-wheels"]);
}

/// The entry of `job` in the cache report of the last run into `dist`.
fn job_report(dist: &Path, job: &str) -> Value {
    let text = fs::read_to_string(dist.join("cache-report.json")).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    let jobs = report["jobs"].as_array().unwrap();
    let entry = jobs.iter().find(|j| j["job"] == job);
    entry
        .unwrap_or_else(|| panic!("no {job} in {report}"))
        .clone()
}

/// Run again as a user types it (`cargo xtask …`: cargo builds and starts the driver first), with every
/// package registry unreachable: crates.io (offline), PyPI and npm (a closed local port).
///
/// And with secrets that are part of what the jobs print (a piece of the example's digest the smoke tests
/// check, a piece of the dist path the floor check and step names show) and an identifier that is part of
/// the path `boxspec validate` prints: the checks compare the real text, the secrets are masked wherever
/// they are printed and the identifier is not masked at all.
fn second_builds_need_no_registry(dist: &Path) {
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let digest = fs::read_to_string(root().join("examples/box.digest")).unwrap();
    let secret = &digest.trim()[7..23];
    let in_dist_path = "e2e/dist";
    assert!(dist.ends_with(in_dist_path), "{}", dist.display());
    for job in ["build-runtime", "build-node", "build-wheels"] {
        let mut cmd = common::driver(true);
        cmd.arg(job);
        let out = cmd
            .env("XTASK_DIST_DIR", dist)
            .env("SCCACHE_DIR", root().join("target/e2e/sccache"))
            .env("SCCACHE_SERVER_PORT", common::free_port().to_string())
            .env("SCCACHE_IDLE_TIMEOUT", "30")
            .env("CARGO_TARGET_DIR", root().join("target/e2e/target"))
            .env("CARGO_NET_OFFLINE", "true")
            .env("PIP_INDEX_URL", format!("{closed}/simple"))
            .env("npm_config_registry", format!("{closed}/"))
            .env("BOXSPEC_DEPLOY_TOKEN", secret)
            .env("BOXSPEC_UPLOAD_PASSWORD", in_dist_path)
            .env("AWS_ACCESS_KEY_ID", "examples")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "a second `cargo xtask {job}` failed (a registry needed, or a check saw masked text):\n{stdout}\n{stderr}"
        );
        for secret in [secret, in_dist_path] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{job} printed the secret {secret:?}:\n{stdout}\n{stderr}"
            );
        }
        assert!(
            stdout.contains("sha256:***"),
            "{job}: the smoke test's digest, masked:\n{stdout}"
        );
        if job == "build-runtime" {
            let example = root().join("examples/box.json");
            let shown = format!("ok: {}", example.display());
            assert!(
                stdout.contains(&shown),
                "{shown:?} (an identifier is not a secret):\n{stdout}"
            );
        }
    }
}

/// Every rustc call of each job, recorded by a pass-through wrapper in front of the real sccache, with a
/// clean target directory per job so that every unit compiles (from the cache) and is seen.
struct RustcCalls {
    dir: PathBuf,
    recorder: String,
    target: String,
}

/// What identifies a unit across jobs: package and version, crate, host or target, crate type.
type Unit = (String, String, bool, String);

impl RustcCalls {
    fn new() -> RustcCalls {
        let dir = root().join("target/e2e/rustc-calls");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let recorder = dir.join("sccache-recorder");
        fs::write(
            &recorder,
            format!(
                "#!/bin/sh\n\
                 # Records cwd, arguments and the CARGO_ variables sccache hashes, then runs the real sccache.\n\
                 case \"$1\" in */rustc|rustc)\n\
                 {{ pwd; printf '%s\\n' \"$@\"; env | grep '^CARGO_' | grep -v '^CARGO_MAKEFLAGS=' | sort; }} \
                 > \"$RECORD_DIR/$$\" ;;\n\
                 esac\n\
                 exec '{}' \"$@\"\n",
                common::pinned_sccache().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&recorder, fs::Permissions::from_mode(0o755)).unwrap();
        RustcCalls {
            recorder: recorder.display().to_string(),
            target: root().join("target/e2e/target").display().to_string(),
            dir,
        }
    }

    fn env<'a>(&self, job: &str, extra: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
        let _ = fs::remove_dir_all(&self.target);
        let records = self.dir.join(job);
        fs::create_dir_all(&records).unwrap();
        let mut env = vec![
            ("XTASK_SCCACHE", self.recorder.clone()),
            ("RECORD_DIR", records.display().to_string()),
            ("CARGO_TARGET_DIR", self.target.clone()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    }

    /// Each unit the job compiled and exactly how (cwd, arguments, CARGO_ environment).
    fn units(&self, job: &str) -> BTreeMap<Unit, BTreeSet<String>> {
        let mut units: BTreeMap<Unit, BTreeSet<String>> = BTreeMap::new();
        for entry in fs::read_dir(self.dir.join(job)).unwrap() {
            let text = fs::read_to_string(entry.unwrap().path()).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let after = |flag: &str| {
                lines
                    .windows(2)
                    .find(|w| w[0] == flag)
                    .map_or(String::new(), |w| w[1].to_string())
            };
            let crate_name = after("--crate-name");
            if crate_name.is_empty() || crate_name == "___" {
                continue; // `rustc -vV` and cargo's `--print` queries
            }
            let var = |name: &str| {
                lines
                    .iter()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or("")
            };
            let package = format!("{} {}", var("CARGO_PKG_NAME"), var("CARGO_PKG_VERSION"));
            let for_target = lines.contains(&"--target");
            let unit = (package, crate_name, for_target, after("--crate-type"));
            units.entry(unit).or_default().insert(text.clone());
        }
        units
    }

    /// A unit two jobs both compile must get the very same rustc call, or the cache cannot share it.
    fn assert_shared_units_identical(&self) {
        let jobs = ["build-runtime", "build-node", "build-wheels"];
        let units: Vec<_> = jobs.iter().map(|job| self.units(job)).collect();
        let mut shared = 0;
        for (i, a) in units.iter().enumerate() {
            for (j, b) in units.iter().enumerate().skip(i + 1) {
                for (unit, calls) in a {
                    if let Some(other) = b.get(unit) {
                        shared += 1;
                        assert_eq!(
                            calls, other,
                            "{} and {} compile {unit:?} differently",
                            jobs[i], jobs[j]
                        );
                    }
                }
            }
        }
        // Runtime, node and wheels share serde, serde_json, boxspec and their dependencies.
        assert!(shared >= 20, "only {shared} shared units recorded");
    }
}

/// aarch64 from this x86_64 machine: each job builds its artifact through the aarch64 zig linker
/// (glibc 2.17 floor, ELF machine checked by the driver) and smoke-tests it under qemu user-mode
/// emulation; a second build with a clean target hits the cache. `.ci/aarch64-setup.sh` sets a Debian
/// machine up; elsewhere this test says SKIPPED, and on CI that is a failure.
#[test]
fn aarch64_artifacts_are_smoke_tested_under_emulation() {
    if let Some(why) = common::aarch64_missing() {
        if std::env::var("XTASK_REQUIRE_AARCH64_TEST").as_deref() == Ok("1")
            || std::env::var("CI").as_deref() == Ok("true")
        {
            panic!("the aarch64 test is required here, but {why}");
        }
        common::skipped(&format!(
            "SKIPPED aarch64 test: {why}. `sudo .ci/aarch64-setup.sh` sets a Debian machine up."
        ));
        return;
    }
    let dist = scratch_dist("aarch64");
    let target = root()
        .join("target/e2e/aarch64-target")
        .display()
        .to_string();
    let _ = fs::remove_dir_all(&target);
    // A cache directory of its own: two sccache servers must not share one (the other test runs beside).
    let sccache = root()
        .join("target/e2e/aarch64-sccache")
        .display()
        .to_string();
    let mut env = vec![
        ("XTASK_TARGET", "aarch64-unknown-linux-gnu".to_string()),
        ("CARGO_TARGET_DIR", target.clone()),
        ("SCCACHE_DIR", sccache),
    ];
    if let Ok(python) = std::env::var("XTASK_AARCH64_PYTHON") {
        env.push(("XTASK_AARCH64_PYTHON", python));
    }
    for job in ["build-runtime", "build-node", "build-wheels"] {
        let out = xtask(&[job], &dist, &env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{job} for aarch64 failed");
        assert!(!stderr.contains("not run"), "{job}: {stderr}");
        assert!(
            stdout.contains("==> smoke: "),
            "{job} ran no smoke test: {stdout}"
        );
    }
    let triple = dist.join("runtime/aarch64-unknown-linux-gnu/boxspec");
    let header = fs::read(&triple).unwrap();
    assert_eq!(&header[18..20], &[0xb7, 0x00], "not an aarch64 ELF file");
    assert!(
        dist.join("node/aarch64-unknown-linux-gnu/boxspec.linux-arm64-gnu.node")
            .is_file()
    );
    assert!(
        dist.join("wheels/aarch64-unknown-linux-gnu/boxspec-0.1.0-cp39-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl")
            .is_file()
    );

    // Again with a clean target: every cacheable unit comes from the cache.
    let _ = fs::remove_dir_all(&target);
    assert!(xtask(&["build-runtime"], &dist, &env).status.success());
    let report: Value =
        serde_json::from_str(&fs::read_to_string(dist.join("cache-report.json")).unwrap()).unwrap();
    let runtime = (report["jobs"].as_array().unwrap().iter())
        .find(|j| j["job"] == "build-runtime")
        .unwrap();
    assert_eq!(runtime["target"], "aarch64-unknown-linux-gnu", "{runtime}");
    assert!(runtime["hit_rate"].as_f64().unwrap() >= 0.98, "{runtime}");
}
