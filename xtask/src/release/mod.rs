//! The release room. `release` checks the build jobs' artifacts as a set (`artifacts.rs`: every target,
//! `version.rs`: one version) and only then lays them out for the registries in the dist directory's
//! `release/`: `python/` (`python.rs`), `npm/` (`npm.rs`), `runtime/` (`archives.rs`), and
//! `release.json` (`manifest.rs`), written last. `publish` uploads what the manifest lists
//! (`publish.rs`), asking the registries first (`registries.rs`). Every shipped name is in `names.rs`.

pub mod archives;
pub mod artifacts;
pub mod manifest;
pub mod names;
pub mod npm;
pub mod npm_metadata;
pub mod preflight;
pub mod preflight_ask;
pub mod preflight_run;
pub mod publish;
pub mod python;
pub mod registries;
pub mod version;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::flags::UsageError;
use crate::host::HostEnv;
use crate::plan::{Action, Step};
use crate::platform::Platform;
pub use artifacts::Pieces;
use manifest::Manifest;
use names::MANIFEST;

/// Where `release` lays the release out and `publish` takes it from.
pub fn release_dir(host: &HostEnv) -> PathBuf {
    host.dist().join("release")
}

/// Everything release reads, gathered before planning.
pub struct Release<'a> {
    pub host: &'a HostEnv,
    pub artifacts: PathBuf,
    pub version: String,
    pub platforms: Vec<Platform>,
    pub pieces: Vec<Pieces>,
    /// sdks/node/package.json
    pub sdk_package: Value,
    pub out: PathBuf,
    /// Scratch space for staging archives and unpacking wheels.
    pub stage: PathBuf,
}

impl<'a> Release<'a> {
    /// The release of `platforms` that the artifacts directory holds, or everything wrong with it.
    pub fn gather(
        host: &'a HostEnv,
        artifacts: &Path,
        tag: Option<&str>,
        platforms: Vec<Platform>,
    ) -> Result<Release<'a>> {
        let artifacts = host.root.join(artifacts);
        if !artifacts.is_dir() {
            return Err(UsageError(format!(
                "--artifacts {}: no such directory",
                artifacts.display()
            ))
            .into());
        }
        // npm's provenance names the repository the job runs in: the packages must name the same.
        let running_in = npm_metadata::github_repository(
            host.github_actions(),
            host.var("GITHUB_SERVER_URL"),
            host.var("GITHUB_REPOSITORY"),
        );
        let sdk_package = read_json(&host.root.join("sdks/node/package.json"))?;
        let sdk_package = npm_metadata::with_repository(&sdk_package, running_in.as_deref())
            .map_err(anyhow::Error::msg)?;
        let files = artifacts::files_under(&artifacts)?;
        let version = version::release_version(host, &sdk_package, tag, &artifacts, &files)?;
        let pieces = match artifacts::inventory(&files, &version, &platforms) {
            Ok(pieces) => pieces,
            Err(problems) => bail!(
                "the artifacts in {} are not a release of {version} for {}:\n  {}",
                artifacts.display(),
                triples(&platforms),
                problems.join("\n  ")
            ),
        };
        artifacts::same_loaders(&artifacts, &pieces)?;
        Ok(Release {
            host,
            artifacts,
            version,
            platforms,
            pieces,
            sdk_package,
            out: release_dir(host),
            stage: host.temp.join("release-stage"),
        })
    }

    /// The release's targets, comma-separated.
    pub fn triples(&self) -> String {
        triples(&self.platforms)
    }
}

fn triples(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|p| p.triple)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every piece checked, then the layout, then the manifest.
pub fn plan(r: &Release) -> Vec<Step> {
    let out = &r.out;
    let mut steps = artifacts::checks(r);
    steps.extend([
        Step::new(
            format!("clean {}", r.host.relative(out)),
            Action::CleanDir(out.clone()),
        ),
        Step::new(
            "make the release directories",
            Action::MakeDirs(["python", "npm", "runtime"].map(|d| out.join(d)).to_vec()),
        ),
    ]);
    for p in &r.pieces {
        steps.extend(archives::archive_steps(r, p));
        steps.extend(npm::platform_steps(r, p));
        steps.push(python::wheel_step(r, p));
    }
    steps.extend(npm::main_steps(r));
    steps.extend(python::sdist_steps(r));
    steps.push(archives::checksums(r));
    // Last: publish takes a directory without it for a release that did not finish.
    let manifest = Manifest::new(&r.version, &r.platforms, npm::main_name(&r.sdk_package));
    steps.push(Step::new(
        MANIFEST,
        Action::WriteFile {
            path: out.join(MANIFEST),
            contents: manifest.to_text(),
            executable: false,
        },
    ));
    steps
}

/// Writes `value` as pretty JSON.
fn json_file(path: PathBuf, value: &Value) -> Action {
    let contents = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    Action::WriteFile {
        path,
        contents,
        executable: false,
    }
}

pub fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PLATFORMS;
    use crate::release::artifacts::tests::{V, all_files};
    use crate::release::artifacts::{inventory, named_tags};
    use serde_json::json;

    #[test]
    fn the_plan_checks_each_piece_and_writes_the_manifest_last() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let pieces = inventory(&all_files(&PLATFORMS), V, &PLATFORMS).unwrap();
        let r = Release {
            host: &host,
            artifacts: "/a".into(),
            version: V.into(),
            platforms: PLATFORMS.to_vec(),
            pieces,
            sdk_package: json!({"name": "boxspec", "version": V}),
            out: "/src/boxspec/dist/release".into(),
            stage: "/tmp/stage".into(),
        };
        let steps = plan(&r);
        let last = steps.last().unwrap();
        assert_eq!(last.name, MANIFEST);
        let first_layout = steps
            .iter()
            .position(|s| s.name == "clean dist/release")
            .unwrap();
        let last_check = (steps.iter())
            .rposition(|s| s.name.starts_with("check "))
            .unwrap();
        assert!(last_check < first_layout, "a check after the layout began");
        let elf = |path: &str, machine: u16| {
            steps.iter().any(|s| matches!(&s.action,
                Action::CheckElf { path: p, machine: m, max_glibc_minor: 17 } if p == Path::new(path) && *m == machine))
        };
        assert!(elf(
            "/a/build-runtime-x86_64-unknown-linux-gnu/runtime/boxspec",
            62
        ));
        assert!(elf(
            "/a/build-node-aarch64-unknown-linux-gnu/node/aarch64-unknown-linux-gnu/boxspec.linux-arm64-gnu.node",
            183
        ));
        assert!(elf(
            "/tmp/stage/wheel-aarch64-unknown-linux-gnu/boxspec/boxspec.abi3.so",
            183
        ));
        let macho = steps
            .iter()
            .filter(|s| {
                matches!(
                    &s.action,
                    Action::CheckMachO {
                        cputype: 0x0100_000c,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            macho, 3,
            "the aarch64 Mac binary, addon and wheel extension"
        );
        let tags = crate::plan::cmd_named(
            &steps,
            "check the tags of build-wheels-aarch64-apple-darwin/wheels/aarch64-apple-darwin/boxspec-0.1.0-cp39-abi3-macosx_11_0_arm64.whl",
        );
        assert_eq!(
            tags.expect_stdout,
            Some(crate::plan::Expect::Is(
                "cp39-abi3-macosx_11_0_arm64".into()
            ))
        );
        assert_eq!(
            named_tags(PLATFORMS[0]),
            "cp39-abi3-manylinux2014_x86_64 cp39-abi3-manylinux_2_17_x86_64"
        );
    }
}
