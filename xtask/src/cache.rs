//! The cache decision: which sccache, which backend, and whether it really works, decided once, before
//! any build step, under the driver's own deadlines. Every job consumes the resulting `CacheSetup`;
//! no other module looks at `SCCACHE_*` or `RUSTC_WRAPPER`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::bounded;
use crate::flags::{CacheMode, Global};
use crate::host::HostEnv;
use crate::tools;

/// `sccache --version` answers in a few ms; anything slower is a broken or hanging wrapper.
const VERSION_TIMEOUT: Duration = Duration::from_millis(800);
/// sccache itself waits 10 s for a dead backend; we decide well before that.
const START_TIMEOUT: Duration = Duration::from_millis(1500);
const STATS_TIMEOUT: Duration = Duration::from_millis(2000);
const DEFAULT_PORT: &str = "4226";

/// Remote backends sccache reads from its environment: we detect them and pass them through.
const REMOTE_BACKENDS: &[(&str, &[&str])] = &[
    (
        "redis",
        &[
            "SCCACHE_REDIS_ENDPOINT",
            "SCCACHE_REDIS_CLUSTER_ENDPOINTS",
            "SCCACHE_REDIS",
        ],
    ),
    (
        "memcached",
        &["SCCACHE_MEMCACHED_ENDPOINT", "SCCACHE_MEMCACHED"],
    ),
    ("s3", &["SCCACHE_BUCKET"]),
    ("gcs", &["SCCACHE_GCS_BUCKET"]),
    ("azure", &["SCCACHE_AZURE_CONNECTION_STRING"]),
    ("webdav", &["SCCACHE_WEBDAV_ENDPOINT"]),
    ("oss", &["SCCACHE_OSS_BUCKET"]),
];
const GHA_VARS: &[&str] = &[
    "ACTIONS_RESULTS_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_CACHE_SERVICE_V2",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Disabled,
    Local {
        dir: PathBuf,
    },
    /// `health` is a `host:port` the watchdog can connect to while a build runs.
    Remote {
        kind: &'static str,
        health: Option<String>,
    },
}

impl Backend {
    pub fn describe(&self) -> String {
        match self {
            Backend::Disabled => "none".into(),
            Backend::Local { dir } => format!("local disk {}", dir.display()),
            Backend::Remote { kind, .. } => kind.to_string(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Disabled => "none",
            Backend::Local { .. } => "local",
            Backend::Remote { kind, .. } => kind,
        }
    }
}

/// One sccache the driver looked at, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: &'static str,
    pub path: PathBuf,
    /// `Ok(version)` or `Err(why not)`.
    pub verdict: Result<String, String>,
}

#[derive(Debug, Clone)]
pub struct CacheSetup {
    pub mode: CacheMode,
    /// Absolute path of the sccache in use, if caching.
    pub wrapper: Option<PathBuf>,
    pub backend: Backend,
    /// Exactly what compile steps add to their environment (`None` removes a variable).
    pub env: Vec<(String, Option<String>)>,
    /// One line per step down; printed as `::warning::` on GitHub Actions.
    pub notices: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// The server probe: `Ok(ms)` or `Err(why)`; `None` when no probe ran.
    pub probe: Option<Result<u64, String>>,
    pub decision_ms: u64,
    pub port: String,
    pub fell_back: bool,
}

impl CacheSetup {
    /// `auto`, or `auto (fell back)` when the cache in use is not the one asked for.
    pub fn mode_label(&self) -> String {
        match self.fell_back {
            true => format!("{} (fell back)", self.mode.as_str()),
            false => self.mode.as_str().to_string(),
        }
    }

    /// The one line that says what was decided.
    pub fn summary(&self) -> String {
        match &self.wrapper {
            Some(path) => format!(
                "cache: sccache {} · backend {} · mode {} · decided in {} ms",
                path.display(),
                self.backend.describe(),
                self.mode_label(),
                self.decision_ms
            ),
            None => format!(
                "cache: off · mode {} · decided in {} ms",
                self.mode_label(),
                self.decision_ms
            ),
        }
    }

