//! publish: dist/release/ (as `release` made it, `release.json` listing it) uploaded with the ecosystems'
//! own tools: twine for PyPI, `npm publish` for npm. Registries and credentials are those tools' own
//! variables (`TWINE_REPOSITORY_URL`, `TWINE_USERNAME`, `TWINE_PASSWORD`; npm's config — `.npmrc`,
//! `NPM_CONFIG_USERCONFIG`, `npm_config_registry` — with `NODE_AUTH_TOKEN` as setup-node writes it). Both
//! registries are asked first whether the version is out; one file or package per upload, so a failure
//! half-way names exactly what is out.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::pipeline::extra_installed;
use super::release::{MANIFEST, left_out, selected};
use crate::exec::Executor;
use crate::flags::{Global, ReleaseTargets, UsageError};
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::tools::ExtraVenv;

/// twine's default upload URL, and PyPI's index.
const PYPI_UPLOAD: &str = "https://upload.pypi.org/legacy/";
const INDEXES: &[(&str, &str)] = &[
    ("https://upload.pypi.org/", "https://pypi.org/simple/"),
    ("https://test.pypi.org/", "https://test.pypi.org/simple/"),
];

/// Exits 1 naming what is out if the registry already has `name` at `version`; 0 if not (404 included).
/// PyPI: the simple index's file names; npm: the package document's versions.
const ALREADY_OUT: &str = r#"import json, os, re, sys, urllib.error, urllib.request
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

/// What `release` wrote into release.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub version: String,
    pub targets: Vec<String>,
    /// Files for twine, relative to dist/release/.
    pub python: Vec<String>,
    /// npm package directories, relative to dist/release/, in upload order.
    pub npm: Vec<String>,
}

impl Manifest {
    pub fn parse(json: &Value) -> Option<Manifest> {
        let list = |key: &str| -> Option<Vec<String>> {
            (json[key].as_array()?.iter())
                .map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        Some(Manifest {
            version: json["version"].as_str()?.to_string(),
            targets: list("targets")?,
            python: list("python")?,
            npm: list("npm")?,
        })
    }
}

/// A partial release is published only when `--targets` names exactly its targets again.
pub fn check_targets(manifest: &Manifest, targets: &ReleaseTargets) -> Result<(), UsageError> {
    let wanted: Vec<&str> = selected(targets)?.iter().map(|p| p.triple).collect();
    if wanted == manifest.targets {
        return Ok(());
    }
    let platforms: Vec<_> = (crate::platform::PLATFORMS.into_iter())
        .filter(|p| manifest.targets.iter().any(|t| t == p.triple))
        .collect();
    let missing = left_out(&platforms);
    Err(UsageError(match targets.only.is_empty() {
        true => format!(
            "dist/release holds a partial release: {} (it leaves out {}); publish it only with \
             --targets {}",
            manifest.targets.join(", "),
            missing.join(", "),
            manifest.targets.join(",")
        ),
        false => format!(
            "--targets {} is not what dist/release holds: {}",
            wanted.join(","),
            manifest.targets.join(", ")
        ),
    }))
}

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

/// One npm package of the release: its directory and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPackage {
    pub dir: PathBuf,
    pub name: String,
}

/// What publish runs: first whether each registry has the version (any yes stops it before an upload),
/// then each upload on its own.
pub struct Plan {
    pub checks: Vec<Step>,
    /// After the checks, before the first upload (signing the attestations).
    pub prepare: Vec<Step>,
    /// (what is out once the step passed, the step)
    pub uploads: Vec<(String, Step)>,
}

