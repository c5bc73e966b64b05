//! publish: the release directory (as `release` made it, `release.json` listing it) uploaded with the
//! ecosystems' own tools: twine for PyPI, `npm publish` for npm. Both registries are asked first whether
//! the version is out; one file or package per upload, so a failure half-way names exactly what is out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::artifacts::{left_out, selected};
use super::manifest::Manifest;
use super::registries::{ALREADY_OUT, Registries};
use crate::exec::Executor;
use crate::flags::{ReleaseTargets, UsageError};
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::tools::ExtraVenv;

/// A partial release is published only when `--targets` names exactly its targets again. (`shown`:
/// the release directory as the messages name it.)
pub fn check_targets(
    manifest: &Manifest,
    targets: &ReleaseTargets,
    shown: &str,
) -> Result<(), UsageError> {
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
            "{shown} holds a partial release: {} (it leaves out {}); publish it only with \
             --targets {}",
            manifest.targets.join(", "),
            missing.join(", "),
            manifest.targets.join(",")
        ),
        false => format!(
            "--targets {} is not what {shown} holds: {}",
            wanted.join(","),
            manifest.targets.join(", ")
        ),
    }))
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
    let tools = Tools::new(host, release, &manifest.version);
    let mut checks = vec![
        Step::new(
            "the registry question",
            Action::WriteFile {
                path: tools.script.clone(),
                contents: ALREADY_OUT.into(),
                executable: false,
            },
        ),
        tools.already_out("pypi", &registries.pypi_index, "boxspec"),
    ];
    checks
        .extend((npm_packages.iter()).map(|p| tools.already_out("npm", &registries.npm, &p.name)));
    // PyPI's attestations (PEP 740), signed with the workflow's OIDC identity: on GitHub with
    // `id-token: write`, uploading to PyPI itself (elsewhere signing would open a browser).
    let attest = host.var("ACTIONS_ID_TOKEN_REQUEST_URL").is_some() && registries.is_pypi();
    let mut prepare = Vec::new();
    if attest {
        let files = manifest.python.iter().map(|f| release.join(f));
        let sign = Cmd::new(&tools.python, release).args(["-m", "pypi_attestations", "sign"]);
        let sign = files.fold(sign, |cmd, f| cmd.arg_path(&f));
        prepare.push(sign.into_step("sign the PyPI attestations"));
    }
    let mut uploads: Vec<(String, Step)> = (manifest.python.iter())
        .map(|file| tools.twine_upload(file, &registries.pypi_upload, attest))
        .collect();
    uploads.extend(
        npm_packages
            .iter()
            .map(|p| tools.npm_publish(p, &registries.npm)),
    );
    Plan {
        checks,
        prepare,
        uploads,
    }
}

/// The programs publish runs, and where.
struct Tools<'a> {
    host: &'a HostEnv,
    release: &'a Path,
    version: &'a str,
    python: PathBuf,
    twine: PathBuf,
    npm: PathBuf,
    script: PathBuf,
}

impl<'a> Tools<'a> {
    fn new(host: &'a HostEnv, release: &'a Path, version: &'a str) -> Tools<'a> {
        let venv = host.tools.extra_venv(ExtraVenv::Publish);
        Tools {
            host,
            release,
            version,
            python: venv.join("bin/python"),
            twine: venv.join("bin/twine"),
            npm: host.npm.clone().unwrap_or_else(|| "npm".into()),
            script: venv.join("already_out.py"),
        }
    }

    /// The tools read these themselves; set here so --dry-run shows them (secrets masked).
    fn pass(&self, mut cmd: Cmd, names: &[&str]) -> Cmd {
        for name in names {
            if let Some(value) = self.host.var(name) {
                cmd = cmd.env(name, value);
            }
        }
        cmd
    }

    fn already_out(&self, kind: &str, base: &str, name: &str) -> Step {
        let v = self.version;
        let cmd = (Cmd::new(&self.python, self.release).arg_path(&self.script))
            .args([kind, base, name, v]);
        (self.pass(cmd, &["NODE_AUTH_TOKEN"]))
            .into_step(format!("{kind}: is {name} {v} out already?"))
    }

    fn twine_upload(&self, file: &str, upload: &str, attest: bool) -> (String, Step) {
        let mut cmd = Cmd::new(&self.twine, self.release)
            .args(["upload", "--non-interactive", "--disable-progress-bar"])
            .args(["--repository-url", upload]);
        if attest {
            cmd = cmd.args(["--attestations"]);
        }
        let cmd = cmd.arg_path(&self.release.join(file));
        let cmd = self.pass(cmd, &["TWINE_USERNAME", "TWINE_PASSWORD"]);
        (
            format!("{file} on {upload}"),
            cmd.into_step(format!("twine upload {file}")),
        )
    }

    fn npm_publish(&self, p: &NpmPackage, registry: &str) -> (String, Step) {
        let cmd = Cmd::new(&self.npm, self.release)
            .args(["publish", "--registry", registry])
            .arg_path(&p.dir);
        let cmd = self.pass(cmd, &["NODE_AUTH_TOKEN", "NPM_CONFIG_USERCONFIG"]);
        (
            format!("{}@{} on {registry}", p.name, self.version),
            cmd.into_step(format!("npm publish {}", p.name)),
        )
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

/// The npm packages the manifest lists, in its order, with the names their package.json files give.
pub fn npm_packages(release: &Path, manifest: &Manifest) -> Result<Vec<NpmPackage>> {
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
    Ok(npm_packages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::registries::PYPI_UPLOAD;
    use serde_json::json;

    fn manifest(targets: &[&str]) -> Manifest {
        serde_json::from_value(json!({
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
        let err = check_targets(&linux, &ReleaseTargets::default(), "dist/release")
            .unwrap_err()
            .0;
        assert!(
            err.starts_with("dist/release holds a partial release")
                && err.contains("leaves out x86_64-apple-darwin, aarch64-apple-darwin"),
            "{err}"
        );
        assert!(check_targets(&linux, &named(&ALL[..2]), "dist/release").is_ok());
        assert!(check_targets(&linux, &named(&ALL[..1]), "dist/release").is_err());
        assert!(check_targets(&manifest(&ALL), &ReleaseTargets::default(), "dist/release").is_ok());
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