    pub fn stats(&self) -> Option<Stats> {
        let wrapper = self.wrapper.as_ref()?;
        let out = bounded::run(
            wrapper,
            &["--show-stats", "--stats-format=json"],
            &self.env,
            STATS_TIMEOUT,
        )
        .ok()?;
        out.ok().then(|| Stats::parse(&out.stdout)).flatten()
    }

    /// Stop the server on our port, however it is stuck.
    pub fn kill_server(&self) {
        kill_servers(&self.port);
    }
}

#[cfg(test)]
impl CacheSetup {
    /// A decided setup, for plan tests.
    pub fn fixture(wrapper: Option<&str>, backend: Backend) -> CacheSetup {
        let wrapper = wrapper.map(PathBuf::from);
        CacheSetup {
            mode: CacheMode::Auto,
            env: compile_env(wrapper.as_deref(), &backend),
            wrapper,
            backend,
            notices: Vec::new(),
            candidates: Vec::new(),
            probe: None,
            decision_ms: 3,
            port: DEFAULT_PORT.into(),
            fell_back: false,
        }
    }
}

/// Decide, probing for real unless `dry_run` (then candidates are still examined, but no server starts).
pub fn decide(
    global: &Global,
    default_mode: CacheMode,
    host: &HostEnv,
    dry_run: bool,
) -> Result<CacheSetup> {
    let start = Instant::now();
    let mode = global.cache.unwrap_or(default_mode);
    let port = host
        .var("SCCACHE_SERVER_PORT")
        .unwrap_or(DEFAULT_PORT)
        .to_string();
    let mut setup = CacheSetup {
        mode,
        wrapper: None,
        backend: Backend::Disabled,
        env: compile_env(None, &Backend::Disabled),
        notices: Vec::new(),
        candidates: Vec::new(),
        probe: None,
        decision_ms: 0,
        port,
        fell_back: false,
    };
    let result = decide_into(&mut setup, global, host, dry_run);
    setup.decision_ms = start.elapsed().as_millis() as u64;
    result.map(|()| setup)
}

fn decide_into(
    setup: &mut CacheSetup,
    global: &Global,
    host: &HostEnv,
    dry_run: bool,
) -> Result<()> {
    let inherited = inherited_wrapper(host);
    if setup.mode == CacheMode::Off {
        if let Some((name, value)) = inherited {
            setup.notices.push(format!(
                "{name}={value} from the environment is ignored: --cache off builds uncached"
            ));
        }
        return Ok(());
    }

    for (source, path) in candidate_paths(global, host) {
        let verdict = match examine(&path) {
            // A dry run plans the run that installs the pinned copy first.
            Err(_) if dry_run && source == "pinned" => Ok("(installed by this run)".to_string()),
            verdict => verdict,
        };
        setup.candidates.push(Candidate {
            source,
            path,
            verdict,
        });
    }
    let chosen = setup
        .candidates
        .iter()
        .find(|c| c.verdict.is_ok())
        .map(|c| c.path.clone());
    if let Some((name, value)) = inherited {
        let path = host.find_on_path(&value);
        let verdict = match &path {
            Some(p) => examine(p),
            None => Err("not found".to_string()),
        };
        if let Err(why) = &verdict {
            let instead = match &chosen {
                Some(p) => format!("using {} instead", p.display()),
                None => "emptied".to_string(),
            };
            setup.notices.push(format!(
                "{name}={value} from the environment is not a working sccache ({why}); {instead}"
            ));
        }
        setup.candidates.push(Candidate {
            source: name,
            path: path.unwrap_or_else(|| value.into()),
            verdict,
        });
    }
    if let Some(explicit) = setup.candidates.first().filter(|c| c.source == "--sccache")
        && let Err(why) = &explicit.verdict
    {
        let what = format!(
            "--sccache {} is not a working sccache ({why})",
            explicit.path.display()
        );
        if setup.mode == CacheMode::Require {
            bail!("--cache require: {what}");
        }
        setup
            .notices
            .push(format!("{what}; trying the pinned copy and PATH"));
    }
    let Some(wrapper) = chosen else {
        let tried: Vec<String> = setup
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "{} {}: {}",
                    c.source,
                    c.path.display(),
                    c.verdict.as_ref().unwrap_err()
                )
            })
            .collect();
        let tried = if tried.is_empty() {
            "none on PATH, none installed".to_string()
        } else {
            tried.join("; ")
        };
        return step_down(
            setup,
            format!("no working sccache ({tried})"),
            "building without a compiler cache",
        );
    };

    if host.var("CARGO_INCREMENTAL").is_some_and(|v| v != "0") {
        setup.notices.push("CARGO_INCREMENTAL from the environment set to 0: sccache cannot cache incremental builds".into());
    }
    let (wanted, backend_notices) = requested_backend(host);
    setup.notices.extend(backend_notices);

    let dir = local_dir(host);
    if let Backend::Remote { kind, .. } = &wanted {
        match probe(&wrapper, &wanted, &setup.port, dry_run) {
            Ok(ms) => return accept(setup, wrapper, wanted, ms),
            Err(why) => {
                let instead = format!("falling back to local disk {}", dir.display());
                step_down(
                    setup,
                    format!("sccache could not start with the {kind} backend ({why})"),
                    &instead,
                )?;
            }
        }
    }
    let checked = check_writable(&dir);
    let local = Backend::Local { dir };
    match checked.and_then(|()| probe(&wrapper, &local, &setup.port, dry_run)) {
        Ok(ms) => accept(setup, wrapper, local, ms),
        Err(why) => step_down(
            setup,
            format!("the local sccache cache failed ({why})"),
            "building without a compiler cache",
        ),
    }
}

