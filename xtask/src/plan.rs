//! A job is data: a list of steps. Jobs build it from (flags, host, cache setup) without running anything,
//! so `--dry-run` and the table tests see exactly what the executor will do.

use std::fmt;
use std::path::{Path, PathBuf};

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
    /// Fail unless the ELF file needs no `GLIBC_` symbol version newer than 2.`max_minor`.
    CheckGlibc {
        path: PathBuf,
        max_minor: u32,
    },
}

/// One child process. The environment is the driver's own plus `env`: `Some` sets, `None` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, Option<String>)>,
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
            env: Vec::new(),
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
        self.env.push((name.to_string(), Some(value.into())));
        self
    }

    /// The compile environment chosen by the cache decision and the shared build settings.
    pub fn compile_env(mut self, env: &[(String, Option<String>)]) -> Cmd {
        self.env.extend_from_slice(env);
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
}

/// Values of variables with these words in their names are never printed.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "CONNECTION_STRING",
];

pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// The printable form of an environment value: secrets become `***`, and so does the password of a
/// `scheme://user:password@host` URL.
pub fn mask_value(name: &str, value: &str) -> String {
    if is_secret_name(name) && !value.is_empty() {
        return "***".to_string();
    }
    match url_password(value) {
        Some(pw) => value.replacen(pw, "***", 1),
        None => value.to_string(),
    }
}

/// The password part of `scheme://[user]:password@host...`, if any.
pub fn url_password(value: &str) -> Option<&str> {
    let rest = &value[value.find("://")? + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let pw = &userinfo[userinfo.find(':')? + 1..];
    (!pw.is_empty()).then_some(pw)
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Run(cmd) => {
                writeln!(f, "[{}] (in {})", self.name, cmd.cwd.display())?;
                for (name, value) in &cmd.env {
                    match value {
                        Some(v) => writeln!(f, "    {name}={}", shell_quote(&mask_value(name, v)))?,
                        None => writeln!(f, "    unset {name}")?,
                    }
                }
                write!(f, "    {}", shell_quote(&cmd.program.display().to_string()))?;
                for arg in &cmd.args {
                    write!(f, " {}", shell_quote(arg))?;
                }
                writeln!(f)?;
                if let Some(expected) = &cmd.expect_stdout {
                    writeln!(f, "    expect {expected}")?;
                }
                Ok(())
            }
            Action::CleanDir(dir) => writeln!(f, "[{}] clean {}", self.name, dir.display()),
            Action::ExpectFile(path) => writeln!(f, "[{}] expect {}", self.name, path.display()),
            Action::MakeDirs(dirs) => {
                writeln!(f, "[{}] create if missing", self.name)?;
                dirs.iter()
                    .try_for_each(|p| writeln!(f, "    {}", p.display()))
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
            Action::CheckGlibc { path, max_minor } => {
                writeln!(
                    f,
                    "[{}] check {} needs at most GLIBC_2.{max_minor}",
                    self.name,
                    path.display()
                )
            }
        }
    }
}

/// Every secret value in the environment: whole values of secret-named variables, and URL passwords.
pub fn secret_values(vars: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut secrets: Vec<String> = vars
        .iter()
        .filter_map(|(name, value)| match is_secret_name(name) {
            true => Some(value.as_str()),
            false => url_password(value),
        })
        .filter(|v| v.len() >= 4)
        .map(str::to_string)
        .collect();
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

pub fn mask_text(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        let cases = [
            ("ACTIONS_RUNTIME_TOKEN", "abc", "***"),
            ("AWS_SECRET_ACCESS_KEY", "abc", "***"),
            (
                "SCCACHE_REDIS_ENDPOINT",
                "redis://:hunter2@10.0.0.1:6379",
                "redis://:***@10.0.0.1:6379",
            ),
            (
                "SCCACHE_REDIS_ENDPOINT",
                "redis://bob:pw@h/0",
                "redis://bob:***@h/0",
            ),
            (
                "SCCACHE_REDIS_ENDPOINT",
                "redis://127.0.0.1:6379",
                "redis://127.0.0.1:6379",
            ),
            ("SCCACHE_WEBDAV_ENDPOINT", "https://h/p@x", "https://h/p@x"),
            ("RUSTC_WRAPPER", "", ""),
        ];
        for (name, value, want) in cases {
            assert_eq!(mask_value(name, value), want, "{name}={value}");
        }
    }

    #[test]
    fn secrets_from_the_environment_are_masked_in_any_text() {
        let vars = [
            ("SCCACHE_REDIS_ENDPOINT", "redis://:hunter2@h:1"),
            ("ACTIONS_RUNTIME_TOKEN", "tok-123"),
            ("HOME", "/home/u"),
        ];
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let secrets = secret_values(&vars);
        assert_eq!(secrets, ["tok-123", "hunter2"]);
        let text = "error: connect redis://:hunter2@h:1 with tok-123 in /home/u";
        assert_eq!(
            mask_text(text, &secrets),
            "error: connect redis://:***@h:1 with *** in /home/u"
        );
    }

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
