//! Every job's `--dry-run` plan (and every `--help`) under one fixed environment, written to `target/plans/plans.txt`: the
//! proof a reshape changed no behaviour. Run it before and after and diff the two files:
//!
//! ```text
//! cargo test -p xtask --test plans && cp target/plans/plans.txt /tmp/before.txt
//! # … change the code …
//! cargo test -p xtask --test plans && diff /tmp/before.txt target/plans/plans.txt
//! ```
//!
//! The environment is fixed (an empty tools directory, so no pinned tool is installed; a PATH of the few
//! programs the driver looks for; a scratch dist directory with a laid-out release) and the text leaves out what varies from run to run (the cache
//! decision's milliseconds). The test itself checks that two runs print the same plans. Its first line
//! says whether sdks/node/node_modules is current (then no plan runs `npm ci`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::root;

const TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
];

/// The jobs whose plans are compared (with the release and publish fixtures' paths filled in).
fn jobs(scratch: &Path) -> Vec<Vec<String>> {
    let fixture = common::fixture().join("Cargo.toml").display().to_string();
    let artifacts = scratch.join("artifacts").display().to_string();
    let partial = scratch.join("partial").display().to_string();
    let jobs: &[&[&str]] = &[
        &["build-runtime"],
        &["build-runtime", "--target", "aarch64-unknown-linux-gnu"],
        &["build-runtime", "--cache", "off"],
        &["build-runtime", "--container", "podman", "--image", "img"],
        &["build-node"],
        &["build-node", "--target", "aarch64-unknown-linux-gnu"],
        &["build-wheels"],
        &["build-wheels", "--target", "aarch64-unknown-linux-gnu"],
        &["build-wheels", "--via", "cibuildwheel"],
        &["build-wheels", "--container", "podman", "--image", "img"],
        &[
            "build-wheels",
            "--container",
            "podman",
            "--image",
            "img",
            "--toolchain",
            "image",
        ],
        &["warm-caches"],
        &[
            "warm-caches",
            "--target",
            "x86_64-unknown-linux-gnu,aarch64-unknown-linux-gnu",
        ],
        &["check-cache", "--manifest-path", &fixture],
        &["target-layer"],
        &["target-layer", "--manifest-path", &fixture],
        &["doctor"],
        &["doctor", "--json"],
        &["lint-workflows"],
        &["tools"],
        &["tools", "--test"],
        &["bench-cache"],
        &["release", "--artifacts", &artifacts],
        &["release", "--artifacts", &artifacts, "--tag", "v0.1.0"],
        &[
            "release",
            "--artifacts",
            &partial,
            "--targets",
            "x86_64-unknown-linux-gnu",
        ],
        &["release", "--artifacts", "no-such-dir"],
    ];
    (jobs.iter())
        .map(|job| job.iter().map(|a| a.to_string()).collect())
        .collect()
}

const X86_64: &[&str] = &["x86_64-unknown-linux-gnu"];

/// publish's cases: the targets of the release laid out in dist/release/, publish's arguments.
const PUBLISH: &[(&[&str], &[&str])] = &[
    (TARGETS, &["publish"]),
    (X86_64, &["publish", "--targets", X86_64[0]]),
    (X86_64, &["publish"]),
    (TARGETS, &["publish", "--targets", X86_64[0]]),
    (&[], &["publish"]),
];