fn accept(setup: &mut CacheSetup, wrapper: PathBuf, backend: Backend, probe_ms: u64) -> Result<()> {
    setup.env = compile_env(Some(&wrapper), &backend);
    setup.wrapper = Some(wrapper);
    setup.backend = backend;
    setup.probe = Some(Ok(probe_ms));
    Ok(())
}

/// One step down the fallback ladder: an error under `require`, a notice otherwise.
fn step_down(setup: &mut CacheSetup, what: String, instead: &str) -> Result<()> {
    if setup.mode == CacheMode::Require {
        bail!("--cache require: {what}");
    }
    setup.probe = Some(Err(what.clone()));
    setup.notices.push(format!("{what}; {instead}"));
    setup.fell_back = true;
    setup.env = compile_env(None, &Backend::Disabled);
    Ok(())
}

/// Where to look for sccache, in order: explicit, the pinned copy, PATH.
pub fn candidate_paths(global: &Global, host: &HostEnv) -> Vec<(&'static str, PathBuf)> {
    let mut paths = Vec::new();
    if let Some(explicit) = &global.sccache {
        let abs = host
            .find_on_path(&explicit.display().to_string())
            .unwrap_or_else(|| explicit.clone());
        paths.push(("--sccache", abs));
    }
    paths.push(("pinned", host.tools.bin("sccache")));
    if let Some(on_path) = host.find_on_path("sccache")
        && !paths.iter().any(|(_, p)| *p == on_path)
    {
        paths.push(("PATH", on_path));
    }
    paths
}

fn inherited_wrapper(host: &HostEnv) -> Option<(&'static str, String)> {
    ["RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER"]
        .into_iter()
        .find_map(|name| {
            host.var(name)
                .filter(|v| !v.is_empty())
                .map(|v| (name, v.to_string()))
        })
}

/// A working sccache answers `--version` quickly with `sccache <version>`.
fn examine(path: &Path) -> Result<String, String> {
    if !path.exists() {
        return Err("not found".into());
    }
    let out =
        bounded::run(path, &["--version"], &[], VERSION_TIMEOUT).map_err(|e| format!("{e:#}"))?;
    match out.stdout.trim().strip_prefix("sccache ") {
        Some(version) if out.ok() => Ok(version.to_string()),
        _ if out.ok() => Err(format!(
            "`--version` printed {:?}, not sccache",
            out.stdout.trim()
        )),
        _ => Err(out.why()),
    }
}

