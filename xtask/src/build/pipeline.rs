//! The build pipeline every build job goes through: probe the container engine, check that the targets'
//! standard libraries are installed, install the tools, fetch the crates, decide the cache, plan (pure:
//! `plans`), execute (compile steps wrapped into the container as they run, so an uncached retry is
//! wrapped anew) under the backend watch with the uncached retry, report.

use anyhow::{Context as _, Result, bail};

use super::job::BuildJob;
use crate::cache::watch::Broken;
use crate::cache::{self, CacheSetup};
use crate::container::{self, Container};
use crate::context::Context;
use crate::exec::{Executor, Ran, Watch};
use crate::flags::{BuildArgs, CacheMode};
use crate::host::HostEnv;
use crate::plan::{Action, Phase, Step};
use crate::platform::{self, Platform};
use crate::report::{self, JobReport};

pub fn run(
    jobs: &[(BuildJob, Platform)],
    args: &BuildArgs,
    cx: &Context,
    default_mode: CacheMode,
) -> Result<()> {
    let (global, host) = (&cx.global, &cx.host);
    // cibuildwheel runs its own containers; --container only names its engine there.
    let via_cibuildwheel = matches!(jobs, [(BuildJob::WheelsViaCibuildwheel(_), _)]);
    let container = match via_cibuildwheel {
        true => None,
        false => Container::probe(args, host, global.dry_run)?,
    };
    // With the image's own toolchain the host's standard libraries do not matter.
    if !global.dry_run && container.as_ref().is_none_or(|c| c.host_toolchain) {
        let platforms: Vec<Platform> = jobs.iter().map(|(_, p)| *p).collect();
        let rustc = host
            .var("RUSTC")
            .filter(|r| !r.is_empty())
            .unwrap_or("rustc");
        platform::require_rust_targets(&platforms, host.platform, &host.root, rustc)?;
    }
    let mut exec = cx.tools_installed()?;
    exec.run_steps(&fetches(jobs, host))
        .context("downloading the crates (the registry must be reachable the first time)")?;
    let cache = cache::decide(global, default_mode, host, global.dry_run)?;
    for notice in &cache.notices {
        exec.notice(notice);
    }
    exec.info(&cache.summary());
    if let Some(c) = &container {
        let toolchain = if c.host_toolchain { "host" } else { "image" };
        exec.info(&format!(
            "container: {} {} · {toolchain} toolchain · as {}:{}",
            c.engine.as_str(),
            c.image,
            c.uid,
            c.gid
        ));
    }
    let mut run = Execution {
        exec,
        cache: &cache,
        container: container.as_ref(),
        host,
        host_server_compiles: container.is_none() && !via_cibuildwheel,
        cache_lost: None,
    };
    let mut reports = Vec::new();
    for ((job, platform), steps) in plans(jobs, host, &cache, container.as_ref()) {
        let ran = run.job(job, *platform, &steps);
        run.say_tool_repairs();
        reports.extend(ran?);
    }
    if global.dry_run {
        return Ok(());
    }
    run.exec.info(&report::table(&reports));
    report::publish(host, &reports, report::run_times(host, &run.exec))
}

/// The crates the builds need, downloaded before anything compiles: a step of their own (the report
/// times it; a container builds offline), once per manifest and target.
pub fn fetches(jobs: &[(BuildJob, Platform)], host: &HostEnv) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for step in (jobs.iter()).filter_map(|(job, platform)| job.fetch(host, *platform)) {
        if !steps.iter().any(|s| s.to_string() == step.to_string()) {
            steps.push(step);
        }
    }
    steps
}

/// Each job's steps, with its compile steps moved into the container when there is one.
pub fn plans<'a>(
    jobs: &'a [(BuildJob, Platform)],
    host: &HostEnv,
    cache: &CacheSetup,
    container: Option<&Container>,
) -> Vec<(&'a (BuildJob, Platform), Vec<Step>)> {
    let plan = |(job, platform): &(BuildJob, Platform)| match container {
        Some(c) => c.plan(job.plan(host, cache, *platform), host, cache),
        None => job.plan(host, cache, *platform),
    };
    jobs.iter().map(|build| (build, plan(build))).collect()
}

/// Runs the plans and owns what the cache does to them: the watch, and the uncached retry after the
/// backend died (then every later compile step of the run is uncached too).
struct Execution<'a> {
    exec: Executor,
    cache: &'a CacheSetup,
    container: Option<&'a Container>,
    host: &'a HostEnv,
    /// The host's sccache server answers the compile steps (no container, ours or cibuildwheel's).
    host_server_compiles: bool,
    /// Set once the cache broke mid-run: every later compile step runs uncached.
    cache_lost: Option<Broken>,
}

