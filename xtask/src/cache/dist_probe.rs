//! The distribution decision, once, before any compile: the config sccache will read is checked by
//! sccache itself, the scheduler is asked by the driver (status and the client token, under deadlines:
//! sccache 0.16 waits 10 s for a frozen scheduler when its server starts, fails every compile on a
//! refused token, and waits up to 20 min on a frozen scheduler or build server), then
//! `sccache --dist-status` must see at least one build server. Otherwise the run compiles locally with
//! one notice (`--cache require`: an error).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use super::dist::{self, Asked, DistRequest};
use super::{CacheSetup, server};
use crate::env_delta::EnvDelta;
use crate::flags::{CacheMode, UsageError};
use crate::host::HostEnv;
use crate::process::run_with_deadline;

/// Distribution decided on: the scheduler and what it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    pub scheduler: String,
    pub servers: u64,
    pub cpus: u64,
}

/// A request with its config files written, and what the scheduler said before any server started.
pub struct Prepared {
    req: DistRequest,
    dist_conf: PathBuf,
    local_conf: PathBuf,
    precheck: Result<(), String>,
}

impl Prepared {
    /// What the sccache server reads: the `[dist]` config while distribution is still possible.
    pub fn conf_env(&self) -> EnvDelta {
        let conf = match self.precheck {
            Ok(()) => &self.dist_conf,
            Err(_) => &self.local_conf,
        };
        let mut env = EnvDelta::new();
        env.set("SCCACHE_CONF", conf.display().to_string());
        env
    }
}

const STATUS_DEADLINE: Duration = Duration::from_secs(3);
const CONNECT_DEADLINE: Duration = Duration::from_millis(1000);
const ANSWER_DEADLINE: Duration = Duration::from_millis(2000);

