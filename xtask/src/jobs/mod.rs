//! The jobs, one file each, named after its subcommand. Each adds `run(self, &Context)` to its flags
//! struct (rust-analyzer's shape): parse nothing more, call its room (`build/`, `release/`, `bench/`),
//! return. `run` below is the one dispatch.
//!
//! Adding a job:
//! 1. a variant and a struct in `flags.rs` (the variant's doc comment is its help line);
//! 2. `jobs/<subcommand>.rs` with `impl flags::<Job> { pub fn run(self, cx: &Context) -> Result<()> }`;
//!    a build job implements `build::Builds` (its builds, its default cache mode) and calls `build::run`;
//! 3. its line in `run` below;
//! 4. its row in README's jobs table, and the module map in docs/how-it-works.md (the docs test checks
//!    both), and its dry run in xtask/tests/plans.rs.

mod bench_cache;
mod build_node;
mod build_runtime;
mod build_wheels;
mod check_cache;
mod doctor;
mod lint_workflows;
mod publish;
mod release;
mod target_layer;
mod tools;
mod warm_caches;

use anyhow::Result;

use crate::context::Context;
use crate::flags::Job;

pub fn run(job: Job, cx: &Context) -> Result<()> {
    match job {
        Job::BuildRuntime(job) => job.run(cx),
        Job::BuildNode(job) => job.run(cx),
        Job::BuildWheels(job) => job.run(cx),
        Job::WarmCaches(job) => job.run(cx),
        Job::CheckCache(job) => job.run(cx),
        Job::BenchCache(job) => job.run(cx),
        Job::TargetLayer(job) => job.run(cx),
        Job::Release(job) => job.run(cx),
        Job::Publish(job) => job.run(cx),
        Job::LintWorkflows(job) => job.run(cx),
        Job::Tools(job) => job.run(cx),
        Job::Doctor(job) => job.run(cx),
    }
}
