//! The one executor: runs a plan's steps in order, groups and times their output and masks secret values.
//! It knows nothing of caches: a compile step may be given a watch, and if the watch says stop, the step's
//! process group is killed and the caller hears `Ran::Stopped`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::checks;
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Phase, Step};
use crate::{process, secrets};

/// Asked about once a second while a compile step runs; `false` stops the step.
pub type Watch<'a> = &'a mut dyn FnMut() -> bool;

/// How a step ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Done,
    /// The watch said stop; the step's process was killed.
    Stopped,
}

pub struct Executor {
    pub dry_run: bool,
    github: bool,
    secrets: Vec<String>,
    /// Wall time spent so far in each phase (reports split compiling from tools and smoke tests).
    phases: [Duration; Phase::ALL.len()],
}

impl Executor {
    pub fn new(host: &HostEnv, dry_run: bool) -> Executor {
        let secrets = secrets::secret_values(&host.vars);
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
            phases: [Duration::ZERO; Phase::ALL.len()],
        }
    }

    pub fn mask(&self, text: &str) -> String {
        secrets::mask_text(text, &self.secrets)
    }

    /// Wall time spent so far in `phase`'s steps.
    pub fn time_in(&self, phase: Phase) -> Duration {
        self.phases[phase as usize]
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

    pub fn run_steps(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            self.run_step(step, None)?;
        }
        Ok(())
    }

    /// One step, in its own group with its time; `--dry-run` prints it instead.
    pub fn run_step(&mut self, step: &Step, watch: Option<Watch>) -> Result<Ran> {
        if self.dry_run {
            print!("{}", self.mask(&step.to_string()));
            return Ok(Ran::Done);
        }
        let start = Instant::now();
        // A step's name may hold a path, and a path may hold a secret's value.
        let name = self.mask(&step.name);
        match self.github {
            true => println!("::group::{name}"),
            false => println!("==> {name}"),
        }
        let result = self.perform(step, watch);
        if self.github {
            println!("::endgroup::");
        }
        self.phases[step.phase() as usize] += start.elapsed();
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(Ran::Done) => println!("<== {name} ({secs:.1}s)"),
            Ok(Ran::Stopped) => println!("<== {name} stopped ({secs:.1}s)"),
            Err(err) => {
                return Err(err.context(format!("step `{}` failed after {secs:.1}s", step.name)));
            }
        }
        result
    }

    fn perform(&mut self, step: &Step, watch: Option<Watch>) -> Result<Ran> {
        match &step.action {
            Action::Run(cmd) => return self.run_cmd(cmd, watch.filter(|_| cmd.compiles)),
            Action::CleanDir(dir) => {
                if dir.exists() {
                    fs::remove_dir_all(dir)
                        .with_context(|| format!("removing {}", dir.display()))?;
                }
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            Action::ExpectFile(path) => checks::expect_file(path)?,
            Action::MakeDirs(dirs) => dirs.iter().try_for_each(|dir| {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
            })?,
            Action::CopyFile { from, to } => {
                fs::copy(from, to)
                    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            }
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
            }
            Action::CheckElf {
                path,
                machine,
                max_glibc_minor,
            } => self.info(&checks::elf_floor(path, *machine, *max_glibc_minor)?),
            Action::CheckMachO { path, cputype } => self.info(&checks::macho(path, *cputype)?),
            Action::Notice(text) => self.notice(text),
            Action::Trim(trim) => self.info(&trim.apply()?),
        }
        Ok(Ran::Done)
    }

    fn run_cmd(&self, cmd: &Cmd, watch: Option<Watch>) -> Result<Ran> {
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .current_dir(&cmd.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env.apply(&mut command);
        let mut child = process::spawn_in_own_group(&mut command).with_context(|| {
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
        let stopped = wait_watched(&mut child, watch);
        let status = child.wait()?;
        for copier in copiers {
            let _ = copier.join();
        }
        let stopped = stopped?;
        if stopped {
            return Ok(Ran::Stopped);
        }
        if !status.success() {
            bail!("{} exited unsuccessfully", cmd.program.display());
        }
        match cmd
            .expect_stdout
            .as_ref()
            .map(|e| e.check(&captured.lock().unwrap()))
        {
            Some(Err(why)) => bail!("{} {why}", cmd.program.display()),
            _ => Ok(Ran::Done),
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
                let line = String::from_utf8_lossy(&line);
                // The check sees what the child printed; only what a person reads is masked.
                if let Some(buf) = &capture {
                    let mut buf = buf.lock().unwrap();
                    buf.push_str(&line);
                    buf.push('\n');
                }
                let line = secrets::mask_text(&line, &secrets);
                let _ = match to_stderr {
                    true => writeln!(std::io::stderr(), "{line}"),
                    false => writeln!(std::io::stdout(), "{line}"),
                };
            }
        })
    }
}

