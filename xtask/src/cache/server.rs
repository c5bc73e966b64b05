//! The sccache server: started and asked for stats under our deadlines, known and killed by what the run
//! recorded when it started it (the watch while a build runs: `watch.rs`).

use std::fs::{self, TryLockError};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::stats::Stats;
use crate::env_delta::EnvDelta;
use crate::process::{self, run_with_deadline};

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

/// Stop a leftover server on the run's port (it may carry another configuration), start one with the
/// final environment and ask it for stats, all under our deadlines. Returns the time it took.
pub fn probe(wrapper: &Path, env: &EnvDelta, record: &ServerRecord) -> Result<u64, String> {
    let start = Instant::now();
    stop_leftover(wrapper, env, record);
    record.start(wrapper, env)?;
    let stats = run_with_deadline(wrapper, &STATS_ARGS, env, STATS_TIMEOUT)
        .map_err(|e| format!("{e:#}"))?;
    if !stats.ok() || Stats::parse(&stats.stdout).is_none() {
        record.kill();
        return Err(format!("the server does not answer: {}", stats.why()));
    }
    Ok(start.elapsed().as_millis() as u64)
}

const STATS_ARGS: [&str; 2] = ["--show-stats", "--stats-format=json"];

/// The running server's counters, if it answers in time.
pub fn read_stats(wrapper: &Path, env: &EnvDelta) -> Option<Stats> {
    let out = ask_stats(wrapper, env).ok()?;
    out.ok().then(|| Stats::parse(&out.stdout)).flatten()
}

/// `sccache --show-stats` under the stats deadline, as it ended (a timeout has no exit code).
pub fn ask_stats(wrapper: &Path, env: &EnvDelta) -> anyhow::Result<process::Finished> {
    run_with_deadline(wrapper, &STATS_ARGS, env, STATS_TIMEOUT)
}

/// Asks any server on the record's port to stop (one that answers, whoever started it), then kills the
/// one a run recorded there if it still lives (frozen, or deaf to the request).
fn stop_leftover(wrapper: &Path, env: &EnvDelta, record: &ServerRecord) {
    let mut env = env.clone();
    env.set("SCCACHE_SERVER_PORT", record.port.to_string());
    let _ = run_with_deadline(wrapper, &["--stop-server"], &env, VERSION_TIMEOUT);
    record.kill();
}

/// How far the driver looks for a port of its own, in steps of two (a container build's own server uses
/// the port above a run's).
const OTHER_PORTS: u16 = 16;

/// The port this run's sccache server uses, held for the run's life: the wanted one, unless another live
/// run holds it or a server this run cannot stop listens there; then the next free one, with why.
pub fn claim_port(
    records: &Path,
    wanted: u16,
    wrapper: &Path,
    env: &EnvDelta,
) -> Result<(ServerRecord, Option<String>), String> {
    let record = ServerRecord::new(records, wanted);
    let why = match record.claim_run() {
        Err(why) => why,
        Ok(()) => {
            stop_leftover(wrapper, env, &record);
            match record.port_frees(Duration::from_secs(1)) {
                true => return Ok((record, None)),
                false => {
                    record.release_run();
                    "held by a server this run cannot stop".to_string()
                }
            }
        }
    };
    // Elsewhere only a free port is taken: an unknown server there may be someone else's.
    for step in 1..=OTHER_PORTS {
        let Some(port) = wanted.checked_add(2 * step) else {
            break;
        };
        let other = ServerRecord::new(records, port);
        if other.claim_run().is_ok() {
            other.kill();
            if other.port_frees(Duration::ZERO) {
                return Ok((other, Some(format!("{wanted} is {why}"))));
            }
            other.release_run();
        }
    }
    Err(format!(
        "port {wanted} is {why}, and no port of {} to {} is free",
        wanted + 2,
        wanted.saturating_add(2 * OTHER_PORTS)
    ))
}

/// The sccache server a run starts on a port, known by what the run recorded when it started it, in a
/// per-user directory for the port (portable: file locks, which the OS drops with their last holder):
/// - `run.lock`, locked by the live run that uses the port;
/// - `server.log`, the server's output, locked by the server itself for its whole life (it inherits the
///   locked file as its stdout);
/// - `server.pid`, its pid, which is also its process group (it runs in a group of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRecord {
    dir: PathBuf,
    pub port: u16,
}

/// The run locks this process holds: released when it exits, however it exits.
static RUN_LOCKS: Mutex<Vec<(u16, fs::File)>> = Mutex::new(Vec::new());

impl ServerRecord {
    pub fn new(records: &Path, port: u16) -> ServerRecord {
        ServerRecord {
            dir: records.join(port.to_string()),
            port,
        }
    }

