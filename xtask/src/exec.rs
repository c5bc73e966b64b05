//! The one executor: runs a plan's steps in order, groups and times their output, masks secret values,
//! and watches compile steps whose cache backend is remote (a backend that dies mid-build hangs sccache).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bounded;
use crate::cache::{Backend, CacheSetup};
use crate::host::HostEnv;
use crate::plan::{self, Action, Cmd, Step};

pub struct Executor {
    pub dry_run: bool,
    github: bool,
    secrets: Vec<String>,
    /// The cache decision, once made; compile steps with a remote backend are watched.
    cache: Option<CacheSetup>,
    /// Set when the cache backend died during this run: later compile steps run uncached.
    uncached_override: Option<Vec<(String, Option<String>)>>,
    /// Wall time spent in compile steps so far (reports split compiling from smoke tests).
    pub compile_time: Duration,
}

impl Executor {
    pub fn new(host: &HostEnv, dry_run: bool) -> Executor {
        let secrets = plan::secret_values(&host.vars);
        let github = host.github_actions();
        if github {
            for secret in &secrets {
                println!("::add-mask::{secret}");
            }
        }
        Executor {
            dry_run,
            github,
            secrets,
            cache: None,
            uncached_override: None,
            compile_time: Duration::ZERO,
        }
    }

    pub fn mask(&self, text: &str) -> String {
        plan::mask_text(text, &self.secrets)
    }

    /// A one-line notice: a GitHub warning in Actions, a plain line elsewhere.
    pub fn notice(&self, text: &str) {
        let text = self.mask(text);
        match self.github {
            true => println!("::warning::{text}"),
            false => eprintln!("notice: {text}"),
        }
    }

    pub fn info(&self, text: &str) {
        println!("{}", self.mask(text));
    }

    pub fn use_cache(&mut self, cache: &CacheSetup) {
        self.cache = Some(cache.clone());
    }

    pub fn degraded(&self) -> bool {
        self.uncached_override.is_some()
    }

    pub fn run_steps(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            if self.dry_run {
                print!("{}", self.mask(&step.to_string()));
                continue;
            }
            let start = Instant::now();
            match self.github {
                true => println!("::group::{}", step.name),
                false => println!("==> {}", step.name),
            }
            let result = self.run_step(step);
            if self.github {
                println!("::endgroup::");
            }
            if matches!(&step.action, Action::Run(cmd) if cmd.compiles) {
                self.compile_time += start.elapsed();
            }
            let secs = start.elapsed().as_secs_f64();
            match result {
                Ok(()) => println!("<== {} ({secs:.1}s)", step.name),
                Err(err) => {
                    let err = err.context(format!("step `{}` failed after {secs:.1}s", step.name));
                    if self.github {
                        println!("::error::{}", self.mask(&format!("{err:#}")));
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    fn run_step(&mut self, step: &Step) -> Result<()> {
        match &step.action {
            Action::Run(cmd) => self.run_cmd(cmd),
            Action::CleanDir(dir) => {
                if dir.exists() {
                    fs::remove_dir_all(dir)
                        .with_context(|| format!("removing {}", dir.display()))?;
                }
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
            }
            Action::ExpectFile(path) => {
                if path.is_file() {
                    return Ok(());
                }
                let dir = path.parent().unwrap_or(path);
                let found: Vec<String> = fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                bail!(
                    "expected {} but {} holds {found:?}",
                    path.display(),
                    dir.display()
                )
            }
            Action::MakeDirs(dirs) => dirs.iter().try_for_each(|dir| {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
            }),
            Action::CopyInto { files, dir } => {
                fs::create_dir_all(dir)?;
                for file in files {
                    let name = file
                        .file_name()
                        .context("copying a path without a file name")?;
                    fs::copy(file, dir.join(name)).with_context(|| {
                        format!("copying {} into {}", file.display(), dir.display())
                    })?;
                }
                Ok(())
            }
            Action::WriteFile {
                path,
                contents,
                executable,
            } => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
                if *executable {
                    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
                }
                Ok(())
            }
            Action::CheckGlibc { path, max_minor } => {
                let bytes =
                    fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                match newest_glibc(&bytes) {
                    Some(minor) if minor > *max_minor => bail!(
                        "{} needs GLIBC_2.{minor}, newer than the GLIBC_2.{max_minor} the artifacts promise \
                         (was it linked without the zig wrapper?)",
                        path.display()
                    ),
                    found => {
                        let found = found.map_or("no GLIBC_ symbol".into(), |m| {
                            format!("at most GLIBC_2.{m}")
                        });
                        println!("{}: needs {found}", path.display());
                        Ok(())
                    }
                }
            }
        }
    }

    fn run_cmd(&mut self, cmd: &Cmd) -> Result<()> {
        let mut env = cmd.env.clone();
        if cmd.compiles
            && let Some(uncached) = &self.uncached_override
        {
            env.extend(uncached.iter().cloned());
        }
        let watched = match self.cache.as_ref().map(|c| &c.backend) {
            Some(Backend::Remote {
                health: Some(addr), ..
            }) if cmd.compiles && !self.degraded() => Some(addr.clone()),
            _ => None,
        };
        let outcome = self.spawn_and_wait(cmd, &env, watched.as_deref())?;
        match outcome {
            Outcome::Exited { ok: true, stdout } => check_stdout(cmd, &stdout),
            Outcome::Exited { ok: false, .. } => {
                bail!("{} exited unsuccessfully", cmd.program.display())
            }
            Outcome::BackendDied => {
                let uncached = crate::cache::compile_env(None, &Backend::Disabled);
                env.extend(uncached.iter().cloned());
                self.uncached_override = Some(uncached);
                match self.spawn_and_wait(cmd, &env, None)? {
                    Outcome::Exited { ok: true, stdout } => check_stdout(cmd, &stdout),
                    _ => bail!(
                        "{} exited unsuccessfully (uncached retry)",
                        cmd.program.display()
                    ),
                }
            }
        }
    }

    fn spawn_and_wait(
        &self,
        cmd: &Cmd,
        env: &[(String, Option<String>)],
        watched: Option<&str>,
    ) -> Result<Outcome> {
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .current_dir(&cmd.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        bounded::apply_env(&mut command, env);
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot run {} in {}",
                cmd.program.display(),
                cmd.cwd.display()
            )
        })?;
        let captured = Arc::new(Mutex::new(String::new()));
        let copiers = [
            self.copy_lines(
                child.stdout.take().unwrap(),
                false,
                cmd.expect_stdout.is_some().then(|| captured.clone()),
            ),
            self.copy_lines(child.stderr.take().unwrap(), true, None),
        ];
        let died = match watched {
            Some(addr) => self.watch(&mut child, addr)?,
            None => false,
        };
        let status = child.wait()?;
        for copier in copiers {
            let _ = copier.join();
        }
        if died {
            return Ok(Outcome::BackendDied);
        }
        let stdout = captured.lock().unwrap().clone();
        Ok(Outcome::Exited {
            ok: status.success(),
            stdout,
        })
    }

    /// Poll the backend while the build runs; if it stops answering, kill the sccache server so the stuck
    /// compiles fail fast, and report that the step must be retried without the cache.
    fn watch(&self, child: &mut Child, addr: &str) -> Result<bool> {
        let mut failures = 0;
        let mut last_check = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                return Ok(false);
            }
            thread::sleep(Duration::from_millis(100));
            if last_check.elapsed() < Duration::from_secs(1) {
                continue;
            }
            last_check = Instant::now();
            failures = if reachable(addr) { 0 } else { failures + 1 };
            if failures >= 2 {
                self.notice(&format!(
                    "the {} cache backend stopped answering during the build; stopping sccache and finishing uncached",
                    self.cache.as_ref().map_or("remote", |c| c.backend.kind())
                ));
                if let Some(cache) = &self.cache {
                    cache.kill_server();
                }
                let _ = child.kill();
                return Ok(true);
            }
        }
    }

    fn copy_lines(
        &self,
        from: impl Read + Send + 'static,
        to_stderr: bool,
        capture: Option<Arc<Mutex<String>>>,
    ) -> thread::JoinHandle<()> {
        let secrets = self.secrets.clone();
        thread::spawn(move || {
            for line in BufReader::new(from).split(b'\n').map_while(Result::ok) {
                let line = plan::mask_text(&String::from_utf8_lossy(&line), &secrets);
                if let Some(buf) = &capture {
                    let mut buf = buf.lock().unwrap();
                    buf.push_str(&line);
                    buf.push('\n');
                }
                let _ = match to_stderr {
                    true => writeln!(std::io::stderr(), "{line}"),
                    false => writeln!(std::io::stdout(), "{line}"),
                };
            }
        })
    }
}

