//! build-node: the Node addon (plan: build/node.rs).

use anyhow::Result;

use crate::build::{self, BuildJob, Builds};
use crate::context::Context;
use crate::flags::{BuildArgs, BuildNode};

impl Builds for BuildNode {
    fn args(&self) -> &BuildArgs {
        &self.build
    }

    fn builds(&self) -> Vec<BuildJob> {
        vec![BuildJob::Node]
    }
}

impl BuildNode {
    pub fn run(self, cx: &Context) -> Result<()> {
        build::run(&self, cx)
    }
}
