//! One module per job. Build jobs are `plan(host, cache) -> Vec<Step>`; `run` does the shared part:
//! tools, the cache decision, executing the plans and reporting cache statistics.

pub mod doctor;
pub mod node;
pub mod runtime;
pub mod wheels;

use std::io::Write;

use anyhow::{Context, Result};

use crate::cache::{self, CacheSetup};
use crate::exec::Executor;
use crate::flags::{Global, Job};
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
use crate::report::{self, JobReport};
use crate::tools;

/// The plans a job stands for, one per reported job; `warm-caches` is the three build jobs' own plans.
pub fn plans(job: &Job, host: &HostEnv, cache: &CacheSetup) -> Vec<(&'static str, Vec<Step>)> {
    match job {
        Job::BuildRuntime => vec![("build-runtime", runtime::plan(host, cache))],
        Job::BuildNode => vec![("build-node", node::plan(host, cache))],
        Job::BuildWheels => vec![("build-wheels", wheels::plan(host, cache))],
        Job::WarmCaches => vec![
            ("build-runtime", runtime::plan(host, cache)),
            ("build-node", node::plan(host, cache)),
            ("build-wheels", wheels::plan(host, cache)),
        ],
        Job::CheckCache { manifest_path } => vec![("check-cache", check_cache(host, cache, manifest_path))],
        Job::LintWorkflows | Job::Doctor { .. } => vec![],
    }
}

pub fn run(job: Job, global: Global, host: HostEnv) -> Result<()> {
    if let Job::Doctor { json } = job {
        return doctor::run(&global, &host, json);
    }
    let mut exec = Executor::new(&host, global.dry_run);
    let python3 = host.python3.as_deref().context("python3 is not on PATH; the tools venv needs it")?;
    let bootstrap = tools::bootstrap(&host.tools, &host.tools_state, python3);
    exec.run_steps(&bootstrap).context("installing the pinned tools")?;
    if let Job::LintWorkflows = job {
        return exec.run_steps(&[Cmd::new(host.tools.bin("actionlint"), &host.root).into_step("actionlint")]);
    }

    let cache = cache::decide(&global, job.default_cache_mode(), &host, global.dry_run)?;
    for notice in &cache.notices {
        exec.notice(notice);
    }
    exec.info(&cache.summary());
    exec.use_cache(&cache);

    let mut reports = Vec::new();
    for (name, steps) in plans(&job, &host, &cache) {
        let before = cache.stats();
        exec.run_steps(&steps)?;
        if global.dry_run {
            continue;
        }
        let stats = match (before, cache.stats()) {
            (Some(before), Some(after)) => Some(after.since(before)),
            _ => None,
        };
        let mode = match exec.degraded() {
            true => format!("{} (backend died mid-build)", cache.mode.as_str()),
            false => cache.mode_label(),
        };
        reports.push(JobReport {
            job: name.to_string(),
            mode,
            backend: cache.backend.kind().to_string(),
            decision_ms: cache.decision_ms,
            stats,
        });
    }
    if global.dry_run {
        return Ok(());
    }
    exec.info(&report::table(&reports));
    report::merge_into(&host.dist().join("cache-report.json"), &reports)?;
    if let Some(summary) = host.var("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        append(summary, &report::markdown(&reports))?;
    }
    if let Some(output) = host.var("GITHUB_OUTPUT").filter(|s| !s.is_empty()) {
        let artifacts: String = reports.iter().map(|r| format!("{}={}\n", r.job, artifact_dir(&host, &r.job))).collect();
        append(output, &artifacts)?;
    }
    Ok(())
}

fn artifact_dir(host: &HostEnv, job: &str) -> String {
    let sub = match job {
        "build-runtime" => "runtime",
        "build-node" => "node",
        "build-wheels" => "wheels",
        _ => "",
    };
    host.dist().join(sub).display().to_string()
}

/// A plain release build of any crate with the compile environment every job uses.
fn check_cache(host: &HostEnv, cache: &CacheSetup, manifest: &std::path::Path) -> Vec<Step> {
    let manifest = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    vec![
        Cmd::new(cargo(host), manifest.parent().unwrap_or(&host.root))
            .args(["build", "--release", "--target", tools::TARGET, "--manifest-path"])
            .arg_path(&manifest)
            .compile_env(&compile_env(host, cache))
            .into_step("cargo build (check-cache)"),
    ]
}

fn append(path: &str, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening {path}"))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {path}"))
}

/// What every compile step adds to its environment: the cache decision and the one shared linker.
pub fn compile_env(host: &HostEnv, cache: &CacheSetup) -> Vec<(String, Option<String>)> {
    let mut env = cache.env.clone();
    env.push((linker_var(), Some(host.tools.linker().display().to_string())));
    env
}

fn linker_var() -> String {
    format!("CARGO_TARGET_{}_LINKER", tools::TARGET.to_uppercase().replace('-', "_"))
}

pub fn cargo(host: &HostEnv) -> String {
    host.var("CARGO").unwrap_or("cargo").to_string()
}
