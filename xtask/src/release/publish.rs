//! publish: the release directory (as `release` made it, `release.json` listing it) uploaded with the
//! ecosystems' own tools, each reading its own settings: twine for PyPI, `npm publish` for npm. The
//! preflight (`preflight_run.rs`) has asked every registry first; this plans one upload per file or
//! package of what is not out yet, in the order that limits what a failure half-way leaves behind, so
//! a publish stopped half-way is finished by running it again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::artifacts::{left_out, selected};
use super::manifest::Manifest;
use crate::exec::Executor;
use crate::flags::{ReleaseTargets, UsageError};
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
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

/// One npm package of the release: its directory, name and package.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPackage {
    pub dir: PathBuf,
    pub name: String,
    pub json: Value,
}

/// What the preflight found out: what is out already, and how PyPI is published to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// File names on the PyPI index.
    pub pypi_out: BTreeSet<String>,
    /// npm packages whose version is out.
    pub npm_out: BTreeSet<String>,
    /// twine uploads through trusted publishing: each file goes with its attestation.
    pub trusted: bool,
}

/// What publish runs after the preflight: signing (if any), then one upload per file or package.
pub struct Plan {
    pub prepare: Vec<Step>,
    /// (what is out once the step passed, the step)
    pub uploads: Vec<(String, Step)>,
}

/// npm's dist-tag for the version: a prerelease (`0.2.0-rc.1`) must not become `latest` (npm 11
/// refuses to publish one without `--tag`).
pub fn npm_tag(version: &str) -> &'static str {
    match version.contains('-') {
        true => "next",
        false => "latest",
    }
}

/// The file name of a manifest path (`python/x.whl` → `x.whl`): what an index lists.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The uploads of what is not out yet, in the order that limits what a failure half-way can leave
/// behind: the npm platform packages first (nobody installs them until the main package names them,
/// so a stop there shows users nothing, and npm's own checks at upload — token, provenance — fail on
/// the first of them, before PyPI has anything); then the PyPI files, wheels before the sdist (each
/// is seen at once, but pip takes the newest version with a file for its platform, so a partial
/// version holds back only the platforms still missing); the npm main package last, the one upload
/// that makes the Node release visible. Neither registry takes a name@version or file twice, so a
/// retry must not re-send what is out: publish asks (the preflight) and uploads the rest.
pub fn plan(
    host: &HostEnv,
    release: &Path,
    manifest: &Manifest,
    npm_packages: &[NpmPackage],
    found: &Found,
    npm_registry: &str,
) -> Plan {
    let tools = Tools::new(host, release, &manifest.version);
    let pending: Vec<&String> = (manifest.python.iter())
        .filter(|f| !found.pypi_out.contains(file_name(f)))
        .collect();
    let mut prepare = Vec::new();
    // PEP 740 attestations, signed with the job's OIDC identity: only with trusted publishing (PyPI
    // answers 400 to attestations sent with a token upload).
    if found.trusted && !pending.is_empty() {
        let sign = Cmd::new(&tools.python, release).args(["-m", "pypi_attestations", "sign"]);
        let sign = pending
            .iter()
            .fold(sign, |cmd, f| cmd.arg_path(&release.join(f)));
        prepare.push(sign.into_step("sign the PyPI attestations"));
    }
    let npm_pending = (npm_packages.iter()).filter(|p| !found.npm_out.contains(&p.name));
    let main = npm_packages.last().map(|p| p.name.as_str());
    let (main, platforms): (Vec<&NpmPackage>, Vec<&NpmPackage>) =
        npm_pending.partition(|p| Some(p.name.as_str()) == main);
    let mut uploads: Vec<(String, Step)> = (platforms.into_iter())
        .map(|p| tools.npm_publish(p, npm_registry))
        .collect();
    uploads.extend(
        pending
            .into_iter()
            .map(|f| tools.twine_upload(f, found.trusted)),
    );
    uploads.extend(main.into_iter().map(|p| tools.npm_publish(p, npm_registry)));
    Plan { prepare, uploads }
}

/// The programs publish runs, and where.
struct Tools<'a> {
    host: &'a HostEnv,
    release: &'a Path,
    version: &'a str,
    python: PathBuf,
    twine: PathBuf,
    npm: PathBuf,
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

    /// twine's own settings choose the index (no --repository-url): the one the preflight asked.
    fn twine_upload(&self, file: &str, trusted: bool) -> (String, Step) {
        let path = self.release.join(file);
        let mut cmd = Cmd::new(&self.twine, self.release).args([
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
        ]);
        cmd = match trusted {
            // twine pairs `<file>.publish.attestation` with `<file>` only when both are named.
            true => cmd
                .args(["--attestations"])
                .arg_path(&path)
                .arg_path(&PathBuf::from(format!(
                    "{}.publish.attestation",
                    path.display()
                ))),
            false => cmd.arg_path(&path),
        };
        let names = [
            "TWINE_REPOSITORY",
            "TWINE_REPOSITORY_URL",
            "TWINE_USERNAME",
            "TWINE_PASSWORD",
        ];
        (
            format!("{file} on PyPI"),
            self.pass(cmd, &names)
                .into_step(format!("twine upload {file}")),
        )
    }

    fn npm_publish(&self, p: &NpmPackage, registry: &str) -> (String, Step) {
        let cmd = Cmd::new(&self.npm, self.release)
            .args([
                "publish",
                "--tag",
                npm_tag(self.version),
                "--registry",
                registry,
            ])
            .arg_path(&p.dir);
        let cmd = self.pass(cmd, &["NODE_AUTH_TOKEN", "NPM_CONFIG_USERCONFIG"]);
        (
            format!("{}@{} on npm", p.name, self.version),
            cmd.into_step(format!("npm publish {}", p.name)),
        )
    }
}

