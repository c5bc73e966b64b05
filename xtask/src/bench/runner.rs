//! The scenarios of a CI runner: runner-cold and runner-warm (a fresh GitHub runner, with CI's cache
//! entries restored or not) and ci-warm (a fresh checkout with the warm sccache directory and target
//! layer).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use xshell::{Shell, cmd};

use super::workspace::{copy_sources, copy_workspace};
use super::{Bench, JOBS};
use crate::ci_cache;
use crate::host::HostEnv;

/// runner-cold and runner-warm: each job as it starts on a fresh GitHub runner: an empty HOME (so no
/// cargo registry, tools directory or sccache directory), a fresh copy of the sources at one fixed path,
/// this machine's toolchain, and `cargo xtask <job>` as typed, timed whole. runner-warm first runs
/// warm-caches in the same conditions, then restores exactly the paths of `ci_cache::ENTRIES` it left.
pub fn runner(bench: &mut Bench, host: &HostEnv) -> Result<()> {
    let base = bench.scratch.join("runner");
    let saved = base.join("saved");
    let fresh = FreshRunner {
        home: base.join("home"),
        checkout: base.join("work/boxspec/boxspec"),
        tmp: base.join("tmp"),
    };
    for job in JOBS {
        fresh.prepare(host, None)?;
        bench.typed("runner-cold", &fresh, host, job)?;
    }
    fresh.prepare(host, None)?;
    bench.typed("runner-warm (warm-caches)", &fresh, host, "warm-caches")?;
    fresh.save(&saved)?;
    for job in JOBS {
        fresh.prepare(host, Some(&saved))?;
        bench.typed("runner-warm", &fresh, host, job)?;
    }
    Ok(())
}

/// A runner's HOME, checkout and temporary directory, made fresh before each job.
pub struct FreshRunner {
    pub home: PathBuf,
    pub checkout: PathBuf,
    pub tmp: PathBuf,
}

impl FreshRunner {
    /// Empty HOME and temp, the sources copied anew, and `restore`'s saved entries put back.
    fn prepare(&self, host: &HostEnv, restore: Option<&Path>) -> Result<()> {
        for dir in [&self.home, &self.checkout, &self.tmp] {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir)?;
        }
        copy_sources(host, &self.checkout, false)?;
        let Some(saved) = restore else { return Ok(()) };
        let sh = Shell::new()?;
        for (name, path) in self.entry_paths() {
            let from = saved.join(&name);
            if from.exists() {
                fs::create_dir_all(path.parent().unwrap())?;
                cmd!(sh, "cp -a {from} {path}").quiet().run()?;
            }
        }
        Ok(())
    }

    /// Moves what the workflows' cache steps save aside, as `saved/<entry>-<n>`.
    fn save(&self, saved: &Path) -> Result<()> {
        fs::create_dir_all(saved)?;
        for (name, path) in self.entry_paths() {
            if path.exists() {
                fs::rename(&path, saved.join(name))?;
            }
        }
        Ok(())
    }

    /// Each path CI's cache entries hold, here, with a name to save it under.
    fn entry_paths(&self) -> impl Iterator<Item = (String, PathBuf)> + '_ {
        (ci_cache::ENTRIES.iter()).flat_map(move |e| {
            (e.paths.iter().enumerate()).map(move |(i, p)| {
                let path = ci_cache::resolve(p, &self.home, &self.checkout);
                (format!("{}-{i}", e.name), path)
            })
        })
    }
}

/// ci-warm: what a CI job sees after warm-caches ran on main: a fresh checkout at the same path as the
/// warm run, the sccache directory and the pruned target layer restored, then the job. Returns the
/// layer's compressed size in MB.
pub fn ci_warm(bench: &mut Bench, host: &HostEnv) -> Result<f64> {
    let checkout = bench.scratch.join("ci");
    let cache = bench.scratch.join("cache-ci");
    let layer = bench.scratch.join("ci-layer");
    let driver = bench.scratch.join("ci-xtask");
    fs::copy(copy_workspace(host, &checkout)?, &driver)?;
    bench.target = checkout.join("target");
    bench.build(
        "ci-warm (warm-caches)",
        &driver,
        "warm-caches",
        Some(&cache),
    )?;
    fs::rename(&bench.target, &layer)?;
    let sh = Shell::new()?;
    let tarball = bench.scratch.join("ci-layer.tar.gz");
    cmd!(sh, "tar -czf {tarball} -C {layer} .").quiet().run()?;
    let layer_mb = fs::metadata(&tarball)?.len() as f64 / 1e6;
    // A fresh clone at the same path: every source is newer than the layer.
    fs::remove_dir_all(&checkout)?;
    copy_sources(host, &checkout, true)?;
    bench.layer = Some(layer);
    for job in JOBS {
        bench.build("ci-warm", &driver, job, Some(&cache))?;
    }
    Ok(layer_mb)
}