/// Reads the request, writes this run's configs, lets sccache check the file and asks the scheduler.
pub fn prepare(
    setup: &mut CacheSetup,
    wrapper: &Path,
    host: &HostEnv,
    flag: Option<&str>,
    dry_run: bool,
) -> Result<Option<Prepared>> {
    let conf_path = dist::user_conf_path(host);
    let text = conf_path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let conf = conf_path.as_deref().zip(text.as_deref());
    // Any config file sccache would read must parse, asked for distribution or not.
    if let (Some((path, text)), false) = (conf, dry_run)
        && let Some(why) = config_error(wrapper, path, &setup.port, dist::token_in(text))
    {
        let what = format!(
            "SCCACHE_CONF {}: sccache cannot read it: {why}",
            path.display()
        );
        return Err(UsageError(what).into());
    }
    let token = host.var("XTASK_DIST_TOKEN");
    let Some(req) = dist::requested(flag, token, conf)? else {
        return Ok(None);
    };
    setup.dist_asked = Some(req.scheduler.clone());
    let dir = host.temp.join("sccache-conf").join(&setup.port);
    let text = text.unwrap_or_default();
    let (dist_conf, local_conf) = match (req.asked, &req.user_conf) {
        (Asked::Config, Some(user)) => (user.clone(), dir.join("local.conf")),
        _ => (dir.join("dist.conf"), dir.join("local.conf")),
    };
    let mut plan = Prepared {
        req,
        dist_conf,
        local_conf,
        precheck: Ok(()),
    };
    if dry_run {
        return Ok(Some(plan));
    }
    let written = |path: &Path, text: &str| {
        dist::write_private(path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    };
    if plan.req.asked == Asked::Flag {
        let token = plan.req.token.as_deref().unwrap_or_default();
        written(
            &plan.dist_conf,
            &dist::with_dist(&text, &plan.req.scheduler, token),
        )?;
    }
    written(&plan.local_conf, &dist::without_dist(&text))?;
    plan.precheck = precheck(&plan.req);
    Ok(Some(plan))
}

/// sccache reads its config before anything else: a file it cannot parse fails every command.
fn config_error(wrapper: &Path, conf: &Path, port: &str, token: Option<String>) -> Option<String> {
    let mut env = EnvDelta::new();
    env.set("SCCACHE_CONF", conf.display().to_string())
        .set("SCCACHE_SERVER_PORT", port);
    let out = run_with_deadline(wrapper, &["--show-stats"], &env, STATUS_DEADLINE).ok()?;
    if !out.stderr.contains("Failed to load config file") {
        return None;
    }
    // sccache quotes the offending line, which may hold the token: its words only.
    let why: Vec<&str> = (out.stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|') && !l.starts_with('^'))
        .filter(|l| !l.contains("Failed to load"))
        .map(|l| l.trim_start_matches("sccache: caused by: "))
        .collect();
    let why = why.join(": ");
    Some(match &token {
        Some(token) if token.len() >= 4 => why.replace(token.as_str(), "***"),
        _ => why,
    })
}

/// The scheduler's status and the token, asked over plain HTTP (an `https://` scheduler is left to
/// `sccache --dist-status`, which cannot check the token: sccache then fails compiles it refuses).
fn precheck(req: &DistRequest) -> Result<(), String> {
    let Some(addr) = req.scheduler.strip_prefix("http://") else {
        return Ok(());
    };
    let addr = addr.trim_end_matches('/');
    let addr = match addr.contains(':') {
        true => addr.to_string(),
        false => format!("{addr}:80"),
    };
    let (code, body) = http(&addr, "GET /api/v1/scheduler/status", None)?;
    let servers = match (code, status_servers(&body)) {
        (200, Some(n)) => n,
        _ => {
            return Err(format!(
                "is not an sccache-dist scheduler (status answered HTTP {code})"
            ));
        }
    };
    if servers == 0 {
        return Err("has no build server".into());
    }
    // An empty job request: the token is checked before the body, 401 = refused, 400 = accepted.
    let token = req.token.as_deref();
    match http(&addr, "POST /api/v1/scheduler/alloc_job", token)? {
        (401, _) if token.is_none() => Err("wants a client token and the config has none".into()),
        (401, _) => Err("refused the client token (HTTP 401)".into()),
        _ => Ok(()),
    }
}

/// `num_servers` of a `SchedulerStatusResult` (bincode: three little-endian u64).
fn status_servers(body: &[u8]) -> Option<u64> {
    let first: [u8; 8] = body.get(..8)?.try_into().ok()?;
    (body.len() == 24).then(|| u64::from_le_bytes(first))
}

/// One HTTP/1.0 request under our deadlines: `(status, body)`, or why there was no answer.
fn http(addr: &str, request: &str, token: Option<&str>) -> Result<(u16, Vec<u8>), String> {
    let sock = (addr.to_socket_addrs().ok().and_then(|mut a| a.next()))
        .ok_or_else(|| format!("cannot be resolved ({addr})"))?;
    let mut stream = TcpStream::connect_timeout(&sock, CONNECT_DEADLINE)
        .map_err(|e| format!("cannot be reached ({e})"))?;
    let _ = stream.set_read_timeout(Some(ANSWER_DEADLINE));
    let _ = stream.set_write_timeout(Some(ANSWER_DEADLINE));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let text = format!("{request} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\n\r\n");
    let mut answer = Vec::new();
    let read = (stream.write_all(text.as_bytes())).and_then(|()| stream.read_to_end(&mut answer));
    if read.is_err() && answer.is_empty() {
        return Err(format!(
            "accepted the connection and did not answer within {} ms",
            ANSWER_DEADLINE.as_millis()
        ));
    }
    let head_end = (answer.windows(4).position(|w| w == b"\r\n\r\n")).unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    let code = code.ok_or_else(|| "answered something that is not HTTP".to_string())?;
    Ok((
        code,
        answer.get(head_end + 4..).unwrap_or_default().to_vec(),
    ))
}

/// With the server started: sccache itself must see the scheduler and at least one build server.
pub fn confirm(
    setup: &mut CacheSetup,
    plan: Prepared,
    wrapper: &Path,
    dry_run: bool,
) -> Result<()> {
    if dry_run {
        setup.dist = Some(Dist {
            scheduler: plan.req.scheduler.clone(),
            servers: 0,
            cpus: 0,
        });
        return Ok(());
    }
    if let Err(why) = &plan.precheck {
        return dist_off(setup, &plan.req, why);
    }
    let out = run_with_deadline(wrapper, &["--dist-status"], &setup.env, STATUS_DEADLINE);
    let seen = match out {
        Ok(out) if out.ok() => dist_status(&out.stdout),
        Ok(out) => Err(format!("`sccache --dist-status` failed: {}", out.why())),
        Err(e) => Err(format!("`sccache --dist-status` failed: {e:#}")),
    };
    match seen {
        Ok((servers, cpus)) => {
            let scheduler = plan.req.scheduler.clone();
            setup.dist = Some(Dist {
                scheduler,
                servers,
                cpus,
            });
            Ok(())
        }
        Err(why) => {
            dist_off(setup, &plan.req, &why)?;
            restart_local(setup, &plan, wrapper);
            Ok(())
        }
    }
}

/// `(servers, cpus)` from `sccache --dist-status`, or what it said instead.
pub fn dist_status(json: &str) -> Result<(u64, u64), String> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|_| format!("`--dist-status` printed {json:?}"))?;
    if let Some(status) = v.get("SchedulerStatus").and_then(|s| s.get(1)) {
        let num = |k: &str| status.get(k).and_then(|n| n.as_u64()).unwrap_or(0);
        return match num("num_servers") {
            0 => Err("has no build server".into()),
            n => Ok((n, num("num_cpus"))),
        };
    }
    let said = match v.get("NotConnected").and_then(|s| s.get(1)) {
        Some(msg) => msg.as_str().unwrap_or_default().to_string(),
        None => v.to_string(),
    };
    Err(format!("is not reachable from sccache ({said})"))
}

