//! bench-cache: what the cache buys on the real workspace. Every build runs the real job (the driver
//! binary, as a user would) with a fresh target directory, an isolated cache directory and server port.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

use crate::caller_env;
use crate::host::HostEnv;

const JOBS: [&str; 3] = ["build-runtime", "build-node", "build-wheels"];

struct Row {
    scenario: &'static str,
    job: String,
    seconds: f64,
    report: Value,
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

pub fn run(host: &HostEnv, json_out: Option<&Path>) -> Result<()> {
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

    for job in JOBS {
        bench.build("nocache", &here, job, None)?;
    }
    for job in JOBS {
        let cache = scratch.join(format!("cache-{job}"));
        bench.build("cold", &here, job, Some(&cache))?;
        bench.build("warm", &here, job, Some(&cache))?;
    }
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
    let layer_mb = ci_warm(&mut bench, host)?;
    let sh = Shell::new()?;
    let sccache = host.tools.bin("sccache");
    let _ = cmd!(sh, "{sccache} --stop-server")
        .env("SCCACHE_SERVER_PORT", &bench.port)
        .quiet()
        .ignore_status()
        .output();

    println!("\n{}", table(&bench.rows));
    println!("target layer: {layer_mb:.1} MB compressed (tar | gzip), as CI stores it");
    match json_out {
        Some(path) => write_json(&bench.rows, layer_mb, path),
        None => Ok(()),
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
    copy_sources(host, &checkout)?;
    bench.layer = Some(layer);
    for job in JOBS {
        bench.build("ci-warm", &driver, job, Some(&cache))?;
    }
    Ok(layer_mb)
}

fn write_json(rows: &[Row], layer_mb: f64, path: &Path) -> Result<()> {
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
                "hit_rate": r.report["hit_rate"],
            })
        })
        .collect();
    let layer_mb = (layer_mb * 10.0).round() / 10.0;
    let text = serde_json::to_string_pretty(&json!({
        "target_layer_mb": layer_mb,
        "scenarios": scenarios,
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
        let start = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("running {}", driver.display()))?;
        let seconds = start.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "bench: {scenario} {job} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = fs::read_to_string(dist.join("cache-report.json"))
            .context("reading the cache report")?;
        let report: Value = serde_json::from_str(&text)?;
        for entry in report["jobs"].as_array().cloned().unwrap_or_default() {
            let job = entry["job"].as_str().unwrap_or("?").to_string();
            let row = Row {
                scenario,
                job,
                seconds,
                report: entry,
            };
            eprintln!("bench: {}", line(&row));
            self.rows.push(row);
        }
        Ok(())
    }
}

/// The working tree at another absolute path (see `copy_sources`), with its own driver binary.
fn copy_workspace(host: &HostEnv, to: &Path) -> Result<PathBuf> {
    copy_sources(host, to)?;
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
/// was built from) at another absolute path, plus node_modules (so npm ci does not skew the timing).
fn copy_sources(host: &HostEnv, to: &Path) -> Result<()> {
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
