//! Short helper processes that may hang (sccache probes, version checks, the container probe), run under
//! the driver's own deadline. Output goes to files, not pipes: `sccache --start-server` leaves a daemon
//! holding inherited pipes open. (Commands that cannot hang the build use xshell; steps use the executor.)
//! And the one way a step's whole process tree is killed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    let result = match cmd.spawn() {
        Ok(mut child) => {
            let code = loop {
                if let Some(status) = child.try_wait()? {
                    break Some(status.code().unwrap_or(-1));
                }
                if start.elapsed() >= timeout {
                    let _ = child.kill();
                    let _ = child.wait();
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

/// Kills `root` and every process it started, each stopped first so that none starts another meanwhile.
/// Killed alone, cargo leaves its rustc, build scripts and sccache clients running beside the uncached
/// retry, in the same target directory.
pub fn kill_tree(root: u32) {
    let mut tree = vec![root];
    signal("STOP", &tree);
    loop {
        let new: Vec<u32> = (children_of(&tree).into_iter())
            .filter(|pid| !tree.contains(pid))
            .collect();
        if new.is_empty() {
            break;
        }
        signal("STOP", &new);
        tree.extend(new);
    }
    signal("KILL", &tree);
}

/// The processes whose parent is one of `parents`.
fn children_of(parents: &[u32]) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    (entries.flatten())
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses; read after the last `)`.
            let ppid: u32 = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            parents.contains(&ppid).then_some(pid)
        })
        .collect()
}

fn signal(name: &str, pids: &[u32]) {
    // Some may have exited since: `kill` then names them and signals the rest.
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
