//! A job is data: a list of steps. Jobs build it from (flags, host, cache setup) without running anything,
//! so `--dry-run` and the table tests see exactly what the executor will do.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::env_delta::EnvDelta;
use crate::secrets::mask_value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run(Cmd),
    /// Delete (if present) and recreate a directory.
    CleanDir(PathBuf),
    /// Fail unless the file exists, naming what its directory holds instead (a wheel with another tag).
    ExpectFile(PathBuf),
    /// Create directories that are missing (as the invoking user, before a container mounts them).
    MakeDirs(Vec<PathBuf>),
    /// Copy one file to another path.
    CopyFile {
        from: PathBuf,
        to: PathBuf,
    },
    /// Copy files into a directory, keeping their names.
    CopyInto {
        files: Vec<PathBuf>,
        dir: PathBuf,
    },
    WriteFile {
        path: PathBuf,
        contents: String,
        executable: bool,
    },
    /// Fail unless the ELF file is for `machine` and needs no `GLIBC_` version newer than 2.`max_glibc_minor`.
    CheckElf {
        path: PathBuf,
        machine: u16,
        max_glibc_minor: u32,
    },
    /// Fail unless the file is a 64-bit Mach-O file for `cputype`.
    CheckMachO {
        path: PathBuf,
        cputype: u32,
    },
    /// Say one line (a notice), e.g. which smoke tests cannot run on this host and how to enable them.
    Notice(String),
    /// Remove what an install does not need (`tools::Trim` owns the rules).
    Trim(crate::tools::Trim),
}

/// One child process. The environment is the driver's own plus `env`: `Some` sets, `None` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: EnvDelta,
    /// The step compiles Rust through the cache wrapper (the executor watches it and reports stats).
    pub compiles: bool,
    /// What stdout must show (smoke tests).
    pub expect_stdout: Option<Expect>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Is(String),
    Contains(String),
}

impl Expect {
    pub fn check(&self, stdout: &str) -> Result<(), String> {
        match self {
            Expect::Is(want) if stdout.trim() == want.trim() => Ok(()),
            Expect::Contains(want) if stdout.contains(want.as_str()) => Ok(()),
            Expect::Is(want) => Err(format!(
                "printed {:?}, expected {:?}",
                stdout.trim(),
                want.trim()
            )),
            Expect::Contains(want) => Err(format!("did not print {want:?}")),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Is(want) => write!(f, "stdout is {want:?}"),
            Expect::Contains(want) => write!(f, "stdout contains {want:?}"),
        }
    }
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>, cwd: &Path) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.to_path_buf(),
            env: EnvDelta::new(),
            compiles: false,
            expect_stdout: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn arg_path(mut self, path: &Path) -> Cmd {
        self.args.push(path.display().to_string());
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Cmd {
        self.env.set(name, value);
        self
    }

    /// The compile environment chosen by the cache decision and the shared build settings.
    pub fn compile_env(mut self, env: &EnvDelta) -> Cmd {
        self.env.extend(env);
        self.compiles = true;
        self
    }

    /// Trimmed stdout must equal `expected`.
    pub fn expect_stdout(mut self, expected: impl Into<String>) -> Cmd {
        self.expect_stdout = Some(Expect::Is(expected.into()));
        self
    }

    pub fn expect_stdout_contains(mut self, expected: impl Into<String>) -> Cmd {
        self.expect_stdout = Some(Expect::Contains(expected.into()));
        self
    }

    pub fn into_step(self, name: impl Into<String>) -> Step {
        Step {
            name: name.into(),
            action: Action::Run(self),
        }
    }
}

impl Step {
    pub fn new(name: impl Into<String>, action: Action) -> Step {
        Step {
            name: name.into(),
            action,
        }
    }

    /// The step's command, if it compiles Rust through the cache wrapper.
    pub fn compile_cmd(&self) -> Option<&Cmd> {
        match &self.action {
            Action::Run(cmd) if cmd.compiles => Some(cmd),
            _ => None,
        }
    }

