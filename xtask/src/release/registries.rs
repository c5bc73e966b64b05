//! The registries publish uploads to, and the question it asks each first: is this version out?
//! Registries and credentials are the tools' own variables (`TWINE_REPOSITORY_URL`, `TWINE_USERNAME`,
//! `TWINE_PASSWORD`; npm's config — `.npmrc`, `NPM_CONFIG_USERCONFIG`, `npm_config_registry` — with
//! `NODE_AUTH_TOKEN` as setup-node writes it).

use std::process::Command;

use anyhow::{Context, Result, anyhow};

use crate::flags::UsageError;
use crate::host::HostEnv;

/// twine's default upload URL, and PyPI's index.
pub const PYPI_UPLOAD: &str = "https://upload.pypi.org/legacy/";
const INDEXES: &[(&str, &str)] = &[
    ("https://upload.pypi.org/", "https://pypi.org/simple/"),
    ("https://test.pypi.org/", "https://test.pypi.org/simple/"),
];

/// Exits 1 naming what is out if the registry already has `name` at `version`; 0 if not (404 included).
/// PyPI: the simple index's file names; npm: the package document's versions.
pub const ALREADY_OUT: &str = r#"import json, os, re, sys, urllib.error, urllib.request
kind, base, name, version = sys.argv[1:5]
url = base.rstrip('/') + '/' + name + ('/' if kind == 'pypi' else '')
req = urllib.request.Request(url)
token = os.environ.get('NODE_AUTH_TOKEN')
if kind == 'npm' and token:
    req.add_header('Authorization', 'Bearer ' + token)
try:
    body = urllib.request.urlopen(req, timeout=60).read().decode()
except urllib.error.HTTPError as e:
    if e.code != 404:
        sys.exit(f'{url}: HTTP {e.code}')
    body = None
if body is None:
    out = []
elif kind == 'npm':
    out = [f'{name}@{version}'] if version in json.loads(body).get('versions', {}) else []
else:
    files = re.findall(r'>\s*([^<>\s]+)\s*</a>', body)
    out = [f for f in files if f.startswith(f'{name}-{version}-') or f == f'{name}-{version}.tar.gz']
if out:
    sys.exit(f'{name} {version} is already on {base}: ' + ', '.join(out))
print(f'{name} {version} is not on {base} yet')
"#;

/// Where the uploads go and where publish asks first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries {
    pub pypi_upload: String,
    pub pypi_index: String,
    pub npm: String,
}

/// The PyPI index to ask: `XTASK_PYPI_INDEX`, else PyPI's (or TestPyPI's) for their upload URLs. (Not pip's
/// `PIP_INDEX_URL`: that also decides where the driver installs its own tools from.)
pub fn pypi_index(upload: &str, asked: Option<&str>) -> Result<String, UsageError> {
    if let Some(index) = asked.filter(|i| !i.is_empty()) {
        return Ok(index.to_string());
    }
    (INDEXES.iter())
        .find(|(prefix, _)| upload.starts_with(prefix))
        .map(|(_, index)| index.to_string())
        .ok_or_else(|| {
            UsageError(format!(
                "TWINE_REPOSITORY_URL={upload} is not PyPI: set XTASK_PYPI_INDEX to its simple index, so \
                 publish can see whether the version is out before uploading"
            ))
        })
}

impl Registries {
    /// The registries the host's settings name.
    pub fn of(host: &HostEnv) -> Result<Registries> {
        let pypi_upload = host.var("TWINE_REPOSITORY_URL").unwrap_or(PYPI_UPLOAD);
        Ok(Registries {
            pypi_upload: pypi_upload.to_string(),
            pypi_index: pypi_index(pypi_upload, host.var("XTASK_PYPI_INDEX"))?,
            npm: npm_registry(host)?,
        })
    }

    /// Whether uploads go to PyPI itself (or TestPyPI).
    pub fn is_pypi(&self) -> bool {
        INDEXES
            .iter()
            .any(|(upload, _)| self.pypi_upload.starts_with(upload))
    }
}

/// npm's registry as npm itself resolves it (its config files and `npm_config_*` variables).
fn npm_registry(host: &HostEnv) -> Result<String> {
    let npm = host.npm.clone().context("npm is not on PATH")?;
    let out = Command::new(&npm)
        .args(["config", "get", "registry"])
        .current_dir(&host.root)
        .output()
        .with_context(|| format!("running {} config get registry", npm.display()))?;
    let registry = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match out.status.success() && registry.starts_with("http") {
        true => Ok(registry),
        false => Err(anyhow!(
            "npm config get registry failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_asked_first_matches_the_upload_url() {
        let cases = [
            (PYPI_UPLOAD, None, Ok("https://pypi.org/simple/")),
            (
                "https://test.pypi.org/legacy/",
                None,
                Ok("https://test.pypi.org/simple/"),
            ),
            (
                "http://127.0.0.1:8080/",
                Some("http://127.0.0.1:8080/simple/"),
                Ok("http://127.0.0.1:8080/simple/"),
            ),
            ("http://127.0.0.1:8080/", None, Err("set XTASK_PYPI_INDEX")),
        ];
        for (upload, pip, want) in cases {
            match (pypi_index(upload, pip), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(got), Err(want)) => assert!(got.0.contains(want), "{}", got.0),
                (got, want) => panic!("{upload}: {got:?}, want {want:?}"),
            }
        }
    }
}
