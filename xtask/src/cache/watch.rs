//! The sccache server and its backend watched while a build runs: a backend that dies mid-build makes
//! sccache hang for minutes, a frozen server for ever.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::backend::{Endpoint, Protocol};
use super::server::{ServerRecord, ask_stats, read_stats};
use super::stats::Stats;
use crate::env_delta::EnvDelta;

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
    /// The sccache-dist scheduler, or a build server, accepts and never answers (frozen): sccache
    /// waits up to 20 minutes for each compile sent there.
    DistSchedulerStopped,
    DistServerStopped,
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
            Broken::DistSchedulerStopped => {
                "the sccache-dist scheduler stopped answering during the build".into()
            }
            Broken::DistServerStopped => {
                "an sccache-dist build server stopped answering during the build".into()
            }
        }
    }

    /// The notice of a build that goes on uncached.
    pub fn notice(self, backend: &str, step: &str) -> String {
        let next = match self {
            Broken::BackendStoppedAnswering
            | Broken::BackendFailing
            | Broken::DistSchedulerStopped
            | Broken::DistServerStopped => "stopping sccache and ",
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
            Broken::DistSchedulerStopped | Broken::DistServerStopped => {
                "distribution stopped answering mid-build"
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
        let asked = ask_stats(&self.wrapper, &self.env).ok();
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
pub const CLIENT_HELLO: [u8; 54] = [
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