/// Runs the signing, then the uploads; a failed upload names what is out, what is not, and what next.
pub fn execute(exec: &mut Executor, plan: &Plan) -> Result<()> {
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
                "publish stopped half-way. Uploaded now: {out}. Not out: {}. Run `cargo xtask \
                 publish` again to upload what is not out",
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
                json: json.clone(),
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
    use serde_json::json;
    use std::collections::BTreeSet;

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

    #[test]
    fn a_prerelease_is_published_under_next() {
        assert_eq!(npm_tag("0.1.0"), "latest");
        assert_eq!(npm_tag("0.2.0-rc.1"), "next");
    }

    /// A failed upload stops publishing, names what is out and what is not, and says how to go on
    /// (real processes: `true` uploads, `false` fails).
    #[test]
    fn a_failure_half_way_names_what_is_already_out() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let upload = |out: &str, program: &str| {
            let step = Cmd::new(program, Path::new("/")).into_step(format!("upload {out}"));
            (out.to_string(), step)
        };
        let plan = Plan {
            prepare: Vec::new(),
            uploads: vec![
                upload("boxspec-linux-x64-gnu@1 on npm", "true"),
                upload("b.whl on PyPI", "false"),
                upload("boxspec@1 on npm", "true"),
            ],
        };
        let err = execute(&mut Executor::new(&host, false), &plan).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains(
                "Uploaded now: boxspec-linux-x64-gnu@1 on npm. Not out: b.whl on PyPI, boxspec@1 on \
                 npm. Run `cargo xtask publish` again"
            ),
            "{text}"
        );
    }

    fn packages(release: &Path) -> Vec<NpmPackage> {
        ["boxspec-linux-x64-gnu", "boxspec"]
            .map(|name| NpmPackage {
                dir: release.join("npm").join(name),
                name: name.into(),
                json: json!({ "name": name }),
            })
            .to_vec()
    }

    fn upload_names(plan: &Plan) -> Vec<&str> {
        plan.uploads.iter().map(|(_, s)| s.name.as_str()).collect()
    }

    fn args(step: &Step) -> Vec<String> {
        match &step.action {
            crate::plan::Action::Run(cmd) => cmd.args.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// Trusted publishing: every file not out yet is signed first and uploaded with its own
    /// attestation named beside it (twine pairs only what it is given); a token upload sends none.
    #[test]
    fn attestations_go_with_their_files_under_trusted_publishing_only() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let release = Path::new("/r");
        for trusted in [true, false] {
            let found = Found {
                trusted,
                pypi_out: BTreeSet::from(["a.whl".to_string()]),
                ..Found::default()
            };
            let plan = plan(
                &host,
                release,
                &manifest(&ALL),
                &packages(release),
                &found,
                "http://r/",
            );
            assert_eq!(plan.prepare.len(), trusted as usize);
            let twine = (plan.uploads.iter())
                .find(|(_, s)| s.name == "twine upload python/boxspec-0.1.0.tar.gz")
                .unwrap();
            let sdist = "/r/python/boxspec-0.1.0.tar.gz";
            let want: Vec<String> = match trusted {
                true => vec![
                    "--attestations".into(),
                    sdist.into(),
                    format!("{sdist}.publish.attestation"),
                ],
                false => vec![sdist.into()],
            };
            assert!(args(&twine.1).ends_with(&want), "{:?}", args(&twine.1));
            if trusted {
                let text = plan.prepare[0].to_string();
                assert!(
                    text.ends_with("-m pypi_attestations sign /r/python/boxspec-0.1.0.tar.gz\n"),
                    "{text}"
                );
            }
        }
    }

    /// npm's platform packages, then PyPI's wheels and sdist, then npm's main package; only what is
    /// not out yet (a second publish after a failure); credentials reach the tools and never the
    /// plan's text; twine's own settings choose the index (no --repository-url).
    #[test]
    fn the_plan_uploads_what_is_not_out_in_the_safe_order() {
        let host = HostEnv::fixture(&[
            ("HOME", "/home/u"),
            ("TWINE_USERNAME", "ci"),
            ("TWINE_PASSWORD", "pypi-s3cret-token"),
            ("NODE_AUTH_TOKEN", "npm-s3cret-token"),
        ]);
        let release = Path::new("/src/boxspec/dist/release");
        let all = plan(
            &host,
            release,
            &manifest(&ALL),
            &packages(release),
            &Found::default(),
            "http://r/",
        );
        assert_eq!(
            upload_names(&all),
            [
                "npm publish boxspec-linux-x64-gnu",
                "twine upload python/a.whl",
                "twine upload python/boxspec-0.1.0.tar.gz",
                "npm publish boxspec"
            ]
        );
        let resumed = Found {
            pypi_out: BTreeSet::from(["a.whl".to_string()]),
            npm_out: BTreeSet::from(["boxspec-linux-x64-gnu".to_string()]),
            trusted: false,
        };
        let rest = plan(
            &host,
            release,
            &manifest(&ALL),
            &packages(release),
            &resumed,
            "http://r/",
        );
        assert_eq!(
            upload_names(&rest),
            [
                "twine upload python/boxspec-0.1.0.tar.gz",
                "npm publish boxspec"
            ]
        );
        let text: String = all.uploads.iter().map(|(_, s)| s.to_string()).collect();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("TWINE_PASSWORD='***'") && text.contains("NODE_AUTH_TOKEN='***'"),
            "{text}"
        );
        assert!(!text.contains("--repository-url"), "{text}");
        let npm = &all.uploads[0].1;
        assert!(args(npm).starts_with(&["publish".into(), "--tag".into(), "latest".into()]));
    }
}