    /// Locks the port for this run; `Err(why not)` when another live run holds it.
    fn claim_run(&self) -> Result<(), String> {
        let held = |e: std::io::Error| format!("not usable ({e})");
        fs::create_dir_all(&self.dir).map_err(held)?;
        let lock = fs::File::create(self.dir.join("run.lock")).map_err(held)?;
        match lock.try_lock() {
            Ok(()) => {
                RUN_LOCKS.lock().unwrap().push((self.port, lock));
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err("another live run's".into()),
            Err(TryLockError::Error(e)) => Err(held(e)),
        }
    }

    fn release_run(&self) {
        RUN_LOCKS
            .lock()
            .unwrap()
            .retain(|(port, _)| *port != self.port);
    }

    /// The process group of the server recorded here, while it lives (a pid alone could be reused).
    pub fn live_server(&self) -> Option<u32> {
        let log = fs::File::open(self.dir.join("server.log")).ok()?;
        match log.try_lock() {
            Err(TryLockError::WouldBlock) => fs::read_to_string(self.dir.join("server.pid"))
                .ok()
                .and_then(|pid| pid.trim().parse().ok()),
            _ => None,
        }
    }

    /// Kills the recorded server and all it started, if it lives, and waits (a second at most) for it
    /// to be gone.
    pub fn kill(&self) {
        let Some(pgid) = self.live_server() else {
            return;
        };
        process::kill_group(pgid);
        let start = Instant::now();
        while self.live_server().is_some() && start.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether nothing listens on the port within `patience` (a stopped server takes a moment to close).
    fn port_frees(&self, patience: Duration) -> bool {
        let start = Instant::now();
        loop {
            if TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if start.elapsed() >= patience {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts sccache's server in the foreground, in a group of its own, with its output in the locked
    /// log, and waits until it listens (it binds the port only after its backend answered) or fails.
    fn start(&self, wrapper: &Path, env: &EnvDelta) -> Result<(), String> {
        let failed = |e: std::io::Error| format!("cannot start {}: {e}", wrapper.display());
        let log_path = self.dir.join("server.log");
        let log = fs::File::create(&log_path).map_err(failed)?;
        if log.try_lock().is_err() {
            return Err(format!(
                "the server recorded on port {} still runs",
                self.port
            ));
        }
        let mut cmd = Command::new(wrapper);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(failed)?)
            .stderr(log);
        env.apply(&mut cmd);
        cmd.env("SCCACHE_START_SERVER", "1")
            .env("SCCACHE_NO_DAEMON", "1")
            .env("SCCACHE_SERVER_PORT", self.port.to_string());
        let mut server = process::spawn_in_own_group(&mut cmd).map_err(failed)?;
        // Dropped here, the driver's copies of the log leave the server the only holder of its lock.
        drop(cmd);
        fs::write(self.dir.join("server.pid"), server.id().to_string()).map_err(failed)?;
        let start = Instant::now();
        let address = (std::net::Ipv4Addr::LOCALHOST, self.port).into();
        loop {
            if let Ok(Some(status)) = server.try_wait() {
                let exited = process::Finished {
                    code: Some(status.code().unwrap_or(-1)),
                    stdout: String::new(),
                    stderr: fs::read_to_string(&log_path).unwrap_or_default(),
                    elapsed: start.elapsed(),
                };
                return Err(exited.why());
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if start.elapsed() >= START_TIMEOUT {
                self.kill();
                let _ = server.wait();
                return Err(format!(
                    "no answer within {} ms",
                    start.elapsed().as_millis()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record knows its server exactly while the process holding the log lives (here a `sleep`
    /// standing in for sccache, started as the driver starts the server): killed, its pid is no longer
    /// trusted, whatever process may get that pid next.
    #[test]
    fn a_recorded_server_lives_as_long_as_its_locked_log() {
        let records = std::env::temp_dir().join(format!("xtask-records-{}", std::process::id()));
        let record = ServerRecord::new(&records, 1);
        fs::create_dir_all(&record.dir).unwrap();
        assert_eq!(record.live_server(), None);
        let log = fs::File::create(record.dir.join("server.log")).unwrap();
        log.try_lock().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("60").stdout(log);
        let mut sleeper = process::spawn_in_own_group(&mut cmd).unwrap();
        drop(cmd);
        fs::write(record.dir.join("server.pid"), sleeper.id().to_string()).unwrap();
        assert_eq!(record.live_server(), Some(sleeper.id()));
        record.kill();
        let _ = sleeper.wait();
        assert_eq!(record.live_server(), None);
        let _ = fs::remove_dir_all(&records);
    }

    /// A port whose run lock another run holds is that run's (the lock is per open file, so a second
    /// claim in one process stands for another process).
    #[test]
    fn a_held_run_lock_is_another_live_runs() {
        let records = std::env::temp_dir().join(format!("xtask-runs-{}", std::process::id()));
        let record = ServerRecord::new(&records, 2);
        assert_eq!(record.claim_run(), Ok(()));
        assert_eq!(record.claim_run(), Err("another live run's".to_string()));
        record.release_run();
        assert_eq!(record.claim_run(), Ok(()));
        record.release_run();
        let _ = fs::remove_dir_all(&records);
    }
}