    /// Where the step's time goes in the report: compiling, or the part its name starts with.
    pub fn phase(&self) -> Phase {
        if self.compile_cmd().is_some() {
            return Phase::Compile;
        }
        match self.name.split_once(':').map(|(part, _)| part) {
            Some("tools") => Phase::Tools,
            Some("crates") => Phase::Crates,
            Some("smoke") => Phase::Smoke,
            _ => Phase::Other,
        }
    }
}

/// The parts of a run's wall time the report names (bench-cache's runner scenario prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Tools,
    Crates,
    Compile,
    Smoke,
    Other,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Tools,
        Phase::Crates,
        Phase::Compile,
        Phase::Smoke,
        Phase::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Tools => "tools",
            Phase::Crates => "crates",
            Phase::Compile => "compile",
            Phase::Smoke => "smoke",
            Phase::Other => "other",
        }
    }
}

/// A command as `--dry-run` shows it: environment (secrets masked), program and arguments, expectation.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.env.iter() {
            match value {
                Some(v) => writeln!(f, "    {name}={}", shell_quote(&mask_value(name, v)))?,
                None => writeln!(f, "    unset {name}")?,
            }
        }
        write!(
            f,
            "    {}",
            shell_quote(&self.program.display().to_string())
        )?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        writeln!(f)?;
        if let Some(expected) = &self.expect_stdout {
            writeln!(f, "    expect {expected}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Run(cmd) => write!(f, "[{}] (in {})\n{cmd}", self.name, cmd.cwd.display()),
            Action::CleanDir(dir) => writeln!(f, "[{}] clean {}", self.name, dir.display()),
            Action::ExpectFile(path) => writeln!(f, "[{}] expect {}", self.name, path.display()),
            Action::MakeDirs(dirs) => {
                writeln!(f, "[{}] create if missing", self.name)?;
                dirs.iter()
                    .try_for_each(|p| writeln!(f, "    {}", p.display()))
            }
            Action::CopyFile { from, to } => {
                writeln!(
                    f,
                    "[{}] copy {} to {}",
                    self.name,
                    from.display(),
                    to.display()
                )
            }
            Action::CopyInto { files, dir } => {
                writeln!(f, "[{}] copy into {}", self.name, dir.display())?;
                files
                    .iter()
                    .try_for_each(|p| writeln!(f, "    {}", p.display()))
            }
            Action::WriteFile {
                path, executable, ..
            } => {
                let mode = if *executable { " (executable)" } else { "" };
                writeln!(f, "[{}] write {}{mode}", self.name, path.display())
            }
            Action::CheckElf {
                path,
                machine,
                max_glibc_minor,
            } => writeln!(
                f,
                "[{}] check {} is ELF machine {machine} and needs at most GLIBC_2.{max_glibc_minor}",
                self.name,
                path.display()
            ),
            Action::CheckMachO { path, cputype } => writeln!(
                f,
                "[{}] check {} is Mach-O for cputype {cputype:#x}",
                self.name,
                path.display()
            ),
            Action::Notice(text) => writeln!(f, "[{}] notice: {text}", self.name),
            Action::Trim(trim) => writeln!(f, "[{}] {}", self.name, trim.describe()),
        }
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command of the step named `name`, for plan tables.
#[cfg(test)]
pub fn cmd_named<'a>(steps: &'a [Step], name: &str) -> &'a Cmd {
    let step =
        (steps.iter().find(|s| s.name == name)).unwrap_or_else(|| panic!("no step {name:?}"));
    match &step.action {
        Action::Run(cmd) => cmd,
        _ => panic!("step {name:?} runs no command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn dry_run_text_never_holds_a_secret() {
        let step = Cmd::new("cargo", Path::new("/w"))
            .env("SCCACHE_REDIS_ENDPOINT", "redis://:hunter2@h:1")
            .env("ACTIONS_RUNTIME_TOKEN", "tok-123")
            .args(["build"])
            .into_step("build");
        let text = step.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("tok-123"),
            "{text}"
        );
        assert!(text.contains("ACTIONS_RUNTIME_TOKEN='***'"), "{text}");
    }
}
