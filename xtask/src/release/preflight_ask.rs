//! publish's preflight, the asking half: each registry asked the way its own tool asks, every process
//! under the driver's deadline (a registry that accepts and never answers must not hold the release):
//! npm's `whoami` and `view` for the npm registry; twine's own settings and credentials for PyPI
//! (`pypi_preflight.py`, in the publish venv); `twine check` and `npm pack --dry-run` on what will go.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::preflight::{NpmAnswer, NpmKnown, PypiAnswer, PypiWhere};
use crate::env_delta::EnvDelta;
use crate::host::HostEnv;
use crate::process::{Finished, run_with_deadline};

/// A registry question gets this long (npm's own retries included).
const ASK: Duration = Duration::from_secs(120);

/// The PyPI questions, as a file in the publish venv.
pub const PYPI_SCRIPT: &str = include_str!("pypi_preflight.py");

/// npm's network retries for a question: one, soon (npm's default waits 10 s and more per retry).
const NPM_RETRY: [&str; 3] = [
    "--fetch-retries=1",
    "--fetch-retry-mintimeout=1000",
    "--fetch-retry-maxtimeout=5000",
];

fn run(program: &Path, args: &[&str]) -> Result<Finished> {
    run_with_deadline(program, args, &EnvDelta::new(), ASK)
}

/// npm's own first error line (`npm error 404 Not Found - GET …`), else the tool's telling line.
fn npm_why(done: &Finished) -> String {
    let lines = done
        .stderr
        .lines()
        .map(|l| l.trim_start_matches("npm error ").trim());
    let code = lines.clone().find_map(|l| l.strip_prefix("code "));
    let text = lines
        .clone()
        .find(|l| !l.starts_with("code ") && !l.is_empty());
    match (code, text) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        _ => done.why(),
    }
}

/// The registry as npm itself resolves it (its config files and `npm_config_*` variables).
pub fn npm_registry(npm: &Path) -> Result<String> {
    let done = run(npm, &["config", "get", "registry"])?;
    let registry = done.stdout.trim().to_string();
    match done.ok() && registry.starts_with("http") {
        true => Ok(registry),
        false => bail!("npm config get registry failed: {}", npm_why(&done)),
    }
}

/// Who npm is logged in as on `registry`, and what the registry knows of each package.
pub fn ask_npm(npm: &Path, registry: &str, names: &[String]) -> Result<NpmAnswer> {
    let mut whoami = vec!["whoami", "--registry", registry];
    whoami.extend(NPM_RETRY);
    let done = run(npm, &whoami)?;
    let whoami = match done.ok() {
        true => Ok(done.stdout.trim().to_string()),
        false => Err(npm_why(&done)),
    };
    let mut packages = Vec::new();
    for name in names {
        let mut view = vec!["view", name.as_str(), "--json", "--registry", registry];
        view.extend(NPM_RETRY);
        let done = run(npm, &view)?;
        let json: Value = serde_json::from_str(&done.stdout).unwrap_or(Value::Null);
        let known = match (done.ok(), json["error"]["code"].as_str()) {
            (true, _) => Ok(Some(NpmKnown::parse(&json))),
            (false, Some("E404")) => Ok(None),
            (false, Some(code)) => Err(format!(
                "{code} {}",
                json["error"]["summary"].as_str().unwrap_or("")
            )),
            (false, None) => Err(npm_why(&done)),
        };
        packages.push((name.clone(), known));
    }
    Ok(NpmAnswer {
        registry: registry.to_string(),
        whoami,
        packages,
    })
}

/// The publish venv's python and the PyPI script written beside it.
pub struct PypiTools {
    pub python: PathBuf,
    pub twine: PathBuf,
    pub script: PathBuf,
}

impl PypiTools {
    pub fn new(venv: &Path) -> Result<PypiTools> {
        let script = venv.join("pypi_preflight.py");
        std::fs::write(&script, PYPI_SCRIPT)
            .with_context(|| format!("writing {}", script.display()))?;
        Ok(PypiTools {
            python: venv.join("bin/python"),
            twine: venv.join("bin/twine"),
            script,
        })
    }

    fn script(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec![self.script.to_str().unwrap_or_default()];
        all.extend(args);
        let done = run(&self.python, &all)?;
        let json = serde_json::from_str(done.stdout.trim()).ok();
        match (done.ok(), json) {
            (true, Some(json)) => Ok(json),
            _ => bail!("the PyPI questions failed: {}", done.why()),
        }
    }

    /// twine's upload URL and where its password comes from.
    pub fn place(&self) -> Result<Result<PypiWhere, String>> {
        let json = self.script(&["where"])?;
        if let Some(why) = json["error"].as_str() {
            return Ok(Err(why.to_string()));
        }
        Ok(Ok(PypiWhere {
            upload: json["upload"].as_str().unwrap_or_default().to_string(),
            password: json["password"].as_str().map(str::to_string),
        }))
    }

    /// The version's files on `index` and whether the upload URL takes the credentials. `derived`:
    /// the index was guessed from the upload URL, so it must answer itself.
    pub fn ask(&self, name: &str, version: &str, index: &str, derived: bool) -> Result<PypiAnswer> {
        let mut args = vec!["ask", name, version, index];
        if derived {
            args.push("root");
        }
        Ok(PypiAnswer::parse(&self.script(&args)?))
    }
}

/// `twine check` on each file and `npm pack --dry-run` on each package directory: what the registries
/// would refuse for its content, found before the first upload.
pub fn content_problems(
    twine: &Path,
    npm: &Path,
    files: &[PathBuf],
    dirs: &[PathBuf],
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    if !files.is_empty() {
        // Warnings (no long description) are PyPI's to show, not to refuse: no --strict.
        let mut args = vec!["check"];
        args.extend(files.iter().filter_map(|f| f.to_str()));
        let mut plain = EnvDelta::new();
        plain.set("NO_COLOR", "1");
        let done = run_with_deadline(twine, &args, &plain, ASK)?;
        if !done.ok() {
            let mut failed: Vec<String> = (done.stdout.lines().chain(done.stderr.lines()))
                .filter(|l| l.contains("FAILED") || l.contains("ERROR"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            if failed.is_empty() {
                failed.push(done.why());
            }
            problems.push(format!(
                "PyPI: `twine check` refuses: {}",
                failed.join("; ")
            ));
        }
    }
    for dir in dirs {
        let done = run(
            npm,
            &[
                "pack",
                "--dry-run",
                "--json",
                dir.to_str().unwrap_or_default(),
            ],
        )?;
        if !done.ok() {
            problems.push(format!(
                "npm: `npm pack --dry-run {}` fails: {}",
                dir.display(),
                npm_why(&done)
            ));
        }
    }
    Ok(problems)
}

/// Whether the job may ask GitHub for an OIDC token (`permissions: id-token: write`).
pub fn oidc(host: &HostEnv) -> bool {
    [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ]
    .iter()
    .all(|name| host.var(name).is_some_and(|v| !v.is_empty()))
}
