//! The artifact set: which pieces the build jobs' artifacts hold (every target, each of its three builds,
//! each piece named for its platform and version), and the checks that each piece is for its platform
//! (ELF machine and glibc floor, Mach-O cputype, the wheel's tags).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Release;
use super::names::{
    LOADER, WHEEL_EXTENSION, WHEEL_TAG_PREFIX, artifact_name, is_piece, piece_name, wheel_license,
};
use crate::build::BuildJob;
use crate::flags::{ReleaseTargets, UsageError};
use crate::plan::{Action, Cmd, Step};
use crate::platform::{Os, PLATFORMS, Platform};

/// The platforms a release holds: all shipped ones, or the ones `--targets` names.
pub fn selected(targets: &ReleaseTargets) -> Result<Vec<Platform>, UsageError> {
    for triple in &targets.only {
        Platform::shipped("--targets", triple)?;
    }
    Ok(PLATFORMS
        .into_iter()
        .filter(|p| targets.only.is_empty() || targets.only.iter().any(|t| t == p.triple))
        .collect())
}

/// The shipped targets a release of `platforms` leaves out (said loudly by release and publish).
pub fn left_out(platforms: &[Platform]) -> Vec<&'static str> {
    (PLATFORMS.iter())
        .filter(|p| !platforms.contains(p))
        .map(|p| p.triple)
        .collect()
}

/// One target's pieces, as paths relative to the artifacts directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    pub platform: Platform,
    pub binary: String,
    pub addon: String,
    pub wheel: String,
}

impl Pieces {
    /// The directory of the addon: the loader and package.json sit beside it.
    pub fn node_dir(&self) -> &str {
        self.addon.rsplit_once('/').map_or("", |(dir, _)| dir)
    }

    /// One of the files beside the addon.
    pub fn beside_addon(&self, file: &str) -> String {
        format!("{}/{file}", self.node_dir())
    }
}

/// The set of pieces in the artifacts directory (`files`: every file, relative, `/`-separated), or every
/// problem with it: a missing artifact or piece, an extra one, a piece for another platform or version.
pub fn inventory(
    files: &[String],
    version: &str,
    platforms: &[Platform],
) -> Result<Vec<Pieces>, Vec<String>> {
    let mut problems = Vec::new();
    let mut folders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for file in files {
        match file.split_once('/') {
            Some((folder, _)) => folders.entry(folder).or_default().push(file),
            None => problems.push(format!("extra file {file}: not inside an artifact folder")),
        }
    }
    let found = found_pieces(&folders, version, platforms, &mut problems);
    let mut pieces = Vec::new();
    for &platform in platforms {
        let mut path = |job: &BuildJob| {
            let folder = artifact_name(job, platform);
            if !folders.contains_key(folder.as_str()) {
                problems.push(format!("missing artifact {folder}"));
                return None;
            }
            let got = found.get(&(job.name(), platform.triple)).cloned();
            if got.is_none() {
                let want = piece_name(job, platform, version);
                problems.push(format!("missing piece: {folder} has no {want}"));
            }
            got
        };
        let (binary, addon, wheel) = (
            path(&BuildJob::Runtime),
            path(&BuildJob::Node),
            path(&BuildJob::Wheels),
        );
        if let (Some(binary), Some(addon), Some(wheel)) = (binary, addon, wheel) {
            pieces.push(Pieces {
                platform,
                binary,
                addon,
                wheel,
            });
        }
    }
    for p in &pieces {
        for file in LOADER.into_iter().chain(["package.json"]) {
            let path = p.beside_addon(file);
            if !files.contains(&path) {
                problems.push(format!("missing piece: {path} (beside {})", p.addon));
            }
        }
    }
    match problems.is_empty() {
        true => Ok(pieces),
        false => Err(problems),
    }
}

