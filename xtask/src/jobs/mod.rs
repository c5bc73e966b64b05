//! One module per job. Build jobs are `plan(host, cache) -> Vec<Step>`; `run` does the shared part:
//! tools, the cache decision, executing the plans and reporting cache statistics.

pub mod bench;
pub mod doctor;
pub mod node;
pub mod runtime;
pub mod wheels;

use std::io::Write;

use anyhow::{Context, Result};

use crate::cache::{self, CacheSetup};
use crate::container::{self, Container};
use crate::exec::Executor;
use crate::flags::{Global, Job, Via};
use crate::host::HostEnv;
use crate::plan::{Cmd, Step};
use crate::report::{self, JobReport};
use crate::tools;

/// The plans a job stands for, one per reported job; `warm-caches` is the three build jobs' own plans.
/// With a container, their compile steps run in it.
pub fn plans(
    job: &Job,
    host: &HostEnv,
    cache: &CacheSetup,
    container: Option<&Container>,
) -> Vec<(&'static str, Vec<Step>)> {
    let plans = host_plans(job, host, cache);
    match container {
        Some(c) => plans
            .into_iter()
            .map(|(name, steps)| (name, c.plan(steps, host, cache)))
            .collect(),
        None => plans,
    }
}

fn host_plans(job: &Job, host: &HostEnv, cache: &CacheSetup) -> Vec<(&'static str, Vec<Step>)> {
    match job {
        Job::BuildRuntime(_) => vec![("build-runtime", runtime::plan(host, cache))],
        Job::BuildNode(_) => vec![("build-node", node::plan(host, cache))],
        Job::BuildWheels {
            via: Via::Cibuildwheel,
            build,
        } => vec![(
            "build-wheels",
            wheels::plan_cibuildwheel(host, cache, build),
        )],
        Job::BuildWheels { .. } => vec![("build-wheels", wheels::plan(host, cache))],
        Job::WarmCaches(_) => vec![
            ("build-runtime", runtime::plan(host, cache)),
            ("build-node", node::plan(host, cache)),
            ("build-wheels", wheels::plan(host, cache)),
        ],
        Job::CheckCache { manifest_path, .. } => {
            vec![("check-cache", check_cache(host, cache, manifest_path))]
        }
        Job::LintWorkflows | Job::Doctor { .. } | Job::BenchCache { .. } => vec![],
    }
}