enum Outcome {
    Exited { ok: bool, stdout: String },
    BackendDied,
}

fn check_stdout(cmd: &Cmd, stdout: &str) -> Result<()> {
    match cmd.expect_stdout.as_ref().map(|e| e.check(stdout)) {
        Some(Err(why)) => bail!("{} {why}", cmd.program.display()),
        _ => Ok(()),
    }
}

fn reachable(addr: &str) -> bool {
    let Ok(mut addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// The newest `GLIBC_2.N` version an ELF file names. Version requirements live in `.dynstr` as plain
/// strings, so a byte scan finds them without an ELF parser.
pub fn newest_glibc(bytes: &[u8]) -> Option<u32> {
    const NEEDLE: &[u8] = b"GLIBC_2.";
    let mut newest = None;
    let mut i = 0;
    while let Some(pos) = bytes[i..].windows(NEEDLE.len()).position(|w| w == NEEDLE) {
        let start = i + pos + NEEDLE.len();
        let digits: Vec<u8> = bytes[start..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        if let Ok(minor) = std::str::from_utf8(&digits).unwrap_or("").parse::<u32>() {
            newest = newest.max(Some(minor));
        }
        i = start;
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_artifact_names_what_was_built_instead() {
        let dir = std::env::temp_dir().join(format!("xtask-expect-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("boxspec-0.1.0-cp39-abi3-manylinux_2_31_x86_64.whl"),
            b"",
        )
        .unwrap();
        let host = HostEnv::fixture(&[]);
        let mut exec = Executor::new(&host, false);
        let want = dir.join("boxspec-0.1.0-cp39-abi3-manylinux_2_17_x86_64.whl");
        let err = exec
            .run_steps(&[Step::new("expect", Action::ExpectFile(want))])
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("manylinux_2_31_x86_64.whl"), "{text}");
        fs::write(
            dir.join("boxspec-0.1.0-cp39-abi3-manylinux_2_17_x86_64.whl"),
            b"",
        )
        .unwrap();
        let found = dir.join("boxspec-0.1.0-cp39-abi3-manylinux_2_17_x86_64.whl");
        assert!(
            exec.run_steps(&[Step::new("expect", Action::ExpectFile(found))])
                .is_ok()
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn glibc_scan() {
        assert_eq!(
            newest_glibc(b"\0GLIBC_2.2.5\0GLIBC_2.14\0GLIBC_2.3\0"),
            Some(14)
        );
        assert_eq!(newest_glibc(b"\0GLIBC_2.34\0GLIBC_2.17\0"), Some(34));
        assert_eq!(newest_glibc(b"no versions here"), None);
    }
}