/// The backend asked for by the environment, with a notice for half-configured ones.
pub fn requested_backend(host: &HostEnv) -> (Backend, Vec<String>) {
    let mut notices = Vec::new();
    for (kind, vars) in REMOTE_BACKENDS {
        if let Some(var) = vars
            .iter()
            .find(|v| host.var(v).is_some_and(|x| !x.is_empty()))
        {
            let health = matches!(*kind, "redis" | "memcached")
                .then(|| tcp_address(host.var(var).unwrap()))
                .flatten();
            return (Backend::Remote { kind, health }, notices);
        }
    }
    let gha_enabled = host
        .var("SCCACHE_GHA_ENABLED")
        .is_some_and(|v| matches!(v, "on" | "true" | "1"));
    let missing: Vec<&str> = GHA_VARS
        .iter()
        .copied()
        .filter(|v| host.var(v).is_none_or(str::is_empty))
        .collect();
    if gha_enabled && missing.is_empty() {
        return (
            Backend::Remote {
                kind: "gha",
                health: None,
            },
            notices,
        );
    }
    if gha_enabled || missing.len() < GHA_VARS.len() {
        notices.push(format!(
            "GitHub Actions cache not used: {} missing{}; using local disk",
            missing.join(", "),
            if gha_enabled {
                ""
            } else {
                " and SCCACHE_GHA_ENABLED is not on"
            }
        ));
    }
    (
        Backend::Local {
            dir: local_dir(host),
        },
        notices,
    )
}

/// `SCCACHE_DIR`, else a stable per-user directory (the one CI persists).
pub fn local_dir(host: &HostEnv) -> PathBuf {
    match host.var("SCCACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => tools::user_cache_dir(&host.vars).join("sccache"),
    }
}

/// The environment compile steps get. `RUSTC_WRAPPER` is always set, to the wrapper or to empty,
/// so a stale wrapper from the caller's environment cannot leak into cargo.
pub fn compile_env(wrapper: Option<&Path>, backend: &Backend) -> Vec<(String, Option<String>)> {
    let set = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
    let unset = |k: &str| (k.to_string(), None);
    let wrapper_value = wrapper.map(|p| p.display().to_string()).unwrap_or_default();
    let mut env = vec![
        set("RUSTC_WRAPPER", &wrapper_value),
        unset("CARGO_BUILD_RUSTC_WRAPPER"),
    ];
    match backend {
        Backend::Disabled => {}
        Backend::Local { dir } => {
            env.push(set("CARGO_INCREMENTAL", "0"));
            env.push(set("SCCACHE_DIR", &dir.display().to_string()));
            // A fallen-back build must not reach the remote backend through a restarted server.
            env.extend(
                REMOTE_BACKENDS
                    .iter()
                    .flat_map(|(_, vars)| vars.iter().map(|v| unset(v))),
            );
            env.push(unset("SCCACHE_GHA_ENABLED"));
        }
        Backend::Remote { kind, .. } => {
            env.push(set("CARGO_INCREMENTAL", "0"));
            if *kind == "gha" {
                env.push(set("SCCACHE_GHA_ENABLED", "on"));
            }
        }
    }
    env
}

fn check_writable(dir: &Path) -> Result<(), String> {
    let probe_file = dir.join(".xtask-write-probe");
    fs::create_dir_all(dir)
        .and_then(|()| fs::write(&probe_file, b"ok"))
        .and_then(|()| fs::remove_file(&probe_file))
        .map_err(|e| format!("{} is not writable: {e}", dir.display()))
}

/// Stop whatever server holds our port (it may carry another configuration), start one with the final
/// environment and ask it for stats, all under our deadlines. Returns the time it took.
fn probe(wrapper: &Path, backend: &Backend, port: &str, dry_run: bool) -> Result<u64, String> {
    if dry_run {
        return Ok(0);
    }
    let start = Instant::now();
    let env = compile_env(Some(wrapper), backend);
    let _ = bounded::run(wrapper, &["--stop-server"], &env, VERSION_TIMEOUT);
    kill_servers(port);
    let started = bounded::run(wrapper, &["--start-server"], &env, START_TIMEOUT)
        .map_err(|e| format!("{e:#}"))?;
    if !started.ok() {
        kill_servers(port);
        return Err(started.why());
    }
    let stats = bounded::run(
        wrapper,
        &["--show-stats", "--stats-format=json"],
        &env,
        STATS_TIMEOUT,
    )
    .map_err(|e| format!("{e:#}"))?;
    if !stats.ok() || Stats::parse(&stats.stdout).is_none() {
        kill_servers(port);
        return Err(format!("the server does not answer: {}", stats.why()));
    }
    Ok(start.elapsed().as_millis() as u64)
}