pub fn plan(
    host: &HostEnv,
    release: &Path,
    manifest: &Manifest,
    npm_packages: &[NpmPackage],
    registries: &Registries,
) -> Plan {
    let venv = host.tools.extra_venv(ExtraVenv::Publish);
    let python = venv.join("bin/python");
    let v = &manifest.version;
    let npm = host.npm.clone().unwrap_or_else(|| "npm".into());
    // The tools read these themselves; set here so --dry-run shows them (secrets masked).
    let pass = |mut cmd: Cmd, names: &[&str]| {
        for name in names {
            if let Some(value) = host.var(name) {
                cmd = cmd.env(name, value);
            }
        }
        cmd
    };
    let script = venv.join("already_out.py");
    let already_out = |kind: &str, base: &str, name: &str| {
        let cmd = (Cmd::new(&python, release).arg_path(&script)).args([kind, base, name, v]);
        pass(cmd, &["NODE_AUTH_TOKEN"]).into_step(format!("{kind}: is {name} {v} out already?"))
    };
    let mut checks = vec![
        Step::new(
            "the registry question",
            Action::WriteFile {
                path: script.clone(),
                contents: ALREADY_OUT.into(),
                executable: false,
            },
        ),
        already_out("pypi", &registries.pypi_index, "boxspec"),
    ];
    checks.extend((npm_packages.iter()).map(|p| already_out("npm", &registries.npm, &p.name)));
    // PyPI's attestations (PEP 740), signed with the workflow's OIDC identity: on GitHub with
    // `id-token: write`, uploading to PyPI itself (elsewhere signing would open a browser).
    let attest = host.var("ACTIONS_ID_TOKEN_REQUEST_URL").is_some()
        && INDEXES
            .iter()
            .any(|(upload, _)| registries.pypi_upload.starts_with(upload));
    let mut prepare = Vec::new();
    if attest {
        let files = manifest.python.iter().map(|f| release.join(f));
        let sign = Cmd::new(&python, release).args(["-m", "pypi_attestations", "sign"]);
        let sign = files.fold(sign, |cmd, f| cmd.arg_path(&f));
        prepare.push(sign.into_step("sign the PyPI attestations"));
    }
    let twine = venv.join("bin/twine");
    let mut uploads: Vec<(String, Step)> = (manifest.python.iter())
        .map(|file| {
            let mut cmd = Cmd::new(&twine, release)
                .args(["upload", "--non-interactive", "--disable-progress-bar"])
                .args(["--repository-url", &registries.pypi_upload]);
            if attest {
                cmd = cmd.args(["--attestations"]);
            }
            let cmd = cmd.arg_path(&release.join(file));
            let cmd = pass(cmd, &["TWINE_USERNAME", "TWINE_PASSWORD"]);
            (
                format!("{file} on {}", registries.pypi_upload),
                cmd.into_step(format!("twine upload {file}")),
            )
        })
        .collect();
    uploads.extend(npm_packages.iter().map(|p| {
        let cmd = Cmd::new(&npm, release)
            .args(["publish", "--registry", &registries.npm])
            .arg_path(&p.dir);
        let cmd = pass(cmd, &["NODE_AUTH_TOKEN", "NPM_CONFIG_USERCONFIG"]);
        (
            format!("{}@{v} on {}", p.name, registries.npm),
            cmd.into_step(format!("npm publish {}", p.name)),
        )
    }));
    Plan {
        checks,
        prepare,
        uploads,
    }
}