/// A download-artifact layout of the pieces of `targets` (names only: a dry run opens none but the
/// loaders and package.json files).
fn artifacts(dir: &Path, version: &str, targets: &[&str]) {
    let napi = |t: &str| match t {
        "x86_64-unknown-linux-gnu" => "linux-x64-gnu",
        "aarch64-unknown-linux-gnu" => "linux-arm64-gnu",
        "x86_64-apple-darwin" => "darwin-x64",
        _ => "darwin-arm64",
    };
    let wheel = |t: &str| match t {
        "x86_64-unknown-linux-gnu" => "manylinux2014_x86_64.manylinux_2_17_x86_64",
        "aarch64-unknown-linux-gnu" => "manylinux2014_aarch64.manylinux_2_17_aarch64",
        "x86_64-apple-darwin" => "macosx_11_0_x86_64",
        _ => "macosx_11_0_arm64",
    };
    for t in targets {
        let write = |rel: String, text: &str| {
            let path = dir.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(format!("build-runtime-{t}/boxspec"), "elf");
        write(format!("build-runtime-{t}/cache-report.json"), "{}");
        let node = format!("build-node-{t}");
        write(format!("{node}/boxspec.{}.node", napi(t)), "elf");
        write(format!("{node}/index.js"), "loader");
        write(format!("{node}/index.d.ts"), "types");
        let package = format!("{{\"name\": \"boxspec\", \"version\": \"{version}\"}}");
        write(format!("{node}/package.json"), &package);
        let wheel = format!("boxspec-{version}-cp39-abi3-{}.whl", wheel(t));
        write(format!("build-wheels-{t}/{wheel}"), "zip");
    }
}

/// dist/release/ as `release` lays it out, enough for publish to plan (targets: `only` or all).
fn laid_out_release(dist: &Path, version: &str, only: &[&str]) {
    let release = dist.join("release");
    let napi = [
        "linux-x64-gnu",
        "linux-arm64-gnu",
        "darwin-x64",
        "darwin-arm64",
    ];
    let mut npm: Vec<String> = (TARGETS.iter().zip(napi))
        .filter(|(t, _)| only.contains(t))
        .map(|(_, n)| format!("npm/boxspec-{n}"))
        .collect();
    npm.push("npm/boxspec".into());
    for dir in &npm {
        let name = dir.trim_start_matches("npm/");
        fs::create_dir_all(release.join(dir)).unwrap();
        let package = format!("{{\"name\": \"{name}\", \"version\": \"{version}\"}}");
        fs::write(release.join(dir).join("package.json"), package).unwrap();
    }
    let python = vec![format!("python/boxspec-{version}.tar.gz")];
    fs::create_dir_all(release.join("python")).unwrap();
    for file in &python {
        fs::write(release.join(file), "sdist").unwrap();
    }
    let manifest = serde_json::json!({
        "version": version,
        "targets": only,
        "python": python,
        "npm": npm,
        "runtime": [],
    });
    fs::write(release.join("release.json"), manifest.to_string()).unwrap();
}

/// The programs the driver looks for on PATH, as this machine has them, and a `podman` that is never run
/// (a dry run only finds it): then a tool installed meanwhile (podman, qemu) changes no plan.
fn bin_dir(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8_lossy(&python.stdout).trim().to_string();
    let path = std::env::var("PATH").unwrap_or_default();
    for name in ["cargo", "rustc", "rustup", "node", "npm", "id", "sh"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            std::os::unix::fs::symlink(found, dir.join(name)).unwrap();
        }
    }
    std::os::unix::fs::symlink(python, dir.join("python3")).unwrap();
    let podman = dir.join("podman");
    fs::write(&podman, "#!/bin/sh\nexit 1\n").unwrap();
    fs::set_permissions(&podman, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir.to_path_buf()
}

/// One job's dry run: its command line, exit code, stdout and stderr, with the varying parts masked.
fn dry_run(job: &[String], scratch: &Path, dist: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(job)
        .arg("--dry-run")
        .current_dir(root())
        .stdin(Stdio::null())
        .env_clear()
        .env("PATH", scratch.join("bin"))
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("XTASK_TOOLS_DIR", scratch.join("tools"))
        .env("XTASK_AARCH64_PYTHON", scratch.join("no-aarch64-python"))
        .env("XTASK_DIST_DIR", dist)
        // publish asks these; fixed values, so the plan names them.
        .env("TWINE_REPOSITORY_URL", "http://127.0.0.1:9/")
        .env("XTASK_PYPI_INDEX", "http://127.0.0.1:9/simple/")
        .env("npm_config_registry", "http://127.0.0.1:9/npm/");
    let out = cmd.output().unwrap();
    let text = format!(
        "===== {}\n-- exit {:?}\n-- stdout\n{}-- stderr\n{}",
        job.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    mask(&text)
}

/// Masks what changes between runs: durations (`decided in 2 ms`) and the driver's pid in container
/// names (`--name=xtask-<pid>-0`).
fn mask(text: &str) -> String {
    let unit = |w: &str| matches!(w.trim_end_matches([',', ')', '.']), "ms" | "s");
    let lines = text.lines().map(|line| {
        let words: Vec<&str> = line.split(' ').collect();
        let masked: Vec<String> = (words.iter().enumerate())
            .map(|(i, w)| match w.strip_prefix("--name=xtask-") {
                Some(rest) => format!("--name=xtask-#{}", &rest[rest.find('-').unwrap_or(0)..]),
                None if w.parse::<f64>().is_ok() && words.get(i + 1).is_some_and(|n| unit(n)) => {
                    "#".into()
                }
                // A step's time as the executor prints it: `(3.0s)` (publish installs its tools first).
                None if w
                    .strip_prefix('(')
                    .and_then(|w| w.strip_suffix("s)"))
                    .is_some_and(|n| n.parse::<f64>().is_ok()) =>
                {
                    "(#s)".into()
                }
                None => w.to_string(),
            })
            .collect();
        masked.join(" ") + "\n"
    });
    lines.collect()
}

fn all_plans(scratch: &Path) -> String {
    let dist = scratch.join("dist");
    let version = common::workspace_version();
    let _ = fs::remove_dir_all(scratch);
    bin_dir(&scratch.join("bin"));
    artifacts(&scratch.join("artifacts"), &version, TARGETS);
    artifacts(&scratch.join("partial"), &version, &TARGETS[..1]);
    // The one thing of the checkout a plan reads: whether `npm ci` must run first (a build-node run makes
    // node_modules current). Compare plans made in the same state.
    let sdk = root().join("sdks/node");
    let read = |p: &str| fs::read(sdk.join(p)).ok();
    let current = read("package-lock.json") == read("node_modules/.xtask-package-lock.json");
    let mut text = format!("node_modules current: {current}\n");
    for job in jobs(scratch) {
        text.push_str(&dry_run(&job, scratch, &dist));
    }
    for (release, args) in PUBLISH {
        // No targets: no release at all.
        let _ = fs::remove_dir_all(dist.join("release"));
        if !release.is_empty() {
            laid_out_release(&dist, &version, release);
        }
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        text.push_str(&dry_run(&args, scratch, &dist));
    }
    // The help texts: the command line is behaviour too.
    let mut helps = vec![vec!["--help".to_string()]];
    helps.extend(
        SUBCOMMANDS
            .iter()
            .map(|job| vec![job.to_string(), "--help".into()]),
    );
    for help in helps {
        text.push_str(&dry_run(&help, scratch, &dist));
    }
    text
}

const SUBCOMMANDS: [&str; 12] = [
    "build-runtime",
    "build-node",
    "build-wheels",
    "warm-caches",
    "check-cache",
    "bench-cache",
    "target-layer",
    "release",
    "publish",
    "lint-workflows",
    "tools",
    "doctor",
];

#[test]
fn every_jobs_dry_run_plan_is_written_and_stable() {
    let out = root().join("target/plans");
    let first = all_plans(&out.join("scratch"));
    let second = all_plans(&out.join("scratch"));
    let file: PathBuf = out.join("plans.txt");
    fs::write(&file, &first).unwrap();
    fs::write(out.join("plans-again.txt"), &second).unwrap();
    assert!(
        first == second,
        "two runs printed different plans: diff {0}/plans.txt {0}/plans-again.txt",
        out.display()
    );
    let jobs = first.matches("\n===== ").count() + 1;
    eprintln!("{jobs} dry runs written to {}", file.display());
}
