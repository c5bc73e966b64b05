//! The builds the driver reports on, each with its name, artifact directory and plan.

use std::path::PathBuf;

use super::{check_cache, cibuildwheel, node, runtime, wheels};
use crate::cache::CacheSetup;
use crate::flags::BuildArgs;
use crate::host::HostEnv;
use crate::plan::Step;

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

    /// Where its artifacts go, under the dist directory.
    pub fn dist_dir(&self, host: &HostEnv) -> PathBuf {
        let sub = match self {
            BuildJob::Runtime => "runtime",
            BuildJob::Node => "node",
            BuildJob::Wheels | BuildJob::WheelsViaCibuildwheel(_) => "wheels",
            BuildJob::CheckCache(_) => "",
        };
        host.dist().join(sub)
    }

    /// The job's steps on the host (container mode moves its compile steps afterwards).
    pub fn plan(&self, host: &HostEnv, cache: &CacheSetup) -> Vec<Step> {
        match self {
            BuildJob::Runtime => runtime::plan(host, cache),
            BuildJob::Node => node::plan(host, cache),
            BuildJob::Wheels => wheels::plan(host, cache),
            BuildJob::WheelsViaCibuildwheel(args) => cibuildwheel::plan(host, cache, args),
            BuildJob::CheckCache(manifest) => check_cache::plan(host, cache, manifest),
        }
    }
}
