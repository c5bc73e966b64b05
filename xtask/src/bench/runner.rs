//! The scenarios of a CI runner: runner-cold and runner-warm (a fresh GitHub runner, with CI's cache
//! entries restored or not) and ci-warm (a fresh checkout with the warm sccache directory and target
//! layer).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use xshell::{Shell, cmd};

use super::workspace::{copy_sources, copy_workspace};
use super::{Bench, JOBS};
use crate::ci_cache;
use crate::host::HostEnv;

/// runner-cold and runner-warm: each job as it starts on a fresh GitHub runner: an empty HOME (so no
/// cargo registry, tools directory or sccache directory), a fresh copy of the sources at one fixed path,
/// this machine's toolchain, and `cargo xtask <job>` as typed, timed whole. runner-warm first runs
/// warm-caches in the same conditions, saves exactly the paths of `ci_cache::ENTRIES` as actions/cache
/// does, and restores them before each job, timed (a runner waits for that too; the download is not
/// counted).
pub fn runner(bench: &mut Bench, host: &HostEnv) -> Result<()> {
    let base = bench.scratch.join("runner");
    let saved = base.join("saved");
    let fresh = FreshRunner {
        home: base.join("home"),
        checkout: base.join("work/boxspec/boxspec"),
        tmp: base.join("tmp"),
    };
    for job in JOBS {
        fresh.prepare(host)?;
        bench.typed("runner-cold", &fresh, host, job, None)?;
    }
    fresh.prepare(host)?;
    bench.typed(
        "runner-warm (warm-caches)",
        &fresh,
        host,
        "warm-caches",
        None,
    )?;
    bench.entries = fresh.save(&saved)?;
    for job in JOBS {
        fresh.prepare(host)?;
        let restore = fresh.restore(&saved, &mut bench.entries)?;
        bench.typed("runner-warm", &fresh, host, job, Some(restore))?;
    }
    Ok(())
}

/// One of CI's cache entries as actions/cache stores it (one tar through zstd): its weight, and the
/// restores the warm jobs paid for it.
pub struct EntryWeight {
    pub name: &'static str,
    pub compressed_mb: f64,
    pub disk_mb: f64,
    pub files: u64,
    pub restore_seconds: Vec<f64>,
}

/// A runner's HOME, checkout and temporary directory, made fresh before each job.
pub struct FreshRunner {
    pub home: PathBuf,
    pub checkout: PathBuf,
    pub tmp: PathBuf,
}

impl FreshRunner {
    /// Empty HOME and temp, the sources copied anew.
    fn prepare(&self, host: &HostEnv) -> Result<()> {
        for dir in [&self.home, &self.checkout, &self.tmp] {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir)?;
        }
        copy_sources(host, &self.checkout, false)
    }

    /// Packs each entry's paths as actions/cache does (`tar -P` through `zstd -T0 --long=30`) into
    /// `saved/<entry>.tar.zst`, weighs it, and removes the paths.
    fn save(&self, saved: &Path) -> Result<Vec<EntryWeight>> {
        fs::create_dir_all(saved)?;
        let sh = Shell::new()?;
        let mut weights = Vec::new();
        for entry in &ci_cache::ENTRIES {
            let paths: Vec<PathBuf> = self.paths(entry).filter(|p| p.exists()).collect();
            let archive = saved.join(format!("{}.tar.zst", entry.name));
            let args = &paths;
            cmd!(
                sh,
                "tar --posix --use-compress-program {ZSTD} -cPf {archive} {args...}"
            )
            .quiet()
            .run()?;
            let (mut files, mut bytes) = (0, 0);
            for path in &paths {
                let (f, b) = weigh(path)?;
                (files, bytes) = (files + f, bytes + b);
                fs::remove_dir_all(path)?;
            }
            weights.push(EntryWeight {
                name: entry.name,
                compressed_mb: fs::metadata(&archive)?.len() as f64 / 1e6,
                disk_mb: bytes as f64 / 1e6,
                files,
                restore_seconds: Vec::new(),
            });
        }
        Ok(weights)
    }

    /// Extracts every saved entry back into place, as actions/cache restores it; each entry's time is
    /// recorded in `weights`, the sum returned.
    fn restore(&self, saved: &Path, weights: &mut [EntryWeight]) -> Result<f64> {
        let sh = Shell::new()?;
        // A fresh runner has nothing waiting to be written back: the fresh checkout's writes are not
        // the restore's.
        cmd!(sh, "sync").quiet().run()?;
        let mut total = 0.0;
        for weight in weights {
            let archive = saved.join(format!("{}.tar.zst", weight.name));
            let start = Instant::now();
            cmd!(sh, "tar --use-compress-program {UNZSTD} -xPf {archive}")
                .quiet()
                .run()?;
            let seconds = start.elapsed().as_secs_f64();
            weight.restore_seconds.push(seconds);
            total += seconds;
        }
        Ok(total)
    }

    /// Each path `entry` holds, here.
    fn paths<'a>(&'a self, entry: &'a ci_cache::Entry) -> impl Iterator<Item = PathBuf> + 'a {
        (entry.paths.iter()).map(|p| ci_cache::resolve(p, &self.home, &self.checkout))
    }
}

/// actions/cache's compressor and decompressor, as it calls them on Linux.
const ZSTD: &str = "zstd -T0 --long=30";
const UNZSTD: &str = "unzstd --long=30";

/// Files (symlinks count as files, as tar stores them) and bytes on disk under `path`.
fn weigh(path: &Path) -> Result<(u64, u64)> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok((1, meta.blocks() * 512));
    }
    let mut total = (0, meta.blocks() * 512);
    for entry in fs::read_dir(path)? {
        let (f, b) = weigh(&entry?.path())?;
        total = (total.0 + f, total.1 + b);
    }
    Ok(total)
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
