//! The builds the driver reports on: a job for a platform, with its name, artifact directory and plan.

use std::path::PathBuf;

use super::{check_cache, cibuildwheel, node, runtime, wheels};
use crate::cache::CacheSetup;
use crate::flags::BuildArgs;
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::platform::{GLIBC_FLOOR_MINOR, MACOSX_DEPLOYMENT_TARGET, Os, Platform, Runner};

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

/// One job for one platform: everything its plan reads.
pub struct Build<'a> {
    pub host: &'a HostEnv,
    pub cache: &'a CacheSetup,
    pub platform: Platform,
    /// Where this build's artifacts go.
    pub dist: PathBuf,
    /// How its smoke tests run the artifacts.
    pub runner: Runner,
}

impl Build<'_> {
    /// cargo's output directory for this platform.
    pub fn release_dir(&self) -> PathBuf {
        self.host
            .target_dir()
            .join(self.platform.triple)
            .join("release")
    }

    /// A scratch directory outside the repository for a smoke test.
    pub fn smoke_dir(&self, name: &str) -> PathBuf {
        match self.host.platform == Some(self.platform) {
            true => self.host.temp.join(name),
            false => self
                .host
                .temp
                .join(format!("{name}-{}", self.platform.triple)),
        }
    }

    /// The platform's floor: the ELF machine and newest `GLIBC_` version on Linux, the deployment
    /// target on macOS.
    pub fn floor_check(&self, path: PathBuf) -> Step {
        match self.platform.os {
            Os::Linux => Step::new(
                "check the platform floor",
                Action::CheckElf {
                    machine: self.platform.elf_machine(),
                    max_glibc_minor: GLIBC_FLOOR_MINOR,
                    path,
                },
            ),
            Os::MacOs => Cmd::new("vtool", &self.host.root)
                .args(["-show-build"])
                .arg_path(&path)
                .expect_stdout_contains(format!("minos {MACOSX_DEPLOYMENT_TARGET}"))
                .into_step("check the platform floor"),
        }
    }

    /// The one line a build says when its smoke tests cannot run here, or nothing.
    pub fn not_run(&self) -> Option<String> {
        match &self.runner {
            Runner::NotRun(why) => Some(format!(
                "smoke tests of {} not run: {why}; the artifacts were checked statically",
                self.platform.triple
            )),
            _ => None,
        }
    }
}
