//! release: the build jobs' artifacts for every shipped target, checked as a set, laid out for the
//! registries in dist/release/: `python/` (the wheels and an sdist), `npm/` (napi-rs's layout: one package
//! per platform with `os`/`cpu`/`libc`, and the main package whose `optionalDependencies` pin them),
//! `runtime/` (an archive per target and `SHA256SUMS`), and `release.json`, written last, which `publish`
//! reads. Nothing is laid out before the whole set checks: every target, one version, each piece's
//! platform what its name says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::BuildJob;
use super::pipeline::tools_installed;
use super::wheels::wheel_name;
use crate::flags::{Global, ReleaseTargets, UsageError};
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::platform::{GLIBC_FLOOR_MINOR, Os, PLATFORMS, Platform};

/// The manifest `publish` reads, in dist/release/.
pub const MANIFEST: &str = "release.json";

/// The name a build workflow uploads one build's dist/ under: the folder actions/download-artifact makes.
pub fn artifact_name(job: &BuildJob, platform: Platform) -> String {
    format!("{}-{}", job.name(), platform.triple)
}

/// What one build of one target ships, by the file name it must have.
fn piece_name(job: &BuildJob, platform: Platform, version: &str) -> String {
    match job {
        BuildJob::Runtime => "boxspec".into(),
        BuildJob::Node => addon_name(platform),
        _ => wheel_name(version, platform),
    }
}

fn addon_name(platform: Platform) -> String {
    format!("boxspec.{}.node", platform.napi_platform())
}

/// A file that is a shipped piece of some build (everything else in an artifact, such as the cache
/// report, is left behind).
fn is_piece(file_name: &str) -> bool {
    file_name == "boxspec" || file_name.ends_with(".node") || file_name.ends_with(".whl")
}

