//! The target layer: `target/` left as the second cache layer CI saves next to sccache's: cargo's outputs for
//! the dependencies (what sccache cannot cache: proc-macros, build scripts, links), without the workspace
//! crates' own artifacts (a fresh checkout makes their sources newer, so they always rebuild, and hit
//! sccache), incremental data (but the driver's), final binaries or scratch directories. warm-caches runs
//! it last.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::host::HostEnv;

/// Prunes the target directory of the workspace at `manifest` and prints what is left.
pub fn prune_to_layer(host: &HostEnv, manifest: &Path, dry_run: bool) -> Result<()> {
    let target = host.target_dir();
    if dry_run {
        println!("[target layer] prune {}", target.display());
        return Ok(());
    }
    let names = workspace_crates(host, manifest)?;
    let before = dir_size(&target);
    prune(&target, &names).with_context(|| format!("pruning {}", target.display()))?;
    let after = dir_size(&target);
    println!(
        "target layer: {} MB in {} (pruned {} MB: workspace crates, incremental data, final artifacts)",
        after / 1_000_000,
        target.display(),
        before.saturating_sub(after) / 1_000_000
    );
    Ok(())
}

/// Package and crate names of the workspace members, as cargo spells them in artifact names.
fn workspace_crates(host: &HostEnv, manifest: &Path) -> Result<BTreeSet<String>> {
    let sh = Shell::new()?;
    let cargo = host.cargo();
    let json = cmd!(
        sh,
        "{cargo} metadata --no-deps --offline --format-version 1 --manifest-path {manifest}"
    )
    .quiet()
    .read()
    .context("reading the workspace members with cargo metadata")?;
    let meta: serde_json::Value = serde_json::from_str(&json)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let mut names = BTreeSet::new();
    for package in &packages {
        let targets = package["targets"].as_array().cloned().unwrap_or_default();
        let target_names = targets.iter().filter_map(|t| t["name"].as_str());
        for name in package["name"].as_str().into_iter().chain(target_names) {
            names.insert(name.to_string());
            names.insert(name.replace('-', "_"));
        }
    }
    Ok(names)
}

/// Keeps `deps`, `build` and `.fingerprint` of each profile directory (`debug`, `release`, and those
/// under a target triple), minus the entries of workspace crates; removes everything else.
pub fn prune(target: &Path, workspace: &BTreeSet<String>) -> Result<()> {
    for entry in read_dir(target)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        match (entry.file_type()?.is_dir(), name.as_str()) {
            (false, "CACHEDIR.TAG" | ".rustc_info.json") => {}
            (true, _) if is_profile(&path) => prune_profile(&path, workspace)?,
            // A target triple holds profile directories of its own.
            (true, _) if name.contains('-') && has_profile(&path) => {
                for profile in read_dir(&path)? {
                    match is_profile(&profile.path()) {
                        true => prune_profile(&profile.path(), workspace)?,
                        false => remove(&profile.path())?,
                    }
                }
            }
            _ => remove(&path)?,
        }
    }
    Ok(())
}

/// The driver's incremental sessions: `incremental/xtask-<hash>`.
const DRIVER_INCREMENTAL: &str = "xtask-";

fn prune_profile(profile: &Path, workspace: &BTreeSet<String>) -> Result<()> {
    for entry in read_dir(profile)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            "deps" | "build" | ".fingerprint" => {
                for unit in read_dir(&path)? {
                    let unit_name = unit.file_name().to_string_lossy().into_owned();
                    if workspace.contains(crate_of(&unit_name)) {
                        remove(&unit.path())?;
                    }
                }
            }
            // The driver's own: cargo rebuilds it before anything else runs in a fresh checkout, and
            // rustc reuses what did not change (measured: ≈ 1 s instead of ≈ 5 s).
            "incremental" => {
                for session in read_dir(&path)? {
                    let session_name = session.file_name().to_string_lossy().into_owned();
                    if !session_name.starts_with(DRIVER_INCREMENTAL) {
                        remove(&session.path())?;
                    }
                }
            }
            _ => remove(&path)?,
        }
    }
    Ok(())
}

/// The crate or package an artifact belongs to: `libserde_json-1a2b.rlib` → `serde_json`,
/// `boxspec-hack-3c4d` → `boxspec-hack`, `libboxspec.so` → `boxspec`.
fn crate_of(artifact: &str) -> &str {
    let stem = artifact.split('.').next().unwrap_or(artifact);
    let stem = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    };
    stem.strip_prefix("lib").unwrap_or(stem)
}