/// Runs the checks, then the uploads; a failed upload names what is already out and what is not.
pub fn execute(exec: &mut Executor, plan: &Plan) -> Result<()> {
    // Every registry is asked, so the refusal names everything already out.
    let refused: Vec<String> = (plan.checks.iter())
        .filter_map(|step| exec.run_step(step, None).err())
        .map(|err| format!("{err:#}"))
        .collect();
    if !refused.is_empty() {
        bail!(
            "nothing was uploaded: a registry already has this version, or cannot say:\n  {}",
            refused.join("\n  ")
        );
    }
    for step in &plan.prepare {
        exec.run_step(step, None).context("nothing was uploaded")?;
    }
    for (i, (_, step)) in plan.uploads.iter().enumerate() {
        if let Err(err) = exec.run_step(step, None) {
            let out: Vec<&str> = plan.uploads[..i].iter().map(|(o, _)| o.as_str()).collect();
            let not: Vec<&str> = plan.uploads[i..].iter().map(|(o, _)| o.as_str()).collect();
            let out = match out.is_empty() {
                true => "nothing".to_string(),
                false => out.join(", "),
            };
            return Err(err.context(format!(
                "publish stopped half-way. Already out: {out}. Not out: {}",
                not.join(", ")
            )));
        }
    }
    Ok(())
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

pub fn run(global: &Global, host: &HostEnv, targets: &ReleaseTargets) -> Result<()> {
    let release = host.dist().join("release");
    let path = release.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        UsageError(format!(
            "{} is missing: run `cargo xtask release` first (a release that did not finish has none)",
            path.display()
        ))
    })?;
    let json: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let manifest =
        (Manifest::parse(&json)).with_context(|| format!("{} is malformed", path.display()))?;
    check_targets(&manifest, targets)?;
    let pypi_upload = host.var("TWINE_REPOSITORY_URL").unwrap_or(PYPI_UPLOAD);
    let registries = Registries {
        pypi_upload: pypi_upload.to_string(),
        pypi_index: pypi_index(pypi_upload, host.var("XTASK_PYPI_INDEX"))?,
        npm: npm_registry(host)?,
    };
    let mut npm_packages = Vec::new();
    for dir in &manifest.npm {
        let dir = release.join(dir);
        let package = dir.join("package.json");
        let text = std::fs::read_to_string(&package)
            .with_context(|| format!("reading {}", package.display()))?;
        let json: Value = serde_json::from_str(&text)?;
        match json["name"].as_str() {
            Some(name) => npm_packages.push(NpmPackage {
                name: name.to_string(),
                dir,
            }),
            None => bail!("{} has no name", package.display()),
        }
    }
    for file in &manifest.python {
        crate::checks::expect_file(&release.join(file))?;
    }
    let mut exec = Executor::new(host, global.dry_run);
    extra_installed(&mut exec, host, ExtraVenv::Publish)?;
    exec.info(&format!(
        "publishing boxspec {} for {}: PyPI {} (asked first: {}), npm {}",
        manifest.version,
        manifest.targets.join(", "),
        registries.pypi_upload,
        registries.pypi_index,
        registries.npm
    ));
    let plan = plan(host, &release, &manifest, &npm_packages, &registries);
    execute(&mut exec, &plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(targets: &[&str]) -> Manifest {
        Manifest::parse(&json!({
            "version": "0.1.0",
            "targets": targets,
            "python": ["python/a.whl", "python/boxspec-0.1.0.tar.gz"],
            "npm": ["npm/boxspec-linux-x64-gnu", "npm/boxspec"],
            "runtime": [],
        }))
        .unwrap()
    }

    const ALL: [&str; 4] = [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ];

    /// A release that leaves targets out is published only when --targets names them again.
    #[test]
    fn a_partial_release_needs_its_targets_named_again() {
        let linux = manifest(&ALL[..2]);
        let named = |t: &[&str]| ReleaseTargets {
            only: t.iter().map(|s| s.to_string()).collect(),
        };
        let err = check_targets(&linux, &ReleaseTargets::default())
            .unwrap_err()
            .0;
        assert!(
            err.contains("partial release")
                && err.contains("leaves out x86_64-apple-darwin, aarch64-apple-darwin"),
            "{err}"
        );
        assert!(check_targets(&linux, &named(&ALL[..2])).is_ok());
        assert!(check_targets(&linux, &named(&ALL[..1])).is_err());
        assert!(check_targets(&manifest(&ALL), &ReleaseTargets::default()).is_ok());
    }

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

    /// A failed upload stops publishing and names what is out and what is not (real processes: `true`
    /// uploads, `false` fails).
    #[test]
    fn a_failure_half_way_names_what_is_already_out() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let upload = |out: &str, program: &str| {
            let step = Cmd::new(program, Path::new("/")).into_step(format!("upload {out}"));
            (out.to_string(), step)
        };
        let plan = Plan {
            checks: vec![Cmd::new("true", Path::new("/")).into_step("ask")],
            prepare: Vec::new(),
            uploads: vec![
                upload("a.whl on PyPI", "true"),
                upload("b.whl on PyPI", "false"),
                upload("boxspec@1 on npm", "true"),
            ],
        };
        let err = execute(&mut Executor::new(&host, false), &plan).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("Already out: a.whl on PyPI. Not out: b.whl on PyPI, boxspec@1 on npm"),
            "{text}"
        );
        let refused = Plan {
            checks: vec![
                Cmd::new("false", Path::new("/")).into_step("ask PyPI"),
                Cmd::new("false", Path::new("/")).into_step("ask npm"),
            ],
            prepare: Vec::new(),
            uploads: vec![upload("c.whl", "true")],
        };
        let text = format!(
            "{:#}",
            execute(&mut Executor::new(&host, false), &refused).unwrap_err()
        );
        assert!(
            text.contains("nothing was uploaded")
                && text.contains("ask PyPI")
                && text.contains("ask npm"),
            "{text}"
        );
    }

    /// On GitHub with the OIDC token, uploads to PyPI carry attestations signed before the first upload;
    /// anywhere else (a laptop would get a browser prompt) and to other indexes, none.
    #[test]
    fn attestations_are_signed_for_pypi_on_github_only() {
        let oidc = (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "https://token.actions.example/",
        );
        let registries = |upload: &str| Registries {
            pypi_upload: upload.into(),
            pypi_index: "https://pypi.org/simple/".into(),
            npm: "https://registry.npmjs.org/".into(),
        };
        // (environment, upload URL, attested)
        let cases = [
            (vec![oidc], PYPI_UPLOAD, true),
            (vec![oidc], "https://test.pypi.org/legacy/", true),
            (vec![], PYPI_UPLOAD, false),
            (vec![oidc], "http://127.0.0.1:1/", false),
        ];
        for (vars, upload, attested) in cases {
            let mut vars = vars;
            vars.push(("HOME", "/home/u"));
            let host = HostEnv::fixture(&vars);
            let release = Path::new("/r");
            let plan = plan(&host, release, &manifest(&ALL), &[], &registries(upload));
            assert_eq!(plan.prepare.len(), attested as usize, "{upload}");
            for (_, step) in &plan.uploads {
                let crate::plan::Action::Run(cmd) = &step.action else {
                    panic!()
                };
                assert_eq!(
                    cmd.args.contains(&"--attestations".into()),
                    attested,
                    "{upload}"
                );
            }
            if attested {
                let text = plan.prepare[0].to_string();
                assert!(
                    text.contains(
                        "-m pypi_attestations sign /r/python/a.whl /r/python/boxspec-0.1.0.tar.gz"
                    ),
                    "{text}"
                );
            }
        }
    }

    fn fixture_plan(host: &HostEnv) -> Plan {
        let release = Path::new("/src/boxspec/dist/release");
        let packages = ["boxspec-linux-x64-gnu", "boxspec"].map(|name| NpmPackage {
            dir: release.join("npm").join(name),
            name: name.into(),
        });
        let registries = Registries {
            pypi_upload: "http://127.0.0.1:1/".into(),
            pypi_index: "http://127.0.0.1:1/simple/".into(),
            npm: "http://127.0.0.1:2/".into(),
        };
        plan(host, release, &manifest(&ALL), &packages, &registries)
    }

    /// Every registry is asked before the first upload; one upload per file or package, the main npm
    /// package last; credentials reach the tools and never the plan's text.
    #[test]
    fn the_plan_asks_every_registry_then_uploads_one_by_one() {
        let host = HostEnv::fixture(&[
            ("HOME", "/home/u"),
            ("TWINE_USERNAME", "ci"),
            ("TWINE_PASSWORD", "pypi-s3cret-token"),
            ("NODE_AUTH_TOKEN", "npm-s3cret-token"),
        ]);
        let plan = fixture_plan(&host);
        let checks: Vec<&str> = plan.checks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            checks,
            [
                "the registry question",
                "pypi: is boxspec 0.1.0 out already?",
                "npm: is boxspec-linux-x64-gnu 0.1.0 out already?",
                "npm: is boxspec 0.1.0 out already?"
            ]
        );
        let uploads: Vec<&str> = plan.uploads.iter().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(
            uploads,
            [
                "twine upload python/a.whl",
                "twine upload python/boxspec-0.1.0.tar.gz",
                "npm publish boxspec-linux-x64-gnu",
                "npm publish boxspec"
            ]
        );
        let twine = crate::plan::cmd_named(
            &plan
                .uploads
                .iter()
                .map(|(_, s)| s.clone())
                .collect::<Vec<_>>(),
            "twine upload python/a.whl",
        )
        .clone();
        assert_eq!(
            twine.env.get("TWINE_PASSWORD"),
            Some(Some("pypi-s3cret-token"))
        );
        let text: String = (plan
            .checks
            .iter()
            .chain(plan.uploads.iter().map(|(_, s)| s)))
        .map(|s| s.to_string())
        .collect();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("TWINE_PASSWORD='***'") && text.contains("NODE_AUTH_TOKEN='***'"),
            "{text}"
        );
        for step in &plan.checks[1..] {
            assert!(
                matches!(&step.action, Action::Run(cmd) if cmd.args.contains(&"0.1.0".to_string()))
            );
        }
    }
}