impl Execution<'_> {
    /// One notice when sccache fell back to local compiles for units it sent out.
    fn dist_notice(&self, stats: Option<&cache::Stats>) {
        if let (Some(_), Some(s)) = (&self.cache.dist, stats)
            && s.dist_errors > 0
        {
            self.exec.notice(&format!(
                "{} of {} distributed compiles failed on the sccache-dist side and ran locally \
                 (a scheduler or build server failed during the build)",
                s.dist_errors,
                s.dist_errors + s.dist_compiles
            ));
        }
    }

    fn job(
        &mut self,
        job: &BuildJob,
        platform: Platform,
        steps: &[Step],
    ) -> Result<Option<JobReport>> {
        let before = self.stats_before();
        let compile_before = self.exec.time_in(Phase::Compile);
        for step in steps {
            self.step(step)?;
        }
        if self.exec.dry_run {
            return Ok(None);
        }
        let (stats, restarted) = match self.container {
            Some(_) => (container::take_stats(self.host), false),
            // After the backend died the counters are gone with the server it killed.
            None if self.cache_lost.is_some() => (None, false),
            None => match before.zip(self.cache.server_snapshot()) {
                Some(((_, before), (_, after))) if before != after => (None, true),
                Some(((before, _), (after, _))) => (Some(after.since(before)), false),
                None => (None, false),
            },
        };
        // `--cache read` promises an untrusted build writes nothing: check what the server says it did.
        if let (CacheMode::Read, Some(s)) = (self.cache.mode, &stats)
            && s.writes > 0
        {
            bail!(
                "--cache read: the build wrote {} objects to the cache",
                s.writes
            );
        }
        self.dist_notice(stats.as_ref());
        let mode = match restarted {
            true => format!(
                "{} (sccache server restarted mid-build)",
                self.cache.mode.as_str()
            ),
            false => self.mode_label(stats.is_some()),
        };
        Ok(Some(JobReport {
            job: job.name().to_string(),
            target: platform.triple.to_string(),
            mode,
            backend: self.cache.backend.kind().to_string(),
            decision_ms: self.cache.decision_ms,
            compile_seconds: (self.exec.time_in(Phase::Compile) - compile_before).as_secs_f64(),
            stats,
            dist: (self.cache.dist.as_ref()).map(|d| d.scheduler.clone()),
            artifacts: job.dist_dir(self.host, platform),
        }))
    }

    /// What the linker wrapper repaired during the job: it cannot say so itself (rustc shows a linker's
    /// output only when it fails).
    fn say_tool_repairs(&self) {
        if let Some(repair) = self.host.tools.take_zig_repair() {
            self.exec.notice(&repair);
        }
    }

    /// A container runs its own sccache server: the host's counters say nothing about its build.
    fn stats_before(&self) -> Option<(cache::Stats, Option<u32>)> {
        match self.container {
            None => self.cache.server_snapshot(),
            Some(_) if self.exec.dry_run => None,
            Some(_) => {
                container::clear_stats(self.host);
                None
            }
        }
    }

    fn step(&mut self, step: &Step) -> Result<()> {
        if self.cache_lost.is_some() {
            return self.run(&uncached(step), None).map(drop);
        }
        let Some(broken) = self.run_cached(step)? else {
            return Ok(());
        };
        let backend = self.cache.backend.kind();
        // Warming without a cache would pass having warmed nothing.
        if self.cache.mode == CacheMode::Require {
            bail!("--cache require: {}", broken.what(backend, &step.name));
        }
        self.cache_lost = Some(broken);
        self.exec.notice(&broken.notice(backend, &step.name));
        let retry = Step::new(
            format!("{} (uncached retry)", step.name),
            uncached(step).action,
        );
        if let Ran::Stopped = self.run(&retry, None)? {
            bail!("step `{}` stopped without a watch", retry.name);
        }
        Ok(())
    }

    /// Runs a step with the cache; for a compile step the cache broke under, says what broke (the step
    /// is then retried uncached).
    fn run_cached(&mut self, step: &Step) -> Result<Option<Broken>> {
        if step.compile_cmd().is_none() {
            return self.run(step, None).map(|_| None);
        }
        // The watch guards the sccache server of a compile step: the host's, or the container's own.
        let port = match self.container {
            Some(_) => container::server_port(self.cache).to_string(),
            None => self.cache.port.clone(),
        };
        // sccache fails the compile its server dies under; a real compile error leaves the server be.
        let server_lived = self.host_server_compiles && self.cache.live_server().is_some();
        let mut broken = None;
        let mut dist_watch = self.cache.dist_watch(&port);
        let ran = match self.cache.watch(&port) {
            Some(mut watch) => {
                let mut still_fine = || {
                    let dist = |w: &mut cache::dist_watch::DistWatch| w.check();
                    (watch.check())
                        .and_then(|()| dist_watch.as_mut().map_or(Ok(()), dist))
                        .map_err(|b| broken = Some(b))
                        .is_ok()
                };
                self.run(step, Some(&mut still_fine))
            }
            None => self.run(step, None),
        };
        match ran {
            Ok(Ran::Done) => Ok(None),
            Ok(Ran::Stopped) => broken
                .map(Some)
                .context("the watch stopped a step and said no reason"),
            Err(_) if server_lived && self.cache.live_server().is_none() => {
                Ok(Some(Broken::ServerDied))
            }
            Err(err) => Err(err),
        }
    }

    /// Runs a step; with a container, a compile step runs in it.
    fn run(&mut self, step: &Step, watch: Option<Watch>) -> Result<Ran> {
        let (Some(c), Some(cmd)) = (self.container, step.compile_cmd()) else {
            return self.exec.run_step(step, watch);
        };
        // Named, to remove it by if the watch stops it.
        let name = c.run_name();
        let inside = Step::new(
            step.name.clone(),
            Action::Run(c.wrap(cmd, &name, self.host, self.cache)),
        );
        let ran = self.exec.run_step(&inside, watch);
        if let Ok(Ran::Stopped) = ran {
            c.remove(&name);
        }
        ran
    }

    fn mode_label(&self, has_stats: bool) -> String {
        let mode = self.cache.mode.as_str();
        if let Some(broken) = self.cache_lost {
            format!("{mode} ({})", broken.report_label())
        } else if self.container.is_some() && self.cache.wrapper.is_some() && !has_stats {
            format!("{mode} (sccache did not run in the container)")
        } else {
            self.cache.mode_label()
        }
    }
}