fn is_profile(dir: &Path) -> bool {
    dir.join(".fingerprint").is_dir()
}

fn has_profile(dir: &Path) -> bool {
    read_dir(dir).is_ok_and(|entries| entries.iter().any(|e| is_profile(&e.path())))
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(entries.flatten().collect())
}

fn remove(path: &Path) -> Result<()> {
    let removed = match path.is_dir() && !path.is_symlink() {
        true => fs::remove_dir_all(path),
        false => fs::remove_file(path),
    };
    removed.with_context(|| format!("removing {}", path.display()))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = path.symlink_metadata() else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| dir_size(&e.path()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_name_their_crate() {
        let cases = [
            ("libserde_json-1a2b3c4d5e6f7a8b.rlib", "serde_json"),
            ("libserde_json-1a2b3c4d5e6f7a8b.rmeta", "serde_json"),
            ("boxspec-hack-1a2b3c4d5e6f7a8b", "boxspec-hack"),
            ("boxspec_cli-1a2b3c4d5e6f7a8b.d", "boxspec_cli"),
            ("libboxspec.so", "boxspec"),
            ("libboxspec_node-0123456789abcdef.so", "boxspec_node"),
            ("proc-macro2-0123456789abcdef", "proc-macro2"),
            // A name that ends like a hash but is not 16 hex digits stays whole.
            ("wasm-bindgen", "wasm-bindgen"),
        ];
        for (artifact, name) in cases {
            assert_eq!(crate_of(artifact), name, "{artifact}");
        }
    }

    /// What a restore must not carry goes; the dependencies' units stay.
    #[test]
    fn prune_keeps_only_the_dependencies_units() {
        let target = std::env::temp_dir().join(format!("xtask-layer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&target);
        let files = [
            "CACHEDIR.TAG",
            "release/.fingerprint/serde-0123456789abcdef/lib-serde",
            "release/.fingerprint/boxspec-0123456789abcdef/lib-boxspec",
            "release/build/serde-0123456789abcdef/output",
            "release/deps/libserde_derive-0123456789abcdef.so",
            "x86_64-unknown-linux-gnu/release/.fingerprint/itoa-0123456789abcdef/lib-itoa",
            "x86_64-unknown-linux-gnu/release/deps/libitoa-0123456789abcdef.rlib",
            "x86_64-unknown-linux-gnu/release/deps/libboxspec-0123456789abcdef.rlib",
            "x86_64-unknown-linux-gnu/release/deps/boxspec_cli-0123456789abcdef",
            "x86_64-unknown-linux-gnu/release/boxspec",
            "x86_64-unknown-linux-gnu/release/incremental/x/y",
            "debug/.fingerprint/clap-0123456789abcdef/lib-clap",
            "debug/deps/xtask-0123456789abcdef",
            "debug/incremental/xtask-11vzpzhqjmju3/s-abc/query-cache.bin",
            "debug/incremental/boxspec-21vzpzhqjmju3/s-abc/query-cache.bin",
            "debug/xtask",
            "e2e/dist/thing",
        ];
        for file in files {
            let path = target.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let workspace = ["boxspec", "boxspec-cli", "boxspec_cli", "xtask"]
            .map(String::from)
            .into();
        prune(&target, &workspace).unwrap();
        let kept: Vec<&str> = files
            .into_iter()
            .filter(|f| target.join(f).exists())
            .collect();
        assert_eq!(
            kept,
            [
                "CACHEDIR.TAG",
                "release/.fingerprint/serde-0123456789abcdef/lib-serde",
                "release/build/serde-0123456789abcdef/output",
                "release/deps/libserde_derive-0123456789abcdef.so",
                "x86_64-unknown-linux-gnu/release/.fingerprint/itoa-0123456789abcdef/lib-itoa",
                "x86_64-unknown-linux-gnu/release/deps/libitoa-0123456789abcdef.rlib",
                "debug/.fingerprint/clap-0123456789abcdef/lib-clap",
                "debug/incremental/xtask-11vzpzhqjmju3/s-abc/query-cache.bin",
            ]
        );
        let _ = fs::remove_dir_all(&target);
    }
}