/// One notice; under `--cache require`, an error.
fn dist_off(setup: &mut CacheSetup, req: &DistRequest, why: &str) -> Result<()> {
    let what = format!(
        "the sccache-dist scheduler {} ({}) {why}",
        req.scheduler,
        req.setting()
    );
    if setup.mode == CacheMode::Require {
        bail!("--cache require: {what}");
    }
    setup.notices.push(format!(
        "{what}; distributed compilation off, compiling locally"
    ));
    Ok(())
}

/// The server started with the `[dist]` config is restarted without it: a frozen scheduler would
/// stall its compiles.
fn restart_local(setup: &mut CacheSetup, plan: &Prepared, wrapper: &Path) {
    let mut env = setup.env.clone();
    env.set("SCCACHE_CONF", plan.local_conf.display().to_string());
    let Some(record) = setup.server.clone() else {
        return;
    };
    match server::probe(wrapper, &env, &record) {
        Ok(_) => setup.env = env,
        Err(why) => {
            (setup.notices).push(format!(
                "sccache did not restart without distribution ({why}); building without a compiler cache"
            ));
            setup.env = super::uncached_env();
            setup.wrapper = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_dist_status_says() {
        let up = r#"{"SchedulerStatus":["http://127.0.0.1:10600/",{"num_servers":1,"num_cpus":2,"in_progress":0}]}"#;
        assert_eq!(dist_status(up), Ok((1, 2)));
        let none = r#"{"SchedulerStatus":["http://127.0.0.1:10600/",{"num_servers":0,"num_cpus":0,"in_progress":0}]}"#;
        assert_eq!(dist_status(none), Err("has no build server".into()));
        let down = r#"{"NotConnected":["http://127.0.0.1:10600/","enabled, not connected, will retry in 30.0s"]}"#;
        assert_eq!(
            dist_status(down),
            Err(
                "is not reachable from sccache (enabled, not connected, will retry in 30.0s)"
                    .into()
            )
        );
    }

    #[test]
    fn a_status_body_is_three_u64() {
        let mut body = 2u64.to_le_bytes().to_vec();
        body.extend(8u64.to_le_bytes());
        body.extend(0u64.to_le_bytes());
        assert_eq!(status_servers(&body), Some(2));
        assert_eq!(status_servers(b"<html>"), None);
    }
}
