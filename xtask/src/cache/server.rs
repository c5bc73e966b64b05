//! The sccache server: started and asked for stats under our deadlines, known and killed by what the run
//! recorded when it started it, and
//! the server and its backend watched while a build runs (a backend that dies mid-build makes sccache hang
//! for minutes, a frozen server for ever).

use std::fs::{self, TryLockError};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::backend::{Endpoint, Protocol};
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
    let out = run_with_deadline(wrapper, &STATS_ARGS, env, STATS_TIMEOUT).ok()?;
    out.ok().then(|| Stats::parse(&out.stdout)).flatten()
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

/// Asked about once a second while a compile step runs with sccache.
pub struct CacheWatch {
    /// The remote backend, asked in its own protocol; none for local disk.
    endpoint: Option<Endpoint>,
    /// The server the run started, killed when judged broken (a container's own is not recorded: the
    /// container goes with the step).
    server: Option<ServerRecord>,
    backend_misses: u32,
    server_misses: u32,
    /// How sccache's own counters are read, and what they said when the step began.
    wrapper: PathBuf,
    env: EnvDelta,
    /// The first counters read (a container's server starts after the watch).
    before: Option<Stats>,
    /// `--cache read`: sccache counts each write it refuses as a failed write; those are expected.
    read_only: bool,
}

/// What broke the cache in the middle of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Refused or no answer, twice in a row.
    BackendStoppedAnswering,
    /// Answers, but sccache fails its reads and writes.
    BackendFailing,
    /// The sccache server itself accepts and never answers (frozen, deadlocked), three times in a row:
    /// its compiles would wait forever.
    ServerStoppedAnswering,
    /// The sccache server died while it answered a request, which then failed (seen by the pipeline
    /// when a compile step fails, not by the watch).
    ServerDied,
}

impl Broken {
    /// What broke, in words: `what(..)` and what happens next make the one line the user sees.
    pub fn what(self, backend: &str, step: &str) -> String {
        match self {
            Broken::BackendStoppedAnswering => {
                format!("the {backend} cache backend stopped answering during the build")
            }
            Broken::BackendFailing => {
                format!("the {backend} cache backend answered with errors during the build")
            }
            Broken::ServerStoppedAnswering => {
                "the sccache server stopped answering during the build".into()
            }
            Broken::ServerDied => format!("the sccache server died during `{step}`"),
        }
    }

    /// The notice of a build that goes on uncached.
    pub fn notice(self, backend: &str, step: &str) -> String {
        let next = match self {
            Broken::BackendStoppedAnswering | Broken::BackendFailing => "stopping sccache and ",
            Broken::ServerStoppedAnswering => "stopping it and ",
            Broken::ServerDied => "",
        };
        format!("{}; {next}finishing uncached", self.what(backend, step))
    }

    /// What the report's mode adds.
    pub fn report_label(self) -> &'static str {
        match self {
            Broken::BackendStoppedAnswering | Broken::BackendFailing => "backend died mid-build",
            Broken::ServerStoppedAnswering | Broken::ServerDied => {
                "sccache server failed mid-build"
            }
        }
    }
}

impl CacheWatch {
    pub fn new(
        endpoint: Option<Endpoint>,
        server: Option<ServerRecord>,
        wrapper: PathBuf,
        env: EnvDelta,
        read_only: bool,
    ) -> CacheWatch {
        // The counters at the start only judge a remote backend's errors.
        let before = endpoint.as_ref().and_then(|_| read_stats(&wrapper, &env));
        CacheWatch {
            endpoint,
            server,
            backend_misses: 0,
            server_misses: 0,
            wrapper,
            env,
            before,
            read_only,
        }
    }

    /// `Err(what broke)` once the backend or the server is judged broken; then the server is already
    /// killed, so the compiles stuck on it fail fast.
    pub fn check(&mut self) -> Result<(), Broken> {
        if let Some(endpoint) = &self.endpoint {
            self.backend_misses = match answers(endpoint) {
                true => 0,
                false => self.backend_misses + 1,
            };
        }
        // Only a timeout counts: with no server, sccache answers zeros at once (and starts none).
        let asked = run_with_deadline(&self.wrapper, &STATS_ARGS, &self.env, STATS_TIMEOUT).ok();
        self.server_misses = match asked.as_ref().is_some_and(|out| out.code.is_none()) {
            true => self.server_misses + 1,
            false => 0,
        };
        let now = asked
            .filter(|out| out.ok())
            .and_then(|out| Stats::parse(&out.stdout));
        // Broken while answering (credentials revoked, a bucket gone): sccache counts failed reads and
        // writes as misses and goes on, paying for every failed upload. Stopped once failures are at
        // least as many as the writes that worked in this step (a blip in a long build is not).
        self.before = self.before.or(now);
        let step = now.zip(self.before).map(|(now, before)| now.since(before));
        let failed = |s: Stats| match self.read_only {
            true => s.errors - s.write_errors,
            false => s.errors,
        };
        let failing =
            self.endpoint.is_some() && step.is_some_and(|s| failed(s) > 0 && failed(s) >= s.writes);
        // A backend that does not answer now is judged by the next question, not by its errors.
        let verdict = match (self.backend_misses, failing, self.server_misses) {
            (2.., _, _) => Err(Broken::BackendStoppedAnswering),
            (0, true, _) => Err(Broken::BackendFailing),
            (_, _, 3..) => Err(Broken::ServerStoppedAnswering),
            _ => Ok(()),
        };
        if let (Err(_), Some(server)) = (verdict, &self.server) {
            server.kill();
        }
        verdict
    }
}

