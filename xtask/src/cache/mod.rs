//! The cache decision: which sccache, which backend, and whether it really works, decided once, before
//! any build step, under the driver's own deadlines. Every job consumes the resulting `CacheSetup`.
//!
//! `backend` reads the environment (the one owner of `RUSTC_WRAPPER`/`SCCACHE_*`), `server` controls
//! and watches the sccache server, `stats` reads its counters. This file is the fallback ladder.

pub mod backend;
pub mod dist;
pub mod dist_probe;
pub mod dist_watch;
pub mod server;
pub mod stats;
pub mod watch;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};

pub use backend::Backend;
pub use stats::Stats;

use crate::env_delta::EnvDelta;
use crate::flags::{CacheMode, Global};
use crate::host::HostEnv;

/// Where an sccache candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--sccache` / `XTASK_SCCACHE`.
    Flag,
    /// The copy the driver installed from its pins.
    Pinned,
    Path,
    /// A wrapper variable of the caller's environment (examined, never trusted).
    Inherited(&'static str),
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Flag => "--sccache",
            Source::Pinned => "pinned",
            Source::Path => "PATH",
            Source::Inherited(var) => var,
        }
    }
}

/// One sccache the driver looked at, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
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
    /// Exactly what compile steps add to their environment.
    pub env: EnvDelta,
    /// One line per step down; printed as `::warning::` on GitHub Actions.
    pub notices: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// The server probe: `Ok(ms)` or `Err(why)`; `None` when no probe ran.
    pub probe: Option<Result<u64, String>>,
    pub decision_ms: u64,
    /// The port of the host's sccache server, and why it is not the one asked for, if it is not.
    pub port: String,
    pub port_moved: Option<String>,
    /// The server this run started, by its record (none in a dry run or without sccache).
    pub server: Option<server::ServerRecord>,
    /// The cache in use is not the one asked for.
    pub fell_back: bool,
    /// The scheduler asked for, and distribution if it was decided on.
    pub dist_asked: Option<String>,
    pub dist: Option<dist_probe::Dist>,
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
                "cache: sccache {} · backend {}{} · port {}{} · mode {} · decided in {} ms",
                path.display(),
                self.backend.describe(),
                self.dist_label(),
                self.port,
                (self.port_moved.as_ref()).map_or(String::new(), |why| format!(" ({why})")),
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

    /// ` · dist URL (n servers, m CPUs)`, ` · dist off` when asked for and not used, or nothing.
    pub fn dist_label(&self) -> String {
        match (&self.dist, &self.dist_asked) {
            (Some(d), _) => format!(
                " · dist {} ({} servers, {} CPUs)",
                d.scheduler, d.servers, d.cpus
            ),
            (None, Some(url)) => format!(" · dist off ({url} not used)"),
            (None, None) => String::new(),
        }
    }

    pub fn stats(&self) -> Option<Stats> {
        server::read_stats(self.wrapper.as_ref()?, &self.env)
    }

    /// The server this run started, while it lives: its process group.
    pub fn live_server(&self) -> Option<u32> {
        self.server.as_ref()?.live_server()
    }

    /// The server's counters and whether the server this run started answered them: a job's counters
    /// are only its own when that server answered before and after it.
    pub fn server_snapshot(&self) -> Option<(Stats, Option<u32>)> {
        let stats = self.stats()?;
        Some((stats, self.live_server()))
    }

    /// A watch for compile steps served by the sccache server on `port`, whenever sccache is on: the
    /// server itself, and the backend when it is remote and can be checked.
    pub fn watch(&self, port: &str) -> Option<watch::CacheWatch> {
        let wrapper = self.wrapper.clone()?;
        let endpoint = match &self.backend {
            Backend::Remote {
                health: Some(addr), ..
            } => Some(addr.clone()),
            _ => None,
        };
        let mut env = self.env.clone();
        env.set("SCCACHE_SERVER_PORT", port);
        let read_only = self.mode == CacheMode::Read;
        let server = (self.server.clone()).filter(|s| s.port.to_string() == port);
        Some(watch::CacheWatch::new(
            endpoint, server, wrapper, env, read_only,
        ))
    }

    /// A watch on the scheduler and the build servers while compiles are distributed.
    pub fn dist_watch(&self, port: &str) -> Option<dist_watch::DistWatch> {
        let dist = self.dist.as_ref()?;
        let mut env = self.env.clone();
        env.set("SCCACHE_SERVER_PORT", port);
        let server = (self.server.clone()).filter(|s| s.port.to_string() == port);
        let wrapper = self.wrapper.clone()?;
        Some(dist_watch::DistWatch::new(
            &dist.scheduler,
            wrapper,
            env,
            server,
        ))
    }

    fn new(mode: CacheMode, port: String) -> CacheSetup {
        CacheSetup {
            mode,
            wrapper: None,
            backend: Backend::Disabled,
            env: uncached_env(),
            notices: Vec::new(),
            candidates: Vec::new(),
            probe: None,
            decision_ms: 0,
            port,
            port_moved: None,
            server: None,
            fell_back: false,
            dist_asked: None,
            dist: None,
        }
    }
}