/// Wait for the child, asking the watch (if any) once a second; its group is killed when it says stop.
fn wait_watched(child: &mut Child, mut watch: Option<Watch>) -> Result<bool> {
    let mut last_check = Instant::now();
    process::wait_group(child, || {
        // A short poll: a warm compile step takes about a second, and its end should not wait on us.
        let Some(watch) = watch
            .as_mut()
            .filter(|_| last_check.elapsed() >= Duration::from_secs(1))
        else {
            return false;
        };
        last_check = Instant::now();
        !watch()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostEnv;

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

    /// A secret that happens to be part of what a smoke test prints (a path) is masked where it is
    /// shown, and the check still compares the real text.
    #[test]
    fn checks_compare_what_the_child_printed_not_the_masked_text() {
        let dir = std::env::temp_dir();
        let host = HostEnv::fixture(&[("DEPLOY_TOKEN", "bars")]);
        let mut exec = Executor::new(&host, false);
        let echo = |text: &str| Cmd::new("echo", &dir).args([text]);
        let seen = echo("ok: /tmp/bars-shared").expect_stdout("ok: /tmp/bars-shared");
        exec.run_steps(&[seen.into_step("smoke")]).unwrap();
        let wrong = echo("ok: /tmp/bars-shared").expect_stdout("ok: /tmp/***-shared");
        let err = exec.run_steps(&[wrong.into_step("smoke")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("printed \"ok: /tmp/bars-shared\""),
            "{err:#}"
        );
    }

    #[test]
    fn a_stopped_step_leaves_nothing_it_started_running() {
        let dir = std::env::temp_dir().join(format!("xtask-stopped-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // A grandchild with its output elsewhere, as a build script or rustc under cargo: nothing waits
        // for it, so only killing the tree ends it.
        let pid_file = dir.join("pid");
        let script = format!(
            "sleep 60 >/dev/null 2>&1 & echo $! > {}; wait",
            pid_file.display()
        );
        let cmd = Cmd::new("sh", &dir)
            .args(["-c", &script])
            .compile_env(&crate::env_delta::EnvDelta::new());
        let mut exec = Executor::new(&HostEnv::fixture(&[]), false);
        let ran = exec.run_step(&Step::new("sleeps", Action::Run(cmd)), Some(&mut || false));
        assert_eq!(ran.unwrap(), Ran::Stopped);
        let pid = fs::read_to_string(&pid_file).unwrap();
        // Gone, or a zombie its new parent has yet to reap; a killed process may take a moment to die.
        // (`ps`, not /proc: the same check on a Mac.)
        let state = || {
            let ps = Command::new("ps")
                .args(["-o", "stat=", "-p", pid.trim()])
                .output();
            String::from_utf8_lossy(&ps.unwrap().stdout)
                .trim()
                .to_string()
        };
        let alive = |state: &str| !state.is_empty() && !state.starts_with('Z');
        let start = Instant::now();
        while alive(&state()) && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(&state()), "the grandchild still runs: {}", state());
        let _ = fs::remove_dir_all(&dir);
    }
}
