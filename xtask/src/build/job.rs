//! The builds the driver reports on: a job for a platform, with its name, artifact directory and plan.

use std::path::PathBuf;

use super::Build;
use super::{check_cache, cibuildwheel, node, runtime, wheels};
use crate::cache::CacheSetup;
use crate::flags::BuildArgs;
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
use crate::platform::Platform;

/// What one reported build does. `warm-caches` is the three build jobs' own plans, never a plan of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildJob {
    Runtime,
    Node,
    Wheels,
    /// The wheel built by cibuildwheel in its own container (the flags name its engine and image).
    WheelsViaCibuildwheel(BuildArgs),
    /// Any crate, built like the jobs build (the fault drills' fixture).
    CheckCache(PathBuf),
}

impl BuildJob {
    pub const WARMED: [BuildJob; 3] = [BuildJob::Runtime, BuildJob::Node, BuildJob::Wheels];

    /// The name in reports, as the user types it.
    pub fn name(&self) -> &'static str {
        match self {
            BuildJob::Runtime => "build-runtime",
            BuildJob::Node => "build-node",
            BuildJob::Wheels | BuildJob::WheelsViaCibuildwheel(_) => "build-wheels",
            BuildJob::CheckCache(_) => "check-cache",
        }
    }

    /// Where its artifacts go: `dist/<job>/` for the host's own platform, `dist/<job>/<triple>/` for others.
    pub fn dist_dir(&self, host: &HostEnv, platform: Platform) -> PathBuf {
        let sub = match self {
            BuildJob::Runtime => "runtime",
            BuildJob::Node => "node",
            BuildJob::Wheels | BuildJob::WheelsViaCibuildwheel(_) => "wheels",
            BuildJob::CheckCache(_) => "",
        };
        match host.platform == Some(platform) {
            true => host.dist().join(sub),
            false => host.dist().join(sub).join(platform.triple),
        }
    }

    /// `cargo fetch` of what the job compiles for `platform` (cibuildwheel's container fetches its own).
    pub fn fetch(&self, host: &HostEnv, platform: Platform) -> Option<Step> {
        // cargo asks rustc about the target: never through a wrapper the caller's environment sets.
        let cmd = (Cmd::new(host.cargo(), &host.root).env("RUSTC_WRAPPER", "")).args([
            "fetch",
            "--target",
            platform.triple,
        ]);
        let cmd = match self {
            BuildJob::WheelsViaCibuildwheel(_) => return None,
            BuildJob::CheckCache(manifest) => cmd.args(["--manifest-path"]).arg_path(manifest),
            BuildJob::Runtime | BuildJob::Node | BuildJob::Wheels => cmd.args(["--locked"]),
        };
        Some(cmd.into_step(format!("crates: cargo fetch ({})", platform.triple)))
    }

    /// The job's steps on the host (container mode moves its compile steps afterwards).
    pub fn plan(&self, host: &HostEnv, cache: &CacheSetup, platform: Platform) -> Vec<Step> {
        let build = Build {
            host,
            cache,
            platform,
            dist: self.dist_dir(host, platform),
            runner: host.runner(platform),
        };
        match self {
            BuildJob::Runtime => runtime::plan(&build),
            BuildJob::Node => node::plan(&build),
            BuildJob::Wheels => wheels::plan(&build),
            BuildJob::WheelsViaCibuildwheel(args) => cibuildwheel::plan(&build, args),
            BuildJob::CheckCache(manifest) => check_cache::plan(&build, manifest),
        }
    }
}
