//! One job for one platform: the value every job's plan reads (host, cache decision, platform, where its
//! artifacts go, how its smoke tests run them), with the rules they share.

use std::path::PathBuf;

use crate::cache::CacheSetup;
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
use crate::platform::{MACOSX_DEPLOYMENT_TARGET, Os, Platform, Runner};

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
