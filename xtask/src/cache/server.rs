//! The sccache server: started and asked for stats under our deadlines, found and killed by its port, and
//! the backend watched while a build runs (a backend that dies mid-build makes sccache hang for minutes).

use std::collections::BTreeMap;
use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

use super::backend::{Backend, compile_env};
use super::stats::Stats;
use crate::env_delta::EnvDelta;
use crate::process::run_with_deadline;

/// `sccache --version` answers in a few ms; anything slower is a broken or hanging wrapper.
pub const VERSION_TIMEOUT: Duration = Duration::from_millis(800);
/// sccache itself waits 10 s for a dead backend; we decide well before that.
const START_TIMEOUT: Duration = Duration::from_millis(1500);
const STATS_TIMEOUT: Duration = Duration::from_millis(2000);
pub const DEFAULT_PORT: &str = "4226";

/// A working sccache answers `--version` quickly with `sccache <version>`.
pub fn examine(path: &Path) -> Result<String, String> {
    if !path.exists() {
        return Err("not found".into());
    }
    let out = run_with_deadline(path, &["--version"], &EnvDelta::new(), VERSION_TIMEOUT)
        .map_err(|e| format!("{e:#}"))?;
    match out.stdout.trim().strip_prefix("sccache ") {
        Some(version) if out.ok() => Ok(version.to_string()),
        _ if out.ok() => Err(format!(
            "`--version` printed {:?}, not sccache",
            out.stdout.trim()
        )),
        _ => Err(out.why()),
    }
}

/// Stop whatever server holds our port (it may carry another configuration), start one with the final
/// environment and ask it for stats, all under our deadlines. Returns the time it took.
pub fn probe(wrapper: &Path, backend: &Backend, port: &str) -> Result<u64, String> {
    let start = Instant::now();
    let env = compile_env(Some(wrapper), backend);
    let _ = run_with_deadline(wrapper, &["--stop-server"], &env, VERSION_TIMEOUT);
    kill_servers(port);
    let started = run_with_deadline(wrapper, &["--start-server"], &env, START_TIMEOUT)
        .map_err(|e| format!("{e:#}"))?;
    if !started.ok() {
        kill_servers(port);
        return Err(started.why());
    }
    let stats = run_with_deadline(wrapper, &STATS_ARGS, &env, STATS_TIMEOUT)
        .map_err(|e| format!("{e:#}"))?;
    if !stats.ok() || Stats::parse(&stats.stdout).is_none() {
        kill_servers(port);
        return Err(format!("the server does not answer: {}", stats.why()));
    }
    Ok(start.elapsed().as_millis() as u64)
}

const STATS_ARGS: [&str; 2] = ["--show-stats", "--stats-format=json"];

/// The running server's counters, if it answers in time.
pub fn read_stats(wrapper: &Path, env: &EnvDelta) -> Option<Stats> {
    let out = run_with_deadline(wrapper, &STATS_ARGS, env, STATS_TIMEOUT).ok()?;
    out.ok().then(|| Stats::parse(&out.stdout)).flatten()
}

/// Kill sccache servers listening on `port`, found by their environment (a server that failed to reach
/// its backend still runs detached for ~10 s and can hold the port).
pub fn kill_servers(port: &str) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| is_server_on(&e.path(), port))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if let (false, Ok(sh)) = (pids.is_empty(), Shell::new()) {
        let _ = cmd!(sh, "kill -KILL {pids...}")
            .quiet()
            .ignore_status()
            .run();
    }
}

/// Whether the process at `/proc/<pid>` is an sccache server for `port`.
fn is_server_on(proc_dir: &Path, port: &str) -> bool {
    let Ok(environ) = fs::read(proc_dir.join("environ")) else {
        return false;
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
    vars.get(&b"SCCACHE_START_SERVER"[..]) == Some(&&b"1"[..]) && server_port == port.as_bytes()
}

/// Asked about once a second while a compile step runs against a remote backend.
pub struct BackendWatch {
    addr: String,
    port: String,
    failures: u32,
}

impl BackendWatch {
    pub fn new(addr: String, port: String) -> BackendWatch {
        BackendWatch {
            addr,
            port,
            failures: 0,
        }
    }

    /// `false` once the backend missed two checks in a row; then the server is already killed, so the
    /// compiles stuck on it fail fast.
    pub fn still_answering(&mut self) -> bool {
        self.failures = if reachable(&self.addr) {
            0
        } else {
            self.failures + 1
        };
        if self.failures >= 2 {
            kill_servers(&self.port);
            return false;
        }
        true
    }
}

fn reachable(addr: &str) -> bool {
    let Ok(mut addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}