/// The one piece each (build job, target) folder ships, by (job name, triple); a folder that is no
/// build of a selected target, or a piece that is not the one it must ship, is a problem.
fn found_pieces(
    folders: &BTreeMap<&str, Vec<&str>>,
    version: &str,
    platforms: &[Platform],
    problems: &mut Vec<String>,
) -> BTreeMap<(&'static str, &'static str), String> {
    let mut found = BTreeMap::new();
    for (folder, files) in folders {
        let build = (PLATFORMS.iter()).find_map(|p| {
            (BuildJob::WARMED.iter())
                .find(|j| artifact_name(j, *p) == *folder)
                .map(|j| (j, *p))
        });
        let Some((job, platform)) = build else {
            problems.push(format!(
                "extra artifact {folder}: not `<build job>-<shipped target>`"
            ));
            continue;
        };
        if !platforms.contains(&platform) {
            problems.push(format!(
                "extra artifact {folder}: {} is not among --targets",
                platform.triple
            ));
            continue;
        }
        let want = piece_name(job, platform, version);
        for file in files {
            let name = file.rsplit('/').next().unwrap_or(file);
            if !is_piece(name) {
                continue;
            }
            let key = (job.name(), platform.triple);
            if name == want && !found.contains_key(&key) {
                found.insert(key, file.to_string());
            } else {
                problems.push(format!(
                    "extra piece {file}: {folder} ships exactly one {want}"
                ));
            }
        }
    }
    found
}

/// The loader files of every target's addon, identical, or which differ from the first.
pub fn one_loader(loaders: &[(String, Vec<u8>)]) -> Result<(), String> {
    let Some((first, want)) = loaders.first() else {
        return Ok(());
    };
    let differ: Vec<&str> = (loaders.iter())
        .filter(|(_, bytes)| bytes != want)
        .map(|(path, _)| path.as_str())
        .collect();
    match differ.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "the main npm package ships one loader, but {} differ from {first}",
            differ.join(", ")
        )),
    }
}