pub fn run(job: Job, global: Global, host: HostEnv) -> Result<()> {
    if let Job::Doctor { json } = job {
        return doctor::run(&global, &host, json);
    }
    // cibuildwheel runs its own containers; --container only names its engine there.
    let container = match job.build_args() {
        Some(build)
            if !matches!(
                job,
                Job::BuildWheels {
                    via: Via::Cibuildwheel,
                    ..
                }
            ) =>
        {
            Container::probe(build, &host, global.dry_run)?
        }
        _ => None,
    };
    let mut exec = Executor::new(&host, global.dry_run);
    let python3 = host
        .python3
        .as_deref()
        .context("python3 is not on PATH; the tools venv needs it")?;
    let bootstrap = tools::bootstrap(&host.tools, &host.tools_state, python3);
    exec.run_steps(&bootstrap)
        .context("installing the pinned tools")?;
    match &job {
        Job::LintWorkflows => {
            let lint = Cmd::new(host.tools.bin("actionlint"), &host.root).into_step("actionlint");
            return exec.run_steps(&[lint]);
        }
        Job::BenchCache { json } if !global.dry_run => return bench::run(&host, json.as_deref()),
        _ => {}
    }

    let cache = cache::decide(&global, job.default_cache_mode(), &host, global.dry_run)?;
    for notice in &cache.notices {
        exec.notice(notice);
    }
    exec.info(&cache.summary());
    match &container {
        Some(c) => exec.info(&format!(
            "container: {} {} · {} toolchain · as {}:{}",
            c.engine.as_str(),
            c.image,
            if c.host_toolchain { "host" } else { "image" },
            c.uid,
            c.gid
        )),
        // The watchdog guards the host's sccache server; a container runs its own.
        None => exec.use_cache(&cache),
    }

    let mut reports = Vec::new();
    for (name, steps) in plans(&job, &host, &cache, container.as_ref()) {
        // A container runs its own sccache server: the host's counters say nothing about its build.
        let before = match &container {
            None => cache.stats(),
            Some(_) if global.dry_run => None,
            Some(_) => {
                container::clear_stats(&host);
                None
            }
        };
        let compile_before = exec.compile_time;
        exec.run_steps(&steps)?;
        if global.dry_run {
            continue;
        }
        let stats = match &container {
            Some(_) => container::take_stats(&host),
            None => before
                .zip(cache.stats())
                .map(|(before, after)| after.since(before)),
        };
        let mode = if exec.degraded() {
            format!("{} (backend died mid-build)", cache.mode.as_str())
        } else if container.is_some() && cache.wrapper.is_some() && stats.is_none() {
            format!(
                "{} (sccache did not run in the container)",
                cache.mode.as_str()
            )
        } else {
            cache.mode_label()
        };
        reports.push(JobReport {
            job: name.to_string(),
            mode,
            backend: cache.backend.kind().to_string(),
            decision_ms: cache.decision_ms,
            compile_seconds: (exec.compile_time - compile_before).as_secs_f64(),
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
        let artifacts: String = reports
            .iter()
            .map(|r| format!("{}={}\n", r.job, artifact_dir(&host, &r.job)))
            .collect();
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
            .args([
                "build",
                "--release",
                "--target",
                tools::TARGET,
                "--manifest-path",
            ])
            .arg_path(&manifest)
            .compile_env(&compile_env(host, cache))
            .into_step("cargo build (check-cache)"),
    ]
}

fn append(path: &str, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {path}"))
}

/// What every compile step adds to its environment: the cache decision and the one shared linker.
pub fn compile_env(host: &HostEnv, cache: &CacheSetup) -> Vec<(String, Option<String>)> {
    let mut env = cache.env.clone();
    env.push((
        linker_var(),
        Some(host.tools.linker().display().to_string()),
    ));
    env
}

fn linker_var() -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        tools::TARGET.to_uppercase().replace('-', "_")
    )
}