/// What compile steps get when they build without a cache (also after a backend died mid-build).
pub fn uncached_env() -> EnvDelta {
    backend::compile_env(None, &Backend::Disabled)
}

#[cfg(test)]
impl CacheSetup {
    /// A decided setup, for plan tests.
    pub fn fixture(wrapper: Option<&str>, backend: Backend) -> CacheSetup {
        let wrapper = wrapper.map(PathBuf::from);
        CacheSetup {
            env: backend::compile_env(wrapper.as_deref(), &backend),
            wrapper,
            backend,
            decision_ms: 3,
            ..CacheSetup::new(CacheMode::Auto, server::DEFAULT_PORT.into())
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
    let port = host
        .var("SCCACHE_SERVER_PORT")
        .unwrap_or(server::DEFAULT_PORT);
    let mut setup = CacheSetup::new(global.cache.unwrap_or(default_mode), port.to_string());
    let result = match setup.mode {
        CacheMode::Off => {
            if let Some((name, value)) = backend::inherited_wrapper(host) {
                setup.notices.push(format!(
                    "{name}={value} from the environment is ignored: --cache off builds uncached"
                ));
            }
            Ok(())
        }
        _ => choose_wrapper(&mut setup, global, host, dry_run).and_then(|wrapper| match wrapper {
            Some(wrapper) => {
                let dist = choose_backend(&mut setup, wrapper.clone(), host, global, dry_run)?;
                match dist {
                    Some(plan) if setup.wrapper.is_some() => {
                        dist_probe::confirm(&mut setup, plan, &wrapper, dry_run)
                    }
                    _ => Ok(()),
                }
            }
            None => Ok(()),
        }),
    };
    setup.decision_ms = start.elapsed().as_millis() as u64;
    result.map(|()| setup)
}

/// The first working candidate; every candidate and the inherited wrapper are recorded with a verdict.
fn choose_wrapper(
    setup: &mut CacheSetup,
    global: &Global,
    host: &HostEnv,
    dry_run: bool,
) -> Result<Option<PathBuf>> {
    for (source, path) in candidate_paths(global, host) {
        let verdict = match server::examine(&path) {
            // A dry run plans the run that installs the pinned copy first.
            Err(_) if dry_run && source == Source::Pinned => Ok("(installed by this run)".into()),
            verdict => verdict,
        };
        setup.candidates.push(Candidate {
            source,
            path,
            verdict,
        });
    }
    let chosen = setup.candidates.iter().find(|c| c.verdict.is_ok());
    let chosen = chosen.map(|c| c.path.clone());
    examine_inherited(setup, host, chosen.as_deref());
    if let Some(flag) = setup
        .candidates
        .first()
        .filter(|c| c.source == Source::Flag)
        && let Err(why) = &flag.verdict
    {
        let what = format!(
            "--sccache {} is not a working sccache ({why})",
            flag.path.display()
        );
        if setup.mode == CacheMode::Require {
            bail!("--cache require: {what}");
        }
        setup
            .notices
            .push(format!("{what}; trying the pinned copy and PATH"));
    }
    if chosen.is_none() {
        let tried: Vec<String> = (setup.candidates.iter())
            .filter_map(|c| Some((c, c.verdict.as_ref().err()?)))
            .map(|(c, why)| format!("{} {}: {why}", c.source.label(), c.path.display()))
            .collect();
        let tried = match tried.is_empty() {
            true => "none on PATH, none installed".to_string(),
            false => tried.join("; "),
        };
        let what = format!("no working sccache ({tried})");
        fall_back(setup, what, "building without a compiler cache")?;
    }
    Ok(chosen)
}

/// An inherited wrapper is examined, not trusted: a broken one gets a notice, and children never see it.
fn examine_inherited(setup: &mut CacheSetup, host: &HostEnv, chosen: Option<&Path>) {
    let Some((name, value)) = backend::inherited_wrapper(host) else {
        return;
    };
    let path = host.find_on_path(&value);
    let verdict = match &path {
        Some(p) => server::examine(p),
        None => Err("not found".to_string()),
    };
    if let Err(why) = &verdict {
        let instead = match chosen {
            Some(p) => format!("using {} instead", p.display()),
            None => "emptied".to_string(),
        };
        setup.notices.push(format!(
            "{name}={value} from the environment is not a working sccache ({why}); {instead}"
        ));
    }
    setup.candidates.push(Candidate {
        source: Source::Inherited(name),
        path: path.unwrap_or_else(|| value.into()),
        verdict,
    });
}

/// The requested backend if its server starts, else local disk, else no cache.
fn choose_backend(
    setup: &mut CacheSetup,
    wrapper: PathBuf,
    host: &HostEnv,
    global: &Global,
    dry_run: bool,
) -> Result<Option<dist_probe::Prepared>> {
    if host.var("CARGO_INCREMENTAL").is_some_and(|v| v != "0") {
        setup.notices.push("CARGO_INCREMENTAL from the environment set to 0: sccache cannot cache incremental builds".into());
    }
    let (wanted, backend_notices) = backend::requested_backend(host);
    setup.notices.extend(backend_notices);
    if !dry_run {
        let Some(record) = claimed_port(setup, &wrapper, host)? else {
            return Ok(None);
        };
        setup.port = record.port.to_string();
        setup.server = Some(record);
    }
    let dist = dist_probe::prepare(setup, &wrapper, host, global.dist.as_deref(), dry_run)?;
    let conf = dist.as_ref().map(dist_probe::Prepared::conf_env);
    let port = setup.port.clone();
    let read_only = setup.mode == CacheMode::Read;
    let env_for = |backend: &Backend| {
        let mut env = backend::compile_env(Some(&wrapper), backend);
        env.set("SCCACHE_SERVER_PORT", &port);
        env.extend(conf.as_ref().unwrap_or(&EnvDelta::new()));
        if read_only {
            env.extend(&backend::read_only_env(backend));
        }
        env
    };
    let record = setup.server.clone();
    let probe = |backend: &Backend| match &record {
        None => Ok(0),
        Some(record) => server::probe(&wrapper, &env_for(backend), record),
    };
    let dir = backend::local_dir(host);
    if let Backend::Remote { kind, .. } = &wanted {
        match probe(&wanted) {
            Ok(ms) => {
                let env = env_for(&wanted);
                accept(setup, wrapper, wanted, env, ms);
                return Ok(dist);
            }
            Err(why) => {
                let what = format!(
                    "sccache could not start with the {} backend ({why})",
                    kind.name()
                );
                let instead = format!("falling back to local disk {}", dir.display());
                fall_back(setup, what, &instead)?;
            }
        }
    }
    let local = Backend::Local { dir: dir.clone() };
    match check_writable(&dir).and_then(|()| probe(&local)) {
        Ok(ms) => {
            let env = env_for(&local);
            accept(setup, wrapper, local, env, ms);
            Ok(dist)
        }
        Err(why) => fall_back(
            setup,
            format!("the local sccache cache failed ({why})"),
            "building without a compiler cache",
        )
        .map(|()| None),
    }
}

/// The port for this run's server (`None` after falling back: no port is free).
fn claimed_port(
    setup: &mut CacheSetup,
    wrapper: &Path,
    host: &HostEnv,
) -> Result<Option<server::ServerRecord>> {
    let wanted = match setup.port.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => {
            let what = format!("SCCACHE_SERVER_PORT={} is not a port", setup.port);
            fall_back(setup, what, "building without a compiler cache")?;
            return Ok(None);
        }
    };
    let records = host.temp.join("sccache-servers");
    let env = backend::compile_env(Some(wrapper), &Backend::Disabled);
    match server::claim_port(&records, wanted, wrapper, &env) {
        Ok((record, moved)) => {
            setup.port_moved = moved;
            Ok(Some(record))
        }
        Err(why) => {
            let what = format!("no port for the sccache server ({why})");
            fall_back(setup, what, "building without a compiler cache")?;
            Ok(None)
        }
    }
}

fn accept(setup: &mut CacheSetup, wrapper: PathBuf, backend: Backend, env: EnvDelta, ms: u64) {
    setup.env = env;
    setup.wrapper = Some(wrapper);
    setup.backend = backend;
    setup.probe = Some(Ok(ms));
}

/// One rung down the fallback ladder: an error under `require`, a notice otherwise.
fn fall_back(setup: &mut CacheSetup, what: String, instead: &str) -> Result<()> {
    if setup.mode == CacheMode::Require {
        bail!("--cache require: {what}");
    }
    setup.probe = Some(Err(what.clone()));
    setup.notices.push(format!("{what}; {instead}"));
    setup.fell_back = true;
    setup.env = uncached_env();
    Ok(())
}

/// Where to look for sccache, in order: explicit, the pinned copy, PATH.
pub fn candidate_paths(global: &Global, host: &HostEnv) -> Vec<(Source, PathBuf)> {
    let mut paths = Vec::new();
    if let Some(explicit) = &global.sccache {
        let abs = host
            .find_on_path(&explicit.display().to_string())
            .unwrap_or_else(|| explicit.clone());
        paths.push((Source::Flag, abs));
    }
    paths.push((Source::Pinned, host.tools.bin("sccache")));
    if let Some(on_path) = host.find_on_path("sccache")
        && !paths.iter().any(|(_, p)| *p == on_path)
    {
        paths.push((Source::Path, on_path));
    }
    paths
}

fn check_writable(dir: &Path) -> Result<(), String> {
    let probe_file = dir.join(".xtask-write-probe");
    fs::create_dir_all(dir)
        .and_then(|()| fs::write(&probe_file, b"ok"))
        .and_then(|()| fs::remove_file(&probe_file))
        .map_err(|e| format!("{} is not writable: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_in_order_explicit_pinned_path() {
        let host = HostEnv::fixture(&[("PATH", "/nonexistent")]);
        let global = Global {
            dry_run: false,
            cache: None,
            sccache: Some("/opt/sccache".into()),
            dist: None,
        };
        let sources: Vec<_> = candidate_paths(&global, &host)
            .into_iter()
            .map(|(s, _)| s.label())
            .collect();
        assert_eq!(sources, ["--sccache", "pinned"]);
    }

    /// An sccache on PATH is the last candidate.
    #[test]
    fn an_sccache_on_path_is_a_candidate() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("xtask-path-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let on_path = dir.join("sccache");
        fs::write(&on_path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&on_path, fs::Permissions::from_mode(0o755)).unwrap();
        let global = Global {
            dry_run: false,
            cache: None,
            sccache: None,
            dist: None,
        };
        let host = HostEnv::fixture(&[("PATH", &dir.display().to_string())]);
        let found = candidate_paths(&global, &host);
        assert_eq!(found.last(), Some(&(Source::Path, on_path.clone())));
        let _ = fs::remove_dir_all(&dir);
    }
}
