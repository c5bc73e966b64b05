//! build-runtime: the `boxspec` CLI (plan: build/runtime.rs).

use anyhow::Result;

use crate::build::{self, BuildJob, Builds};
use crate::context::Context;
use crate::flags::{BuildArgs, BuildRuntime};

impl Builds for BuildRuntime {
    fn args(&self) -> &BuildArgs {
        &self.build
    }

    fn builds(&self) -> Vec<BuildJob> {
        vec![BuildJob::Runtime]
    }
}

impl BuildRuntime {
    pub fn run(self, cx: &Context) -> Result<()> {
        build::run(&self, cx)
    }
}
