//! Short helper processes that may hang (sccache probes, version checks, the container probe), run under
//! the driver's own deadline. Output goes to files, not pipes: a helper that leaves a process behind (as a
//! started sccache server does) would hold inherited pipes open. (Commands that cannot hang the build use
//! xshell; steps use the executor.)
//! And the process model of every step: a process group of its own, killed as one, on every Unix
//! (nothing here reads `/proc`).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::env_delta::EnvDelta;

#[derive(Debug)]
pub struct Finished {
    /// `None` when the deadline passed and the process was killed.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The most telling line of the output, for one-line notices: the first error line, else the last.
    pub fn why(&self) -> String {
        if self.code.is_none() {
            return format!("no answer within {} ms", self.elapsed.as_millis());
        }
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim().trim_start_matches("sccache: ").trim())
            .filter(|l| !l.is_empty() && !l.starts_with("Starting the server"))
            .collect();
        let line = (lines.iter().find(|l| l.starts_with("error:")))
            .or(lines.last())
            .map_or("", |l| l.trim_start_matches("error: "));
        let line: String = line.chars().take(240).collect();
        match self.code {
            Some(code) if line.is_empty() => format!("exit code {code}"),
            Some(code) => format!("{line} (exit code {code})"),
            None => unreachable!(),
        }
    }
}

pub fn run_with_deadline(
    program: &Path,
    args: &[&str],
    env: &EnvDelta,
    timeout: Duration,
) -> Result<Finished> {
    let scratch = scratch_dir()?;
    let (out_path, err_path) = (scratch.join("out"), scratch.join("err"));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?);
    env.apply(&mut cmd);
    let start = Instant::now();
    let result = match spawn_in_own_group(&mut cmd) {
        Ok(mut child) => {
            let code = loop {
                if let Some(status) = child.try_wait()? {
                    break Some(status.code().unwrap_or(-1));
                }
                let interrupted = interrupted();
                if start.elapsed() >= timeout || interrupted.is_some() {
                    kill_group(child.id());
                    let _ = child.wait();
                    if let Some(signal) = interrupted {
                        return Err(signal.into());
                    }
                    break None;
                }
                thread::sleep(Duration::from_millis(5));
            };
            Ok(Finished {
                code,
                stdout: fs::read_to_string(&out_path).unwrap_or_default(),
                stderr: fs::read_to_string(&err_path).unwrap_or_default(),
                elapsed: start.elapsed(),
            })
        }
        Err(err) => Err(err).with_context(|| format!("cannot run {}", program.display())),
    };
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn scratch_dir() -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xtask-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Spawns `cmd` in a process group of its own, whose id is the child's pid: the OS then knows everything
/// it starts (cargo's rustc and build scripts, their sccache clients) as one, on every Unix, and
/// `kill_group` ends them all. Terminal signals (Ctrl-C) reach only the driver's group from then on, so
/// the driver forwards them to the running step (`interrupted`).
pub fn spawn_in_own_group(cmd: &mut Command) -> std::io::Result<Child> {
    interrupt::forward();
    cmd.process_group(0).spawn()
}

/// Stops every process of the group, then kills them all: none starts another in between. Killed alone,
/// cargo leaves its rustc, build scripts and sccache clients running beside the uncached retry, in the
/// same target directory.
pub fn kill_group(pgid: u32) {
    signal_group("STOP", pgid);
    signal_group("KILL", pgid);
}

/// Sends `signal` to every process of group `pgid`; false when no process got it.
fn signal_group(signal: &str, pgid: u32) -> bool {
    Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The driver was asked to stop (Ctrl-C, a runner cancelling the job): it forwarded the signal to the
/// running step's group and ended it. The process exits with 128 + the signal's number, as a shell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = interrupt::name(self.0);
        write!(f, "interrupted by SIG{name}")
    }
}

impl std::error::Error for Interrupted {}

/// The signal the driver got since it started forwarding, if any.
pub fn interrupted() -> Option<Interrupted> {
    interrupt::received().map(Interrupted)
}

/// How long a step may take to stop after the forwarded signal before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Waits for a step spawned by `spawn_in_own_group`, asking `stop` every 20 ms: when it says so, the
/// step's group is killed and `Ok(true)` returned. A signal to the driver is forwarded to the group
/// (what the terminal would have done), and after a grace period the group is killed.
pub fn wait_group(child: &mut Child, mut stop: impl FnMut() -> bool) -> Result<bool> {
    let pgid = child.id();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(false);
        }
        if let Some(Interrupted(signal)) = interrupted() {
            signal_group(interrupt::name(signal), pgid);
            let start = Instant::now();
            while child.try_wait()?.is_none() && start.elapsed() < STOP_GRACE {
                thread::sleep(Duration::from_millis(20));
            }
            kill_group(pgid);
            let _ = child.wait();
            return Err(Interrupted(signal).into());
        }
        if stop() {
            kill_group(pgid);
            return Ok(true);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The one use of the C library beyond std: std cannot catch a signal, and forwarding Ctrl-C to a step's
/// group needs it. The numbers of SIGHUP, SIGINT and SIGTERM are the same on Linux, macOS and the BSDs.
mod interrupt {
    use std::sync::Once;
    use std::sync::atomic::{AtomicI32, Ordering};

    const FORWARDED: [(i32, &str); 3] = [(1, "HUP"), (2, "INT"), (15, "TERM")];
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    unsafe extern "C" {
        /// BSD semantics on glibc and macOS: the handler stays installed and system calls restart.
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }

    extern "C" fn record(signum: i32) {
        RECEIVED.store(signum, Ordering::SeqCst);
    }

    pub fn forward() {
        static INSTALLED: Once = Once::new();
        INSTALLED.call_once(|| {
            for (signum, _) in FORWARDED {
                // SAFETY: `record` only stores to an atomic, which is async-signal-safe.
                unsafe { signal(signum, record) };
            }
        });
    }

    pub fn received() -> Option<i32> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            signum => Some(signum),
        }
    }

    pub fn name(signum: i32) -> &'static str {
        (FORWARDED.iter())
            .find(|(n, _)| *n == signum)
            .map_or("KILL", |(_, name)| name)
    }
}