/// The step with the cache switched off, if it compiles.
fn uncached(step: &Step) -> Step {
    let mut step = step.clone();
    if let Action::Run(cmd) = &mut step.action
        && cmd.compiles
    {
        cmd.env.extend(&cache::uncached_env());
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PLATFORMS;

    /// One `cargo fetch` per manifest and target before anything compiles; none for cibuildwheel.
    #[test]
    fn crates_are_fetched_once_per_manifest_and_target() {
        let host = HostEnv::fixture(&[]);
        let (x64, arm64) = (PLATFORMS[0], PLATFORMS[1]);
        let fetched = |jobs: &[(BuildJob, Platform)]| -> Vec<String> {
            fetches(jobs, &host)
                .iter()
                .map(|s| {
                    let cmd = crate::plan::cmd_named(std::slice::from_ref(s), &s.name);
                    format!("{} {}", s.name, cmd.args.join(" "))
                })
                .collect()
        };
        let warm: Vec<(BuildJob, Platform)> = (BuildJob::WARMED.iter())
            .flat_map(|j| [(j.clone(), x64), (j.clone(), arm64)])
            .collect();
        type Builds<'a> = &'a [(BuildJob, Platform)];
        let cases: [(Builds, &[&str]); 3] = [
            (
                &warm,
                &[
                    "crates: cargo fetch (x86_64-unknown-linux-gnu) fetch --target x86_64-unknown-linux-gnu --locked",
                    "crates: cargo fetch (aarch64-unknown-linux-gnu) fetch --target aarch64-unknown-linux-gnu --locked",
                ],
            ),
            (
                &[(BuildJob::CheckCache("/f/Cargo.toml".into()), x64)],
                &[
                    "crates: cargo fetch (x86_64-unknown-linux-gnu) fetch --target x86_64-unknown-linux-gnu --manifest-path /f/Cargo.toml",
                ],
            ),
            (
                &[(
                    BuildJob::WheelsViaCibuildwheel(crate::flags::BuildArgs::default()),
                    x64,
                )],
                &[],
            ),
        ];
        for (jobs, want) in cases {
            assert_eq!(fetched(jobs), want);
        }
    }
}