pub fn cargo(host: &HostEnv) -> String {
    host.var("CARGO").unwrap_or("cargo").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Backend;
    use crate::flags::BuildArgs;
    use crate::plan::{Action, Cmd};

    fn wheels_job(via: Via) -> Job {
        Job::BuildWheels {
            build: BuildArgs::default(),
            via,
        }
    }

    fn build_jobs() -> [Job; 3] {
        [
            Job::BuildRuntime(BuildArgs::default()),
            Job::BuildNode(BuildArgs::default()),
            wheels_job(Via::Maturin),
        ]
    }

    fn compile_steps(steps: &[Step]) -> Vec<&Cmd> {
        steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Run(cmd) if cmd.compiles => Some(cmd),
                _ => None,
            })
            .collect()
    }

    fn env<'a>(cmd: &'a Cmd, name: &str) -> Option<Option<&'a str>> {
        cmd.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    fn setups() -> [CacheSetup; 3] {
        [
            CacheSetup::fixture(
                Some("/t/venv/bin/sccache"),
                Backend::Local {
                    dir: "/h/.cache/sccache".into(),
                },
            ),
            CacheSetup::fixture(
                Some("/t/venv/bin/sccache"),
                Backend::Remote {
                    kind: "redis",
                    health: None,
                },
            ),
            CacheSetup::fixture(None, Backend::Disabled),
        ]
    }

    /// Every job compiles once, for the one target, through the cache decision's wrapper and the one linker.
    #[test]
    fn every_build_job_compiles_the_same_way() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let jobs = build_jobs();
        for cache in setups() {
            let wrapper = cache
                .wrapper
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            for job in &jobs {
                let plans = plans(job, &host, &cache, None);
                let [(name, steps)] = plans.as_slice() else {
                    panic!("{job:?}: one plan")
                };
                let compiles = compile_steps(steps);
                assert_eq!(compiles.len(), 1, "{name}");
                let cmd = compiles[0];
                assert_eq!(
                    env(cmd, "RUSTC_WRAPPER"),
                    Some(Some(wrapper.as_str())),
                    "{name}"
                );
                assert_eq!(
                    env(cmd, "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER"),
                    Some(Some(
                        "/home/u/.cache/boxspec-xtask/tools/bin/zig-cc-glibc2.17"
                    )),
                    "{name}"
                );
                assert_eq!(
                    env(cmd, "CARGO_INCREMENTAL"),
                    cache.wrapper.as_ref().map(|_| Some("0")),
                    "{name}"
                );
                let target = cmd
                    .args
                    .windows(2)
                    .find(|w| w[0] == "--target")
                    .map(|w| w[1].as_str());
                assert_eq!(target, Some(tools::TARGET), "{name}");
                assert!(cmd.args.contains(&"--release".to_string()), "{name}");
            }
        }
    }

    #[test]
    fn warm_caches_runs_the_build_jobs_own_plans() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        for cache in setups() {
            let warm = plans(&Job::WarmCaches(BuildArgs::default()), &host, &cache, None);
            let each: Vec<_> = build_jobs()
                .iter()
                .flat_map(|job| plans(job, &host, &cache, None))
                .collect();
            assert_eq!(warm, each);
        }
    }

    /// Each job ends with smoke tests that use the artifact as a user would, and checks glibc first.
    #[test]
    fn artifacts_are_checked_and_smoke_tested() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let cache = CacheSetup::fixture(None, Backend::Disabled);
        let cases: [(Job, &str, &[&str]); 3] = [
            (
                Job::BuildRuntime(BuildArgs::default()),
                "dist/runtime/boxspec",
                &["smoke: boxspec validate", "smoke: boxspec digest"],
            ),
            (
                Job::BuildNode(BuildArgs::default()),
                "dist/node/boxspec.linux-x64-gnu.node",
                &["smoke: require dist/node", "smoke: node --test"],
            ),
            (
                wheels_job(Via::Maturin),
                "target/x86_64-unknown-linux-gnu/release/libboxspec.so",
                &["smoke: import boxspec", "smoke: pytest"],
            ),
        ];
        for (job, checked, smokes) in cases {
            let steps = plans(&job, &host, &cache, None).remove(0).1;
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            let glibc = steps.iter().position(|s| {
                matches!(&s.action, Action::CheckGlibc { path, max_minor: 17 } if path == &host.root.join(checked))
            });
            let glibc =
                glibc.unwrap_or_else(|| panic!("{job:?}: no glibc check of {checked}: {names:?}"));
            for smoke in smokes {
                let at = names
                    .iter()
                    .position(|n| n == smoke)
                    .unwrap_or_else(|| panic!("{job:?}: {smoke} missing"));
                assert!(at > glibc, "{job:?}: {smoke} runs before the glibc check");
                let Action::Run(cmd) = &steps[at].action else {
                    panic!("{smoke} runs nothing")
                };
                assert!(
                    !cmd.cwd.starts_with(&host.root),
                    "{smoke} runs inside the repository"
                );
            }
        }
    }

    #[test]
    fn node_modules_are_installed_only_when_stale() {
        let cache = CacheSetup::fixture(None, Backend::Disabled);
        for (current, want_npm_ci) in [(true, false), (false, true)] {
            let mut host = HostEnv::fixture(&[("HOME", "/home/u")]);
            host.node_modules_current = current;
            let steps = plans(&Job::BuildNode(BuildArgs::default()), &host, &cache, None)
                .remove(0)
                .1;
            assert_eq!(steps.iter().any(|s| s.name == "npm ci"), want_npm_ci);
        }
    }

    #[test]
    fn dry_run_plan_shows_program_args_env_and_cwd() {
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        let cache = setups()[0].clone();
        let text: String = plans(&wheels_job(Via::Maturin), &host, &cache, None)
            .remove(0)
            .1
            .iter()
            .map(|s| s.to_string())
            .collect();
        for needle in [
            "[maturin build] (in /src/boxspec)",
            "RUSTC_WRAPPER=/t/venv/bin/sccache",
            "CARGO_INCREMENTAL=0",
            "/home/u/.cache/boxspec-xtask/tools/venv/bin/maturin build --release --locked --target x86_64-unknown-linux-gnu",
            "--compatibility manylinux2014",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }
}
