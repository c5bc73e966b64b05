//! Watching distribution while a compile step runs. A killed scheduler or build server costs little
//! (sccache gets "connection refused" and compiles that unit locally, measured here); a frozen one
//! (accepts, never answers) holds each compile sent there until sccache's 20-minute request timeout or
//! its 10-minute idle shutdown, which then fails the build. So the watch asks the scheduler and every
//! build server sccache has used (the keys of its `dist_compiles`) something in their own protocol; one
//! silent twice in a row is judged broken, the server killed, and the step retried uncached (the
//! pipeline's `Broken` path, as for a frozen Redis).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::server::ServerRecord;
use super::watch::{Broken, CLIENT_HELLO};
use crate::env_delta::EnvDelta;
use crate::process::run_with_deadline;

pub struct DistWatch {
    /// `host:port`, and whether it speaks TLS.
    scheduler: (String, bool),
    /// Silent rounds in a row, per address (the scheduler's too).
    silent: BTreeMap<String, u32>,
    wrapper: PathBuf,
    env: EnvDelta,
    server: Option<ServerRecord>,
}

const CONNECT_DEADLINE: Duration = Duration::from_millis(500);
const ANSWER_DEADLINE: Duration = Duration::from_millis(1500);
const STATS_DEADLINE: Duration = Duration::from_millis(2000);

impl DistWatch {
    pub fn new(
        scheduler_url: &str,
        wrapper: PathBuf,
        env: EnvDelta,
        server: Option<ServerRecord>,
    ) -> DistWatch {
        let tls = scheduler_url.starts_with("https://");
        let authority = scheduler_url
            .split_once("://")
            .map_or(scheduler_url, |(_, r)| r);
        let authority = authority.trim_end_matches('/');
        let addr = match (authority.rsplit_once(':'), tls) {
            (Some((_, port)), _) if port.parse::<u16>().is_ok() => authority.to_string(),
            (_, true) => format!("{authority}:443"),
            (_, false) => format!("{authority}:80"),
        };
        DistWatch {
            scheduler: (addr, tls),
            silent: BTreeMap::new(),
            wrapper,
            env,
            server,
        }
    }

    pub fn check(&mut self) -> Result<(), Broken> {
        let (scheduler, tls) = self.scheduler.clone();
        let mut verdict = match self.count(&scheduler, tls) {
            true => Err(Broken::DistSchedulerStopped),
            false => Ok(()),
        };
        for addr in self.build_servers() {
            if self.count(&addr, true) && verdict.is_ok() {
                verdict = Err(Broken::DistServerStopped);
            }
        }
        if let (Err(_), Some(server)) = (verdict, &self.server) {
            server.kill();
        }
        verdict
    }

    /// Counts a silent round for `addr`; true once it was silent twice in a row.
    fn count(&mut self, addr: &str, tls: bool) -> bool {
        let rounds = self.silent.entry(addr.to_string()).or_default();
        *rounds = match silent(addr, tls) {
            true => *rounds + 1,
            false => 0,
        };
        *rounds >= 2
    }

    /// The build servers sccache has sent compiles to in this server's life.
    fn build_servers(&self) -> Vec<String> {
        let args = ["--show-stats", "--stats-format=json"];
        let Ok(out) = run_with_deadline(&self.wrapper, &args, &self.env, STATS_DEADLINE) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        let servers = v
            .pointer("/stats/dist_compiles")
            .and_then(|d| d.as_object());
        servers.map_or(Vec::new(), |m| m.keys().cloned().collect())
    }
}

/// Accepted the connection and answered nothing within the deadline (refused, reset or an answer of
/// any kind is not silence: sccache copes with those itself).
pub fn silent(addr: &str, tls: bool) -> bool {
    let Some(sock) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&sock, CONNECT_DEADLINE) else {
        return false;
    };
    let question = match tls {
        true => CLIENT_HELLO.to_vec(),
        false => format!("HEAD / HTTP/1.0\r\nHost: {addr}\r\n\r\n").into_bytes(),
    };
    let _ = stream.set_read_timeout(Some(ANSWER_DEADLINE));
    let _ = stream.set_write_timeout(Some(ANSWER_DEADLINE));
    if stream.write_all(&question).is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(
        stream.read(&mut first),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Only a listener that accepts and never answers is silent; a refused port is not.
    #[test]
    fn silence_is_accepted_and_unanswered() {
        let frozen = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = frozen.local_addr().unwrap().to_string();
        assert!(silent(&addr, false));
        assert!(silent(&addr, true));
        let answering = TcpListener::bind("127.0.0.1:0").unwrap();
        let answering_addr = answering.local_addr().unwrap().to_string();
        let answer = std::thread::spawn(move || {
            let (mut conn, _) = answering.accept().unwrap();
            conn.write_all(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap();
        });
        assert!(!silent(&answering_addr, false));
        answer.join().unwrap();
        drop(frozen);
        assert!(!silent(&addr, false));
    }
}
