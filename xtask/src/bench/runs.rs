//! One measured build: the driver run as a job runs it (or `cargo xtask <job>` as a fresh runner types
//! it), timed whole, and the report it left read into rows.

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

use super::runner::FreshRunner;
use super::table::line;
use super::{Bench, Row};
use crate::caller_env;
use crate::host::HostEnv;

impl Bench {
    /// One job with a fresh target directory; `cache: None` builds without sccache.
    pub fn build(
        &mut self,
        scenario: &'static str,
        driver: &Path,
        job: &str,
        cache: Option<&Path>,
    ) -> Result<()> {
        let target = self.target.clone();
        let dist = self.scratch.join("dist");
        let _ = fs::remove_dir_all(&target);
        let _ = fs::remove_dir_all(&dist);
        if let Some(layer) = &self.layer {
            let sh = Shell::new()?;
            cmd!(sh, "cp -a {layer} {target}").quiet().run()?;
        }
        eprintln!("bench: {scenario:<24} {job:<14} …");
        let sh = Shell::new()?;
        let mut cmd = cmd!(sh, "{driver} {job}")
            .quiet()
            .ignore_status()
            .ignore_stdout();
        for (k, _) in std::env::vars().filter(|(k, _)| caller_env::changes_the_build(k)) {
            cmd = cmd.env_remove(k);
        }
        cmd = cmd
            .env("CARGO_TARGET_DIR", &target)
            .env("XTASK_DIST_DIR", &dist)
            .env("SCCACHE_SERVER_PORT", &self.port);
        cmd = match cache {
            Some(dir) => cmd.env("SCCACHE_DIR", dir).env("XTASK_CACHE", "require"),
            None => cmd.env("XTASK_CACHE", "off"),
        };
        let (seconds, report) = timed(cmd, scenario, job, &dist)?;
        for entry in report["jobs"].as_array().cloned().unwrap_or_default() {
            let job = entry["job"].as_str().unwrap_or("?").to_string();
            let row = Row {
                scenario,
                job,
                seconds,
                report: entry,
                parts: None,
            };
            eprintln!("bench: {}", line(&row));
            self.rows.push(row);
        }
        Ok(())
    }
}

impl Bench {
    /// `cargo xtask <job>` as a fresh runner types it in `fresh`'s checkout, timed whole; the report
    /// says where the driver's time went, the rest is cargo building and starting the driver. `restore`:
    /// the seconds the cache entries took to come back before it.
    pub fn typed(
        &mut self,
        scenario: &'static str,
        fresh: &FreshRunner,
        host: &HostEnv,
        job: &str,
        restore: Option<f64>,
    ) -> Result<()> {
        eprintln!("bench: {scenario:<24} {job:<14} …");
        let sh = Shell::new()?;
        sh.change_dir(&fresh.checkout);
        let cargo = host.cargo();
        let mut cmd = cmd!(sh, "{cargo} xtask {job}")
            .quiet()
            .ignore_status()
            .ignore_stdout();
        for (k, _) in std::env::vars().filter(|(k, _)| {
            caller_env::changes_the_build(k) || k.starts_with("CARGO") || k == "XDG_CACHE_HOME"
        }) {
            cmd = cmd.env_remove(k);
        }
        // The machine's toolchain (a runner's comes with its image), everything else from HOME.
        let cmd = cmd
            .env("RUSTUP_HOME", host.rustup_home())
            .env("HOME", &fresh.home)
            .env("TMPDIR", &fresh.tmp)
            .env("CI", "true")
            .env("SCCACHE_SERVER_PORT", &self.port);
        let (seconds, report) = timed(cmd, scenario, job, &fresh.checkout.join("dist"))?;
        let run = &report["run"];
        let driver = seconds - run["driver_seconds"].as_f64().unwrap_or(0.0);
        let tenths = |x: f64| (x * 10.0).round() / 10.0;
        let mut parts = json!({ "driver": tenths(driver), "restore": restore.map(tenths) });
        if let (Some(parts), Some(phases)) = (parts.as_object_mut(), run["phases"].as_object()) {
            parts.extend(phases.clone());
        }
        // warm-caches reports three jobs: one row for the command, with the last job's counters.
        let jobs = report["jobs"].as_array().cloned().unwrap_or_default();
        let counters = (jobs.iter())
            .find(|j| j["job"] == job)
            .or(jobs.last())
            .cloned()
            .unwrap_or_default();
        let row = Row {
            scenario,
            job: job.to_string(),
            seconds,
            report: counters,
            parts: Some(parts),
        };
        eprintln!("bench: {}", line(&row));
        self.rows.push(row);
        Ok(())
    }
}

/// Runs a measured build, timed whole; fails with its output, else returns the report it left in `dist`.
fn timed(cmd: xshell::Cmd, scenario: &str, job: &str, dist: &Path) -> Result<(f64, Value)> {
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running {scenario} {job}"))?;
    let seconds = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "bench: {scenario} {job} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text =
        fs::read_to_string(dist.join("cache-report.json")).context("reading the cache report")?;
    Ok((seconds, serde_json::from_str(&text)?))
}
