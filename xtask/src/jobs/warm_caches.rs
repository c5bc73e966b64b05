//! warm-caches: the three build jobs' own plans (features unify per `-p` selection: a plan of its own
//! would fill other cache entries), then the target layer CI saves beside the compiler cache.

use anyhow::Result;

use crate::build::{self, BuildJob, Builds, target_layer};
use crate::context::Context;
use crate::flags::{BuildArgs, CacheMode, WarmCaches};

impl Builds for WarmCaches {
    fn args(&self) -> &BuildArgs {
        &self.build
    }

    fn builds(&self) -> Vec<BuildJob> {
        BuildJob::WARMED.to_vec()
    }

    /// Warming without a cache is pointless: the cache is required unless asked otherwise.
    fn default_mode(&self) -> CacheMode {
        CacheMode::Require
    }
}

impl WarmCaches {
    pub fn run(self, cx: &Context) -> Result<()> {
        build::run(&self, cx)?;
        let manifest = cx.host.root.join("Cargo.toml");
        target_layer::prune_to_layer(&cx.host, &manifest, cx.global.dry_run)
    }
}