/// The main package ships one loader: every target's build must have generated the same.
pub fn same_loaders(artifacts: &Path, pieces: &[Pieces]) -> Result<()> {
    for file in LOADER {
        let loaders = (pieces.iter())
            .map(|p| {
                let path = p.beside_addon(file);
                Ok((path.clone(), std::fs::read(artifacts.join(&path))?))
            })
            .collect::<Result<Vec<_>>>()?;
        one_loader(&loaders).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Every file under `dir`, relative and `/`-separated, sorted.
pub fn files_under(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            match path.is_dir() {
                true => walk(root, &path, out)?,
                false => out.push(path.strip_prefix(root)?.to_string_lossy().into_owned()),
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Prints the tags a wheel's WHEEL file declares, sorted, on one line.
const WHEEL_TAGS: &str = "import sys, zipfile\n\
z = zipfile.ZipFile(sys.argv[1])\n\
meta = [n for n in z.namelist() if n.endswith('.dist-info/WHEEL')]\n\
lines = z.read(meta[0]).decode().splitlines()\n\
print(' '.join(sorted(l.split(':', 1)[1].strip() for l in lines if l.startswith('Tag:'))))";

/// The tags a wheel's name says, as `WHEEL_TAGS` prints them.
pub fn named_tags(platform: Platform) -> String {
    let mut tags: Vec<String> = (platform.wheel_platform().0.split('.'))
        .map(|plat| format!("{WHEEL_TAG_PREFIX}-{plat}"))
        .collect();
    tags.sort();
    tags.join(" ")
}

/// The check that a binary is for `platform`: ELF machine and glibc floor, or Mach-O cputype.
fn platform_check(name: String, path: PathBuf, platform: Platform) -> Step {
    let action = match platform.os {
        Os::Linux => platform.elf_floor(path),
        Os::MacOs => Action::CheckMachO {
            path,
            cputype: platform.macho_cputype(),
        },
    };
    Step::new(name, action)
}

/// Every piece checked for its platform, before anything is laid out.
pub fn checks(r: &Release) -> Vec<Step> {
    let art = |rel: &str| r.artifacts.join(rel);
    let python = r.host.tools.bin("python");
    let mut checks = vec![Step::new(
        "clean the staging directory",
        Action::CleanDir(r.stage.clone()),
    )];
    for p in &r.pieces {
        // The wheel: the tags inside are the ones its name says, its extension is for the platform.
        let unpacked = r.stage.join(format!("wheel-{}", p.platform.triple));
        checks.extend([
            platform_check(format!("check {}", p.binary), art(&p.binary), p.platform),
            platform_check(format!("check {}", p.addon), art(&p.addon), p.platform),
            Cmd::new(&python, &r.stage)
                .args(["-c", WHEEL_TAGS])
                .arg_path(&art(&p.wheel))
                .expect_stdout(named_tags(p.platform))
                .into_step(format!("check the tags of {}", p.wheel)),
            Cmd::new(&python, &r.stage)
                .args(["-m", "zipfile", "-e"])
                .arg_path(&art(&p.wheel))
                .arg_path(&unpacked)
                .into_step(format!("unpack {}", p.wheel)),
            platform_check(
                format!("check the extension in {}", p.wheel),
                unpacked.join(WHEEL_EXTENSION),
                p.platform,
            ),
            Step::new(
                format!("check the license in {}", p.wheel),
                Action::ExpectFile(unpacked.join(wheel_license(&r.version))),
            ),
        ]);
    }
    checks
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::flags::ReleaseTargets;
    use crate::release::names::{addon_name, wheel_name};

    pub const V: &str = "0.1.0";

    pub fn linux() -> Vec<Platform> {
        PLATFORMS
            .into_iter()
            .filter(|p| p.os == Os::Linux)
            .collect()
    }

    /// The files of one target's three artifacts, as the build jobs upload dist/ (an artifact built on
    /// another host keeps dist's `<triple>/` folder).
    fn artifact_files(p: Platform, cross: bool) -> Vec<String> {
        let sub = |job: &str| match cross {
            true => format!("{job}/{}", p.triple),
            false => job.to_string(),
        };
        let (rt, node, wheels) = (sub("runtime"), sub("node"), sub("wheels"));
        let t = p.triple;
        let mut files = vec![
            format!("build-runtime-{t}/{rt}/boxspec"),
            format!("build-runtime-{t}/cache-report.json"),
            format!("build-node-{t}/{node}/{}", addon_name(p)),
            format!("build-node-{t}/{node}/index.js"),
            format!("build-node-{t}/{node}/index.d.ts"),
            format!("build-node-{t}/{node}/package.json"),
            format!("build-wheels-{t}/{wheels}/{}", wheel_name(V, p)),
            format!("build-wheels-{t}/cache-report.json"),
        ];
        files.sort();
        files
    }

    pub fn all_files(platforms: &[Platform]) -> Vec<String> {
        (platforms.iter())
            .enumerate()
            .flat_map(|(i, p)| artifact_files(*p, i > 0))
            .collect()
    }

    #[test]
    fn a_complete_set_is_every_target_with_its_three_pieces() {
        let pieces = inventory(&all_files(&PLATFORMS), V, &PLATFORMS).unwrap();
        assert_eq!(pieces.len(), 4);
        let arm = &pieces[1];
        assert_eq!(arm.platform.triple, "aarch64-unknown-linux-gnu");
        assert_eq!(
            arm.addon,
            "build-node-aarch64-unknown-linux-gnu/node/aarch64-unknown-linux-gnu/boxspec.linux-arm64-gnu.node"
        );
        assert_eq!(
            arm.node_dir(),
            "build-node-aarch64-unknown-linux-gnu/node/aarch64-unknown-linux-gnu"
        );
        let linux = linux();
        assert_eq!(inventory(&all_files(&linux), V, &linux).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_extra_or_misnamed_piece_is_named() {
        let all = all_files(&PLATFORMS);
        let mac = "aarch64-apple-darwin";
        let without = |needle: &str| -> Vec<String> {
            all.iter()
                .filter(|f| !f.contains(needle))
                .cloned()
                .collect()
        };
        let with = |extra: &str| -> Vec<String> {
            let mut files = all.clone();
            files.push(extra.to_string());
            files
        };
        let arm_wheel = wheel_name(V, PLATFORMS[1]);
        let cases: Vec<(&str, Vec<String>, Vec<Platform>, String)> = vec![
            (
                "a Mac target is required in a real release",
                without(mac),
                PLATFORMS.to_vec(),
                format!("missing artifact build-runtime-{mac}"),
            ),
            (
                "a missing piece inside an artifact",
                without(&format!("{mac}/boxspec-0.1.0")),
                PLATFORMS.to_vec(),
                format!("missing piece: build-wheels-{mac} has no {}", wheel_name(V, PLATFORMS[3])),
            ),
            (
                "a Mac artifact in a Linux-only release",
                all_files(&PLATFORMS),
                linux(),
                format!("extra artifact build-node-{mac}: {mac} is not among --targets"),
            ),
            (
                "a wheel of another platform in the x86_64 artifact",
                with(&format!("build-wheels-x86_64-unknown-linux-gnu/wheels/{arm_wheel}")),
                PLATFORMS.to_vec(),
                format!("extra piece build-wheels-x86_64-unknown-linux-gnu/wheels/{arm_wheel}"),
            ),
            (
                "an addon named for another platform",
                with("build-node-x86_64-unknown-linux-gnu/node/boxspec.linux-arm64-gnu.node"),
                PLATFORMS.to_vec(),
                "extra piece build-node-x86_64-unknown-linux-gnu/node/boxspec.linux-arm64-gnu.node: build-node-x86_64-unknown-linux-gnu ships exactly one boxspec.linux-x64-gnu.node".into(),
            ),
            (
                "a wheel of another version",
                with("build-wheels-x86_64-unknown-linux-gnu/wheels/boxspec-0.0.9-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"),
                PLATFORMS.to_vec(),
                "extra piece build-wheels-x86_64-unknown-linux-gnu/wheels/boxspec-0.0.9".into(),
            ),
            (
                "an artifact no build makes",
                with("build-docs-x86_64-unknown-linux-gnu/index.html"),
                PLATFORMS.to_vec(),
                "extra artifact build-docs-x86_64-unknown-linux-gnu".into(),
            ),
            (
                "a loose file",
                with("notes.txt"),
                PLATFORMS.to_vec(),
                "extra file notes.txt".into(),
            ),
            (
                "the loader beside an addon",
                without(&format!("node/{mac}/index.js")),
                PLATFORMS.to_vec(),
                format!("missing piece: build-node-{mac}/node/{mac}/index.js"),
            ),
        ];
        for (what, files, platforms, want) in cases {
            let problems = inventory(&files, V, &platforms).unwrap_err();
            assert!(
                problems.iter().any(|p| p.starts_with(&want)),
                "{what}: {want:?} not in {problems:#?}"
            );
        }
    }

    #[test]
    fn targets_select_platforms_by_name() {
        let all = selected(&ReleaseTargets::default()).unwrap();
        assert_eq!(all, PLATFORMS);
        assert!(left_out(&all).is_empty());
        let only = ReleaseTargets {
            only: vec![
                "aarch64-unknown-linux-gnu".into(),
                "x86_64-unknown-linux-gnu".into(),
            ],
        };
        let linux = selected(&only).unwrap();
        assert_eq!(linux, self::linux());
        assert_eq!(
            left_out(&linux),
            ["x86_64-apple-darwin", "aarch64-apple-darwin"]
        );
        let bad = ReleaseTargets {
            only: vec!["riscv64gc-unknown-linux-gnu".into()],
        };
        assert!(
            selected(&bad)
                .unwrap_err()
                .0
                .contains("not a platform the SDKs ship")
        );
    }

    #[test]
    fn every_target_built_the_same_loader() {
        let loader = |path: &str, text: &str| (path.to_string(), text.as_bytes().to_vec());
        assert!(one_loader(&[loader("a/index.js", "x"), loader("b/index.js", "x")]).is_ok());
        let err = one_loader(&[
            loader("a/index.js", "x"),
            loader("b/index.js", "y"),
            loader("c/index.js", "x"),
        ])
        .unwrap_err();
        assert!(
            err.ends_with("but b/index.js differ from a/index.js"),
            "{err}"
        );
    }
}
