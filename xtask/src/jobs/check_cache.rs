//! check-cache: any crate built like the jobs build (plan: build/check_cache.rs).

use anyhow::Result;

use crate::build::{self, BuildJob, Builds};
use crate::context::Context;
use crate::flags::{BuildArgs, CheckCache};

impl Builds for CheckCache {
    fn args(&self) -> &BuildArgs {
        &self.build
    }

    fn builds(&self) -> Vec<BuildJob> {
        vec![BuildJob::CheckCache(self.manifest_path.clone())]
    }
}

impl CheckCache {
    pub fn run(self, cx: &Context) -> Result<()> {
        build::run(&self, cx)
    }
}
