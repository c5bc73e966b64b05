//! build-wheels: the Python wheel, built by maturin (plan: build/wheels.rs) or cibuildwheel
//! (build/cibuildwheel.rs).

use anyhow::Result;

use crate::build::{self, BuildJob, Builds};
use crate::context::Context;
use crate::flags::{BuildArgs, BuildWheels, Via};

impl Builds for BuildWheels {
    fn args(&self) -> &BuildArgs {
        &self.build
    }

    fn builds(&self) -> Vec<BuildJob> {
        match self.via {
            Via::Maturin => vec![BuildJob::Wheels],
            Via::Cibuildwheel => vec![BuildJob::WheelsViaCibuildwheel(self.build.clone())],
        }
    }
}

impl BuildWheels {
    pub fn run(self, cx: &Context) -> Result<()> {
        build::run(&self, cx)
    }
}