const CONNECT_DEADLINE: Duration = Duration::from_millis(500);
const ANSWER_DEADLINE: Duration = Duration::from_millis(1500);

/// Asks the backend something in its own protocol and waits, under a deadline, for any answer: an
/// error answer (`-NOAUTH`, `403`, a TLS alert) still proves the server is alive.
pub fn answers(endpoint: &Endpoint) -> bool {
    let host = endpoint.addr.rsplit_once(':').map_or("", |(h, _)| h);
    let question = match endpoint.protocol {
        Protocol::Redis => b"PING\r\n".to_vec(),
        Protocol::Memcached => b"version\r\n".to_vec(),
        Protocol::Http => {
            format!("HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
        }
        Protocol::Tls => CLIENT_HELLO.to_vec(),
    };
    let Ok(addrs) = endpoint.addr.to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|addr| {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, CONNECT_DEADLINE) else {
            return false;
        };
        let mut first = [0u8; 1];
        stream.set_read_timeout(Some(ANSWER_DEADLINE)).is_ok()
            && stream.set_write_timeout(Some(ANSWER_DEADLINE)).is_ok()
            && stream.write_all(&question).is_ok()
            && matches!(stream.read(&mut first), Ok(1))
    })
}

/// A minimal TLS 1.2 ClientHello (three AES-GCM suites, no extensions). Servers answer it with a
/// ServerHello or an alert; either proves they are alive.
const CLIENT_HELLO: [u8; 54] = [
    0x16, 0x03, 0x01, 0x00, 0x31, // record: handshake, 49 bytes
    0x01, 0x00, 0x00, 0x2d, // ClientHello, 45 bytes
    0x03, 0x03, // TLS 1.2
    0x78, 0x74, 0x61, 0x73, 0x6b, 0x2d, 0x77, 0x61, 0x74, 0x63, 0x68, 0x2d, 0x62, 0x61, 0x63,
    0x6b, //
    0x65, 0x6e, 0x64, 0x2d, 0x6c, 0x69, 0x76, 0x65, 0x6e, 0x65, 0x73, 0x73, 0x2d, 0x70, 0x72,
    0x6f, // random
    0x00, // no session id
    0x00, 0x06, 0x13, 0x01, 0xc0, 0x2f, 0xc0, 0x2b, // cipher suites
    0x01, 0x00, // no compression
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;
    use std::time::Instant;

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

    fn local(listener: &TcpListener, protocol: Protocol) -> Endpoint {
        let addr = listener.local_addr().unwrap().to_string();
        Endpoint { addr, protocol }
    }

    /// A server that answers (even with an error) is alive; one that accepts connections and never
    /// answers (frozen) or refuses them is not, and the question returns within its deadline.
    #[test]
    fn only_an_answer_counts_as_alive() {
        let answering = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = local(&answering, Protocol::Redis);
        let server = thread::spawn(move || {
            let (mut conn, _) = answering.accept().unwrap();
            let mut question = [0u8; 6];
            conn.read_exact(&mut question).unwrap();
            conn.write_all(b"-NOAUTH Authentication required.\r\n")
                .unwrap();
            question
        });
        assert!(answers(&endpoint));
        assert_eq!(&server.join().unwrap(), b"PING\r\n");

        // The kernel accepts connections into the backlog; nobody ever reads or answers.
        let frozen = TcpListener::bind("127.0.0.1:0").unwrap();
        let protocols = [
            Protocol::Redis,
            Protocol::Memcached,
            Protocol::Http,
            Protocol::Tls,
        ];
        thread::scope(|scope| {
            let asked: Vec<_> = (protocols.iter())
                .map(|&protocol| {
                    let endpoint = local(&frozen, protocol);
                    scope.spawn(move || {
                        let start = Instant::now();
                        (protocol, answers(&endpoint), start.elapsed())
                    })
                })
                .collect();
            for asked in asked {
                let (protocol, answered, took) = asked.join().unwrap();
                assert!(!answered, "{protocol:?}");
                assert!(took < Duration::from_secs(3), "{protocol:?}: {took:?}");
            }
        });
        let refused = local(&frozen, Protocol::Http);
        drop(frozen);
        assert!(!answers(&refused));
    }

    /// A real TLS stack (Python's ssl, OpenSSL) answers our ClientHello: here with an alert, since the
    /// server has no certificate, which still proves it alive.
    #[test]
    fn a_tls_server_answers_the_client_hello() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let script = "import socket, ssl\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n\
            print(s.getsockname()[1], flush=True)\n\
            conn, _ = s.accept()\n\
            try:\n    ctx.wrap_socket(conn, server_side=True)\nexcept ssl.SSLError:\n    pass\n";
        let mut server = Command::new("python3")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut port = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let endpoint = Endpoint {
            addr: format!("127.0.0.1:{}", port.trim()),
            protocol: Protocol::Tls,
        };
        assert!(answers(&endpoint));
        let _ = server.kill();
        let _ = server.wait();
    }
}
