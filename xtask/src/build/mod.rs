//! The build room: what the build jobs (build-runtime, build-node, build-wheels, warm-caches,
//! check-cache) share. A job names its builds (`job.rs`'s `BuildJob`) for the platforms asked for; each
//! build's plan (`runtime.rs`, `node.rs`, `wheels.rs`, `cibuildwheel.rs`, `check_cache.rs`) reads one
//! `Build` (below) and the compile environment (`compile.rs`); `pipeline.rs` takes them through the
//! tools, the cache decision, execution and the report; `target_layer.rs` prunes what warm-caches leaves.

pub mod check_cache;
pub mod cibuildwheel;
pub mod compile;
pub mod job;
pub mod node;
pub mod pipeline;
pub mod runtime;
pub mod target_layer;
#[cfg(test)]
mod tests;
pub mod wheels;

use std::path::PathBuf;

use anyhow::Result;

use crate::cache::CacheSetup;
use crate::context::Context;
use crate::flags::{BuildArgs, CacheMode, UsageError};
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
use crate::platform::{MACOSX_DEPLOYMENT_TARGET, Os, Platform, Runner};
pub use job::BuildJob;

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
            Os::Linux => Step::new("check the platform floor", self.platform.elf_floor(path)),
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

/// A job that builds: the builds it stands for, on the platforms `--target` asks for.
pub trait Builds: std::fmt::Debug {
    fn args(&self) -> &BuildArgs;
    fn builds(&self) -> Vec<BuildJob>;
    /// The cache mode unless one is asked for.
    fn default_mode(&self) -> CacheMode {
        CacheMode::Auto
    }
}

/// A build job's run: its builds for each platform through the pipeline.
pub fn run(job: &impl Builds, cx: &Context) -> Result<()> {
    let builds = for_platforms(&job.builds(), &job.args().targets, &cx.host)?;
    pipeline::run(&builds, job.args(), cx, job.default_mode())
}

/// Each job for each platform asked for (`--target`), the machine's own by default.
pub fn for_platforms(
    jobs: &[BuildJob],
    targets: &[String],
    host: &HostEnv,
) -> Result<Vec<(BuildJob, Platform)>, UsageError> {
    let Some(own) = host.platform else {
        return Err(UsageError(
            "this machine is not a platform the SDKs ship: build on Linux (x86_64, aarch64) or a Mac"
                .into(),
        ));
    };
    let platforms: Vec<Platform> = match targets {
        [] => vec![own],
        targets => (targets.iter())
            .map(|t| Platform::requested(t, own))
            .collect::<Result<_, _>>()?,
    };
    if platforms.len() > 1 && jobs.len() == 1 {
        return Err(UsageError(
            "--target once per job (warm-caches takes several)".into(),
        ));
    }
    let cibuildwheel = jobs
        .iter()
        .any(|j| matches!(j, BuildJob::WheelsViaCibuildwheel(_)));
    if cibuildwheel && platforms != [own] {
        return Err(UsageError(
            "--via cibuildwheel builds this machine's own platform only".into(),
        ));
    }
    Ok(platforms
        .iter()
        .flat_map(|p| jobs.iter().map(move |j| (j.clone(), *p)))
        .collect())
}