/// Kill sccache servers listening on `port`, found by their environment (a server that failed to reach
/// its backend still runs detached for ~10 s and can hold the port).
pub fn kill_servers(port: &str) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: BTreeMap<&[u8], &[u8]> = environ
            .split(|b| *b == 0)
            .filter_map(|kv| {
                kv.iter()
                    .position(|b| *b == b'=')
                    .map(|i| (&kv[..i], &kv[i + 1..]))
            })
            .collect();
        let server_port = vars
            .get(&b"SCCACHE_SERVER_PORT"[..])
            .copied()
            .unwrap_or(DEFAULT_PORT.as_bytes());
        if vars.get(&b"SCCACHE_START_SERVER"[..]) == Some(&&b"1"[..])
            && server_port == port.as_bytes()
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// `host:port` of a `redis://user:pw@host:port/db`-style endpoint.
pub fn tcp_address(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("tcp", endpoint));
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let default_port = if scheme.starts_with("redis") {
        "6379"
    } else {
        "11211"
    };
    Some(match hostport.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => hostport.to_string(),
        _ => format!("{hostport}:{default_port}"),
    })
}

/// The counters we report, read from `sccache --show-stats --stats-format=json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub compile_requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub not_cacheable: u64,
    pub errors: u64,
}

