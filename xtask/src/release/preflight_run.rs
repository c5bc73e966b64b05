//! The preflight as publish runs it, before any upload and also under --dry-run: every registry asked
//! (`preflight_ask.rs`) and judged (`preflight.rs`), every problem gathered into one refusal, so that
//! nothing is uploaded anywhere unless everything is fine; what is out already comes back for the plan.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::manifest::Manifest;
use super::names::pep440;
use super::npm_metadata::github_repository;
use super::preflight::{self, Ci, NpmVerdict, PypiAnswer, PypiVerdict, PypiWhere};
use super::preflight_ask::{self, PypiTools};
use super::publish::{Found, NpmPackage, file_name};
use super::registries::{Registries, pypi_index};
use crate::exec::Executor;
use crate::host::HostEnv;
use crate::tools::ExtraVenv;

pub fn preflight(
    exec: &Executor,
    host: &HostEnv,
    manifest: &Manifest,
    release: &Path,
    npm_packages: &[NpmPackage],
) -> Result<(Registries, Found)> {
    let ci = Ci {
        github: host.github_actions(),
        oidc: preflight_ask::oidc(host),
    };
    let v = &manifest.version;
    let npm = host.npm.clone().context("npm is not on PATH")?;
    let (npm_registry, npm_verdict) = npm_side(ci, host, &npm, npm_packages, v)?;
    let mut problems = npm_verdict.problems;
    let tools = PypiTools::new(&host.tools.extra_venv(ExtraVenv::Publish))?;
    let (pypi_upload, pypi_index, pypi_verdict) = ask_pypi(ci, host, &tools, v)?;
    problems.extend(pypi_verdict.problems);
    let found = Found {
        pypi_out: pypi_verdict.out,
        npm_out: npm_verdict.out,
        trusted: pypi_verdict.trusted,
    };
    let files: Vec<PathBuf> = (manifest.python.iter())
        .filter(|f| !found.pypi_out.contains(file_name(f)))
        .map(|f| release.join(f))
        .collect();
    let dirs: Vec<PathBuf> = (npm_packages.iter())
        .filter(|p| !found.npm_out.contains(&p.name))
        .map(|p| p.dir.clone())
        .collect();
    problems.extend(preflight_ask::content_problems(
        &tools.twine,
        &npm,
        &files,
        &dirs,
    )?);
    if !problems.is_empty() {
        bail!(
            "nothing was uploaded: the preflight found what would stop the release:\n  - {}",
            exec.mask(&problems.join("\n  - "))
        );
    }
    let registries = Registries {
        pypi_upload,
        pypi_index,
        npm: npm_registry,
    };
    Ok((registries, found))
}

/// npm's registry and its verdict, the provenance problems included.
fn npm_side(
    ci: Ci,
    host: &HostEnv,
    npm: &Path,
    npm_packages: &[NpmPackage],
    version: &str,
) -> Result<(String, NpmVerdict)> {
    let registry = preflight_ask::npm_registry(npm)?;
    let names: Vec<String> = npm_packages.iter().map(|p| p.name.clone()).collect();
    let answer = preflight_ask::ask_npm(npm, &registry, &names)?;
    let mut verdict = preflight::judge_npm(ci, &answer, version);
    // npm's trusted publishing always makes provenance; NPM_CONFIG_PROVENANCE asks for it with a token.
    let provenance = (ci.github && answer.whoami.is_err())
        || (host.var("NPM_CONFIG_PROVENANCE")).is_some_and(|p| p.eq_ignore_ascii_case("true"));
    let running_in = github_repository(
        ci.github,
        host.var("GITHUB_SERVER_URL"),
        host.var("GITHUB_REPOSITORY"),
    );
    let jsons: Vec<(String, Value)> = (npm_packages.iter())
        .map(|p| (p.name.clone(), p.json.clone()))
        .collect();
    verdict.problems.extend(preflight::provenance_problems(
        &jsons,
        provenance,
        running_in.as_deref(),
    ));
    Ok((registry, verdict))
}

/// twine's upload URL, the index asked, and the PyPI side's verdict.
fn ask_pypi(
    ci: Ci,
    host: &HostEnv,
    tools: &PypiTools,
    version: &str,
) -> Result<(String, String, PypiVerdict)> {
    let place = match tools.place()? {
        Ok(place) => place,
        Err(why) => {
            let unknown = "(twine's settings)".to_string();
            let place = PypiWhere {
                upload: unknown.clone(),
                password: Some("env".into()),
            };
            let verdict = preflight::judge_pypi(ci, &place, &PypiAnswer::Failed(why));
            return Ok((unknown.clone(), unknown, verdict));
        }
    };
    let (index, derived) = pypi_index(&place.upload, host.var("XTASK_PYPI_INDEX"));
    // The index lists the files by their PEP 440 names.
    let answer = tools.ask("boxspec", &pep440(version), &index, derived)?;
    let verdict = preflight::judge_pypi(ci, &place, &answer);
    Ok((place.upload, index, verdict))
}