/// The platforms a release holds: all shipped ones, or the ones `--targets` names.
pub fn selected(targets: &ReleaseTargets) -> Result<Vec<Platform>, UsageError> {
    for triple in &targets.only {
        if !PLATFORMS.iter().any(|p| p.triple == triple) {
            let known: Vec<&str> = PLATFORMS.iter().map(|p| p.triple).collect();
            return Err(UsageError(format!(
                "--targets {triple}: not a platform the SDKs ship (one of {})",
                known.join(", ")
            )));
        }
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
    /// The directory of the addon: index.js, index.d.ts and package.json sit beside it.
    fn node_dir(&self) -> &str {
        self.addon.rsplit_once('/').map_or("", |(dir, _)| dir)
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
    let mut found: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for (folder, files) in &folders {
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
        for file in ["index.js", "index.d.ts", "package.json"] {
            let path = format!("{}/{file}", p.node_dir());
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

/// The one version every source names, or what disagrees. `sources`: (where, what it says).
pub fn one_version(sources: &[(String, Option<String>)]) -> Result<String, String> {
    let said: Vec<String> = (sources.iter())
        .map(|(src, v)| format!("{src}: {}", v.as_deref().unwrap_or("no version")))
        .collect();
    let first = sources.first().and_then(|(_, v)| v.clone());
    match first {
        Some(v)
            if sources
                .iter()
                .all(|(_, w)| w.as_deref() == Some(v.as_str())) =>
        {
            Ok(v)
        }
        _ => Err(format!(
            "the release has no single version: {}",
            said.join("; ")
        )),
    }
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

/// A `v`-prefixed tag's version.
pub fn tag_version(tag: &str) -> Option<String> {
    let v = tag.strip_prefix('v')?;
    (!v.is_empty()).then(|| v.to_string())
}

/// `version = "…"` in pyproject.toml's `[project]` table.
pub fn pyproject_version(text: &str) -> Option<String> {
    let project = text.split("\n[project]").nth(1)?;
    let table = project.split("\n[").next()?;
    let line = (table.lines()).find(|l| l.split('=').next().map(str::trim) == Some("version"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// napi-rs's package for one platform: the addon alone, installable only where it loads.
pub fn platform_package(main: &Value, platform: Platform, version: &str) -> Value {
    let (os, cpu, libc) = platform.npm_fields();
    let name = main["name"].as_str().unwrap_or("boxspec");
    let addon = addon_name(platform);
    let mut pkg = json!({
        "name": format!("{name}-{}", platform.napi_platform()),
        "version": version,
        "description": format!("The {} addon of {name}", platform.triple),
        "os": [os],
        "cpu": [cpu],
        "main": addon,
        "files": [addon],
        "license": main["license"],
        "engines": main["engines"],
    });
    if let Some(libc) = libc {
        pkg["libc"] = json!([libc]);
    }
    pkg
}

/// The main package: the SDK's package.json at the release version, its loader only, and every
/// platform package as an optional dependency (npm installs the one whose os/cpu/libc fit).
pub fn main_package(sdk: &Value, platforms: &[Platform], version: &str) -> Value {
    let mut pkg = sdk.clone();
    let name = sdk["name"].as_str().unwrap_or("boxspec").to_string();
    if let Some(map) = pkg.as_object_mut() {
        map.remove("devDependencies");
        map.remove("scripts");
        map.insert("version".into(), json!(version));
        map.insert("files".into(), json!(["index.js", "index.d.ts"]));
        let optional: serde_json::Map<String, Value> = (platforms.iter())
            .map(|p| (format!("{name}-{}", p.napi_platform()), json!(version)))
            .collect();
        map.insert("optionalDependencies".into(), Value::Object(optional));
    }
    pkg
}

/// Where each piece goes in dist/release/, as `release.json` lists it for publish.
pub fn manifest(version: &str, platforms: &[Platform], npm_name: &str) -> Value {
    let python: Vec<String> = (platforms.iter())
        .map(|p| format!("python/{}", wheel_name(version, *p)))
        .chain([format!("python/boxspec-{version}.tar.gz")])
        .collect();
    // Platform packages first: the main package's optional dependencies must resolve once it is out.
    let npm: Vec<String> = (platforms.iter())
        .map(|p| format!("npm/{npm_name}-{}", p.napi_platform()))
        .chain([format!("npm/{npm_name}")])
        .collect();
    let runtime: Vec<String> = (platforms.iter())
        .map(|p| format!("runtime/{}", archive_name(version, *p)))
        .chain(["runtime/SHA256SUMS".to_string()])
        .collect();
    json!({
        "version": version,
        "targets": platforms.iter().map(|p| p.triple).collect::<Vec<_>>(),
        "python": python,
        "npm": npm,
        "runtime": runtime,
    })
}

fn archive_name(version: &str, platform: Platform) -> String {
    format!("boxspec-{version}-{}.tar.gz", platform.triple)
}

/// Prints the tags a wheel's WHEEL file declares, sorted, on one line.
const WHEEL_TAGS: &str = "import sys, zipfile\n\
z = zipfile.ZipFile(sys.argv[1])\n\
meta = [n for n in z.namelist() if n.endswith('.dist-info/WHEEL')]\n\
lines = z.read(meta[0]).decode().splitlines()\n\
print(' '.join(sorted(l.split(':', 1)[1].strip() for l in lines if l.startswith('Tag:'))))";

/// The tags a wheel's name says, as `WHEEL_TAGS` prints them.
fn named_tags(platform: Platform) -> String {
    let mut tags: Vec<String> = (platform.wheel_platform().0.split('.'))
        .map(|plat| format!("cp39-abi3-{plat}"))
        .collect();
    tags.sort();
    tags.join(" ")
}

/// The check that a binary is for `platform`: ELF machine and glibc floor, or Mach-O cputype.
fn platform_check(name: String, path: PathBuf, platform: Platform) -> Step {
    let action = match platform.os {
        Os::Linux => Action::CheckElf {
            path,
            machine: platform.elf_machine(),
            max_glibc_minor: GLIBC_FLOOR_MINOR,
        },
        Os::MacOs => Action::CheckMachO {
            path,
            cputype: platform.macho_cputype(),
        },
    };
    Step::new(name, action)
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

pub fn plan(r: &Release) -> Vec<Step> {
    let (v, out, host) = (&r.version, &r.out, r.host);
    let name = r.sdk_package["name"].as_str().unwrap_or("boxspec");
    let art = |rel: &str| r.artifacts.join(rel);
    let json_file = |path: PathBuf, value: &Value| {
        let contents = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
        Action::WriteFile {
            path,
            contents,
            executable: false,
        }
    };
    let python = host.tools.bin("python");
    // Every piece is checked before anything is laid out.
    let mut checks = vec![Step::new(
        "clean the staging directory",
        Action::CleanDir(r.stage.clone()),
    )];
    let mut steps = vec![
        Step::new("clean dist/release", Action::CleanDir(out.clone())),
        Step::new(
            "make the release directories",
            Action::MakeDirs(["python", "npm", "runtime"].map(|d| out.join(d)).to_vec()),
        ),
    ];
    for p in &r.pieces {
        let t = p.platform.triple;
        // The wheel: the tags inside are the ones its name says, its extension is for the platform.
        let unpacked = r.stage.join(format!("wheel-{t}"));
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
                unpacked.join("boxspec/boxspec.abi3.so"),
                p.platform,
            ),
        ]);
        // The runtime: executable again (artifacts lose the mode), archived in a folder of its name.
        let folder = format!("boxspec-{v}-{t}");
        steps.extend([
            Step::new(
                format!("stage {folder}"),
                Action::MakeDirs(vec![r.stage.join(&folder)]),
            ),
            Cmd::new("install", &r.stage)
                .args(["-m", "755"])
                .arg_path(&art(&p.binary))
                .arg_path(&r.stage.join(&folder).join("boxspec"))
                .into_step(format!("stage {folder}/boxspec")),
            Cmd::new("tar", &r.stage)
                .args(["-czf"])
                .arg_path(&out.join("runtime").join(archive_name(v, p.platform)))
                .args([folder.as_str()])
                .into_step(format!("archive {}", archive_name(v, p.platform))),
        ]);
        // The addon: its own npm package.
        let package = out
            .join("npm")
            .join(format!("{name}-{}", p.platform.napi_platform()));
        steps.extend([
            Step::new(
                format!("npm package for {t}"),
                json_file(
                    package.join("package.json"),
                    &platform_package(&r.sdk_package, p.platform, v),
                ),
            ),
            Step::new(
                format!("npm package for {t}: the addon"),
                Action::CopyInto {
                    files: vec![art(&p.addon)],
                    dir: package,
                },
            ),
            Step::new(
                format!("the {t} wheel"),
                Action::CopyInto {
                    files: vec![art(&p.wheel)],
                    dir: out.join("python"),
                },
            ),
        ]);
    }
    let main = out.join("npm").join(name);
    if let Some(first) = r.pieces.first() {
        steps.push(Step::new(
            "npm main package: the loader",
            Action::CopyInto {
                files: ["index.js", "index.d.ts"]
                    .map(|f| art(&format!("{}/{f}", first.node_dir())))
                    .to_vec(),
                dir: main.clone(),
            },
        ));
    }
    let archives: Vec<String> = (r.platforms.iter()).map(|p| archive_name(v, *p)).collect();
    steps.extend([
        Step::new(
            "npm main package",
            json_file(
                main.join("package.json"),
                &main_package(&r.sdk_package, &r.platforms, v),
            ),
        ),
        Cmd::new(host.tools.bin("maturin"), &host.root)
            .args([
                "sdist",
                "--manifest-path",
                "sdks/python/Cargo.toml",
                "--out",
            ])
            .arg_path(&out.join("python"))
            .into_step("maturin sdist"),
        Step::new(
            "expect the sdist",
            Action::ExpectFile(out.join(format!("python/boxspec-{v}.tar.gz"))),
        ),
        Cmd::new("sh", &out.join("runtime"))
            .args(["-c", "sha256sum -- \"$@\" > SHA256SUMS", "sh"])
            .args(archives)
            .into_step("runtime/SHA256SUMS"),
        // Last: publish takes a directory without it for a release that did not finish.
        Step::new(
            MANIFEST,
            json_file(out.join(MANIFEST), &manifest(v, &r.platforms, name)),
        ),
    ]);
    checks.extend(steps);
    checks
}

/// Every file under `dir`, relative and `/`-separated, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>> {
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

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn run(
    global: &Global,
    host: &HostEnv,
    artifacts: &Path,
    tag: Option<&str>,
    targets: &ReleaseTargets,
) -> Result<()> {
    let platforms = selected(targets)?;
    let artifacts = host.root.join(artifacts);
    if !artifacts.is_dir() {
        return Err(UsageError(format!(
            "--artifacts {}: no such directory",
            artifacts.display()
        ))
        .into());
    }
    let sdk_package = read_json(&host.root.join("sdks/node/package.json"))?;
    let pyproject = std::fs::read_to_string(host.root.join("sdks/python/pyproject.toml"))?;
    let mut sources = vec![
        ("Cargo.toml".to_string(), Some(host.version.clone())),
        (
            "sdks/python/pyproject.toml".to_string(),
            pyproject_version(&pyproject),
        ),
        (
            "sdks/node/package.json".to_string(),
            sdk_package["version"].as_str().map(str::to_string),
        ),
    ];
    if let Some(tag) = tag {
        sources.push((format!("tag {tag}"), tag_version(tag)));
    }
    let files = files_under(&artifacts)?;
    // The addons' package.json files were copied from the SDK at build time: they say what was built.
    for file in files.iter().filter(|f| f.ends_with("/package.json")) {
        let built = read_json(&artifacts.join(file))?;
        sources.push((file.clone(), built["version"].as_str().map(str::to_string)));
    }
    let version = one_version(&sources).map_err(anyhow::Error::msg)?;
    let pieces = match inventory(&files, &version, &platforms) {
        Ok(pieces) => pieces,
        Err(problems) => bail!(
            "the artifacts in {} are not a release of {version} for {}:\n  {}",
            artifacts.display(),
            platforms
                .iter()
                .map(|p| p.triple)
                .collect::<Vec<_>>()
                .join(", "),
            problems.join("\n  ")
        ),
    };
    // The main package ships one loader: every target's build must have generated the same.
    for file in ["index.js", "index.d.ts"] {
        let loaders = (pieces.iter())
            .map(|p| {
                let path = format!("{}/{file}", p.node_dir());
                Ok((path.clone(), std::fs::read(artifacts.join(&path))?))
            })
            .collect::<Result<Vec<_>>>()?;
        one_loader(&loaders).map_err(anyhow::Error::msg)?;
    }
    let mut exec = tools_installed(global, host)?;
    let left_out = left_out(&platforms);
    if !left_out.is_empty() {
        exec.notice(&format!(
            "a partial release (--targets): it leaves out {}",
            left_out.join(", ")
        ));
    }
    let release = Release {
        host,
        artifacts,
        version,
        platforms,
        pieces,
        sdk_package,
        out: host.dist().join("release"),
        stage: host.temp.join("release-stage"),
    };
    exec.run_steps(&plan(&release))?;
    if !exec.dry_run {
        exec.info(&format!(
            "released {} for {} into {}",
            release.version,
            (release.platforms.iter())
                .map(|p| p.triple)
                .collect::<Vec<_>>()
                .join(", "),
            host.relative(&release.out)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "0.1.0";

    fn linux() -> Vec<Platform> {
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

    fn all_files(platforms: &[Platform]) -> Vec<String> {
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

    /// Each broken set fails naming what is wrong (and the rest of the set is still checked).
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
    fn one_version_everywhere() {
        let s = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            (pairs.iter())
                .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
                .collect()
        };
        assert_eq!(
            one_version(&s(&[("Cargo.toml", Some(V)), ("tag v0.1.0", Some(V))])),
            Ok(V.to_string())
        );
        let err = one_version(&s(&[
            ("Cargo.toml", Some(V)),
            ("tag v0.2.0", Some("0.2.0")),
        ]))
        .unwrap_err();
        assert!(
            err.contains("Cargo.toml: 0.1.0; tag v0.2.0: 0.2.0"),
            "{err}"
        );
        let err = one_version(&s(&[("Cargo.toml", Some(V)), ("tag 0.1.0", None)])).unwrap_err();
        assert!(err.contains("tag 0.1.0: no version"), "{err}");
        assert_eq!(tag_version("v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(tag_version("1.2.3"), None);
        let pyproject = "[build-system]\nrequires = [\"maturin\"]\n\n[project]\nname = \"boxspec\"\nversion = \"0.3.0\"\n\n[tool.x]\nversion = \"9\"\n";
        assert_eq!(pyproject_version(pyproject).as_deref(), Some("0.3.0"));
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

    /// napi-rs's layout: a package per platform that npm installs only where it fits, and a main
    /// package whose optional dependencies pin each at the release version.
    #[test]
    fn npm_packages_say_where_they_install() {
        let sdk = json!({
            "name": "boxspec", "version": V, "license": "MIT", "main": "index.js",
            "engines": {"node": ">= 18"}, "scripts": {"build": "napi build"},
            "devDependencies": {"@napi-rs/cli": "3"}, "napi": {"binaryName": "boxspec"}
        });
        // (platform, name, os, cpu, libc)
        let cases = [
            (
                PLATFORMS[0],
                "boxspec-linux-x64-gnu",
                "linux",
                "x64",
                Some("glibc"),
            ),
            (
                PLATFORMS[1],
                "boxspec-linux-arm64-gnu",
                "linux",
                "arm64",
                Some("glibc"),
            ),
            (PLATFORMS[2], "boxspec-darwin-x64", "darwin", "x64", None),
            (
                PLATFORMS[3],
                "boxspec-darwin-arm64",
                "darwin",
                "arm64",
                None,
            ),
        ];
        for (platform, name, os, cpu, libc) in cases {
            let pkg = platform_package(&sdk, platform, "1.0.0");
            assert_eq!(pkg["name"], name);
            assert_eq!(pkg["version"], "1.0.0");
            assert_eq!(pkg["os"], json!([os]));
            assert_eq!(pkg["cpu"], json!([cpu]));
            assert_eq!(pkg["libc"], libc.map_or(Value::Null, |l| json!([l])));
            assert_eq!(pkg["main"], addon_name(platform));
            assert_eq!(pkg["files"], json!([addon_name(platform)]));
        }
        let main = main_package(&sdk, &PLATFORMS, "1.0.0");
        assert_eq!(main["version"], "1.0.0");
        assert_eq!(main["optionalDependencies"].as_object().unwrap().len(), 4);
        assert_eq!(
            main["optionalDependencies"]["boxspec-darwin-arm64"],
            "1.0.0"
        );
        assert!(main.get("devDependencies").is_none() && main.get("scripts").is_none());
        assert_eq!(main["files"], json!(["index.js", "index.d.ts"]));
    }

    /// napi's own target list (its tooling reads it) is the shipped platforms, in Platform's order.
    #[test]
    fn the_napi_targets_are_the_shipped_platforms() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sdk = read_json(&root.join("sdks/node/package.json")).unwrap();
        let triples: Vec<&str> = PLATFORMS.iter().map(|p| p.triple).collect();
        assert_eq!(sdk["napi"]["targets"], json!(triples));
    }

    #[test]
    fn the_manifest_lists_what_publish_uploads_in_order() {
        let m = manifest(V, &linux(), "boxspec");
        assert_eq!(
            m["targets"],
            json!(["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"])
        );
        assert_eq!(
            m["npm"],
            json!([
                "npm/boxspec-linux-x64-gnu",
                "npm/boxspec-linux-arm64-gnu",
                "npm/boxspec"
            ])
        );
        assert_eq!(m["python"].as_array().unwrap().len(), 3);
        assert_eq!(m["python"][2], "python/boxspec-0.1.0.tar.gz");
    }

    /// Every piece is checked for its platform before the set is laid out; the manifest comes last.
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