impl Stats {
    pub fn parse(json: &str) -> Option<Stats> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let s = v.get("stats")?;
        let num = |k: &str| s.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let per_language = |k: &str| {
            s.get(k)
                .and_then(|x| x.get("counts"))
                .and_then(|c| c.as_object())
                .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum())
        };
        Some(Stats {
            compile_requests: num("compile_requests"),
            hits: per_language("cache_hits"),
            misses: per_language("cache_misses"),
            not_cacheable: num("requests_not_cacheable"),
            errors: per_language("cache_errors")
                + num("cache_read_errors")
                + num("cache_write_errors")
                + num("cache_timeouts"),
        })
    }

    /// Counters accumulate over the server's life: a job's share is the difference.
    pub fn since(self, before: Stats) -> Stats {
        Stats {
            compile_requests: self
                .compile_requests
                .saturating_sub(before.compile_requests),
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
            not_cacheable: self.not_cacheable.saturating_sub(before.not_cacheable),
            errors: self.errors.saturating_sub(before.errors),
        }
    }

    /// Hits over cacheable units; `None` when nothing cacheable was compiled.
    pub fn hit_rate(&self) -> Option<f64> {
        let cacheable = self.hits + self.misses;
        (cacheable > 0).then(|| self.hits as f64 / cacheable as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(setup: &[(String, Option<String>)], name: &str) -> Option<Option<String>> {
        setup
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn backend_table() {
        // (environment, backend kind, health address, notice expected)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>, bool);
        let cases: &[Case] = &[
            (&[("HOME", "/h")], "local", None, false),
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_REDIS_ENDPOINT", "redis://:pw@10.0.0.9"),
                ],
                "redis",
                Some("10.0.0.9:6379"),
                false,
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_REDIS_ENDPOINT", "redis://127.0.0.1:7001/0"),
                ],
                "redis",
                Some("127.0.0.1:7001"),
                false,
            ),
            (
                &[("HOME", "/h"), ("SCCACHE_BUCKET", "b")],
                "s3",
                None,
                false,
            ),
            (
                &[("HOME", "/h"), ("SCCACHE_WEBDAV_ENDPOINT", "https://dav")],
                "webdav",
                None,
                false,
            ),
            (
                &[("HOME", "/h"), ("SCCACHE_GCS_BUCKET", "b")],
                "gcs",
                None,
                false,
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_GHA_ENABLED", "on"),
                    ("ACTIONS_RESULTS_URL", "u"),
                    ("ACTIONS_RUNTIME_TOKEN", "t"),
                    ("ACTIONS_CACHE_SERVICE_V2", "on"),
                ],
                "gha",
                None,
                false,
            ),
            // Partly present: local disk, and a notice naming what is missing.
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_GHA_ENABLED", "on"),
                    ("ACTIONS_RESULTS_URL", "u"),
                ],
                "local",
                None,
                true,
            ),
            (
                &[("HOME", "/h"), ("ACTIONS_RUNTIME_TOKEN", "t")],
                "local",
                None,
                true,
            ),
        ];
        for (vars, kind, health, noticed) in cases {
            let (backend, notices) = requested_backend(&HostEnv::fixture(vars));
            assert_eq!(backend.kind(), *kind, "{vars:?}");
            if let Backend::Remote { health: h, .. } = &backend {
                assert_eq!(h.as_deref(), *health, "{vars:?}");
            }
            assert_eq!(!notices.is_empty(), *noticed, "{vars:?}: {notices:?}");
        }
        let (_, notices) = requested_backend(&HostEnv::fixture(&[
            ("SCCACHE_GHA_ENABLED", "on"),
            ("ACTIONS_RESULTS_URL", "u"),
        ]));
        assert!(
            notices[0].contains("ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2 missing"),
            "{notices:?}"
        );
    }

    #[test]
    fn compile_env_table() {
        let wrapper = Path::new("/t/venv/bin/sccache");
        let local = Backend::Local {
            dir: "/h/.cache/sccache".into(),
        };
        let redis = Backend::Remote {
            kind: "redis",
            health: None,
        };
        // (wrapper, backend, RUSTC_WRAPPER, CARGO_INCREMENTAL, SCCACHE_DIR, SCCACHE_REDIS_ENDPOINT)
        let cases = [
            (None, &Backend::Disabled, Some(Some("")), None, None, None),
            (
                Some(wrapper),
                &local,
                Some(Some("/t/venv/bin/sccache")),
                Some(Some("0")),
                Some(Some("/h/.cache/sccache")),
                Some(None),
            ),
            (
                Some(wrapper),
                &redis,
                Some(Some("/t/venv/bin/sccache")),
                Some(Some("0")),
                None,
                None,
            ),
        ];
        for (wrapper, backend, rustc_wrapper, incremental, dir, redis_var) in cases {
            let env = compile_env(wrapper, backend);
            let owned = |o: Option<Option<&str>>| o.map(|v| v.map(str::to_string));
            assert_eq!(
                env_of(&env, "RUSTC_WRAPPER"),
                owned(rustc_wrapper),
                "{backend:?}"
            );
            assert_eq!(
                env_of(&env, "CARGO_INCREMENTAL"),
                owned(incremental),
                "{backend:?}"
            );
            assert_eq!(env_of(&env, "SCCACHE_DIR"), owned(dir), "{backend:?}");
            assert_eq!(
                env_of(&env, "SCCACHE_REDIS_ENDPOINT"),
                owned(redis_var),
                "{backend:?}"
            );
            assert_eq!(env_of(&env, "CARGO_BUILD_RUSTC_WRAPPER"), Some(None));
        }
    }

    #[test]
    fn candidates_in_order_explicit_pinned_path() {
        let host = HostEnv::fixture(&[("PATH", "/nonexistent")]);
        let global = Global {
            dry_run: false,
            cache: None,
            sccache: Some("/opt/sccache".into()),
        };
        let sources: Vec<_> = candidate_paths(&global, &host)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(sources, ["--sccache", "pinned"]);
    }

    #[test]
    fn stats_parse_and_delta() {
        let json = r#"{"stats":{"compile_requests":40,"requests_not_cacheable":12,
            "cache_hits":{"counts":{"Rust":20,"C/C++":1}},"cache_misses":{"counts":{"Rust":7}},
            "cache_errors":{"counts":{}},"cache_read_errors":1,"cache_write_errors":2,"cache_timeouts":0}}"#;
        let after = Stats::parse(json).unwrap();
        assert_eq!(
            after,
            Stats {
                compile_requests: 40,
                hits: 21,
                misses: 7,
                not_cacheable: 12,
                errors: 3
            }
        );
        let before = Stats {
            compile_requests: 10,
            hits: 1,
            misses: 7,
            not_cacheable: 2,
            errors: 0,
        };
        let delta = after.since(before);
        assert_eq!(delta.hit_rate(), Some(1.0));
        assert_eq!(Stats::default().hit_rate(), None);
        assert!(Stats::parse("not json").is_none());
    }
}
