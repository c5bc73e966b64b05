//! The cache report of each job run: a table on stdout, `dist/cache-report.json`, and markdown for
//! `$GITHUB_STEP_SUMMARY`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use std::time::Duration;

use crate::cache::Stats;
use crate::exec::Executor;
use crate::host::HostEnv;
use crate::plan::Phase;

#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    pub job: String,
    /// The platform built for.
    pub target: String,
    pub mode: String,
    pub backend: String,
    pub decision_ms: u64,
    /// Wall time of the job's compile steps (the rest is packaging and smoke tests).
    pub compile_seconds: f64,
    /// `None` when no cache was used (or its stats could not be read).
    pub stats: Option<Stats>,
    /// The sccache-dist scheduler, when compiles were distributed.
    pub dist: Option<String>,
    /// Where the job's artifacts are (`GITHUB_OUTPUT` names them).
    pub artifacts: PathBuf,
}

impl JobReport {
    pub fn to_json(&self) -> Value {
        let s = self.stats.unwrap_or_default();
        json!({
            "job": self.job,
            "target": self.target,
            "mode": self.mode,
            "backend": self.backend,
            "decision_ms": self.decision_ms,
            "compile_seconds": (self.compile_seconds * 10.0).round() / 10.0,
            "compile_requests": s.compile_requests,
            "hits": s.hits,
            "misses": s.misses,
            "not_cacheable": s.not_cacheable,
            "errors": s.errors,
            "writes": s.writes,
            "hit_rate": s.hit_rate(),
            "distributed": self.dist.is_some(),
            "scheduler": self.dist,
            "remote_compiles": s.dist_compiles,
            "dist_errors": s.dist_errors,
        })
    }

    fn cells(&self) -> [String; 10] {
        let s = self.stats.unwrap_or_default();
        let rate = s
            .hit_rate()
            .map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
        [
            self.job.clone(),
            self.mode.clone(),
            self.backend.clone(),
            format!("{} ms", self.decision_ms),
            s.compile_requests.to_string(),
            s.hits.to_string(),
            s.misses.to_string(),
            s.not_cacheable.to_string(),
            rate,
            match (&self.dist, &self.stats) {
                (Some(_), Some(s)) => s.dist_compiles.to_string(),
                _ => "-".into(),
            },
        ]
    }
}

const HEADERS: [&str; 10] = [
    "job",
    "mode",
    "backend",
    "decision",
    "requests",
    "hits",
    "misses",
    "not cacheable",
    "hit rate",
    "remote",
];

pub fn table(reports: &[JobReport]) -> String {
    let rows: Vec<[String; 10]> = reports.iter().map(JobReport::cells).collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([HEADERS[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..HEADERS.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(HEADERS.to_vec());
    for row in &rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn markdown(reports: &[JobReport]) -> String {
    let mut out = format!(
        "### Compiler cache\n\n| {} |\n|{}\n",
        HEADERS.join(" | "),
        "---|".repeat(HEADERS.len())
    );
    for report in reports {
        out.push_str(&format!("| {} |\n", report.cells().join(" | ")));
    }
    out
}

/// Where the last run's wall time went: the driver's own (from its start), and each phase's steps.
/// `cargo xtask`'s whole time minus `driver_seconds` is cargo building and starting the driver.
pub fn run_times(host: &HostEnv, exec: &Executor) -> Value {
    let round = |d: Duration| (d.as_secs_f64() * 10.0).round() / 10.0;
    let phases: serde_json::Map<String, Value> = (Phase::ALL.iter())
        .map(|p| (p.as_str().to_string(), json!(round(exec.time_in(*p)))))
        .collect();
    json!({ "driver_seconds": round(host.started.elapsed()), "phases": phases })
}

/// `dist/cache-report.json`, and on GitHub Actions the step summary and each job's artifact directory.
pub fn publish(host: &HostEnv, reports: &[JobReport], run: Value) -> Result<()> {
    merge_into(&host.dist().join("cache-report.json"), reports, run)?;
    if let Some(summary) = host.var("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        append(summary, &markdown(reports))?;
    }
    if let Some(output) = host.var("GITHUB_OUTPUT").filter(|s| !s.is_empty()) {
        let artifacts: String = (reports.iter())
            .map(|r| format!("{}={}\n", r.job, r.artifacts.display()))
            .collect();
        append(output, &artifacts)?;
    }
    Ok(())
}

fn append(path: &str, text: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {path}"))
}

/// Keep the latest entry of each job: a build-node run does not erase build-runtime's result. `run` is
/// the latest run's times.
pub fn merge_into(path: &Path, reports: &[JobReport], run: Value) -> Result<()> {
    let mut jobs: Vec<Value> = fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v.get("jobs").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    for report in reports {
        let same = |j: &Value| {
            j.get("job").and_then(Value::as_str) == Some(report.job.as_str())
                && j.get("target").and_then(Value::as_str) == Some(report.target.as_str())
        };
        jobs.retain(|j| !same(j));
        jobs.push(report.to_json());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&json!({ "jobs": jobs, "run": run }))?;
    fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(job: &str, hits: u64) -> JobReport {
        let stats = Stats {
            compile_requests: 10,
            hits,
            misses: 4 - hits,
            not_cacheable: 6,
            errors: 0,
            writes: 0,
            write_errors: 0,
            dist_compiles: 0,
            dist_errors: 0,
        };
        JobReport {
            job: job.into(),
            target: "x86_64-unknown-linux-gnu".into(),
            mode: "auto".into(),
            backend: "local".into(),
            decision_ms: 12,
            compile_seconds: 4.0,
            stats: Some(stats),
            dist: None,
            artifacts: PathBuf::from("/src/dist/runtime"),
        }
    }

    #[test]
    fn json_shape_and_merge() {
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        let path = dir.join("cache-report.json");
        merge_into(
            &path,
            &[report("build-runtime", 1), report("build-node", 2)],
            json!({}),
        )
        .unwrap();
        merge_into(&path, &[report("build-runtime", 3)], json!({})).unwrap();
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let jobs = v["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0]["job"], "build-node");
        assert_eq!(jobs[1]["hits"], 3);
        assert_eq!(jobs[1]["hit_rate"], 0.75);
        for key in [
            "mode",
            "backend",
            "decision_ms",
            "compile_requests",
            "misses",
            "not_cacheable",
            "errors",
        ] {
            assert!(jobs[1].get(key).is_some(), "{key}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn table_and_markdown_have_a_row_per_job() {
        let reports = [report("build-runtime", 4), report("build-wheels", 0)];
        let text = table(&reports);
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("100.0 %") && text.contains("0.0 %"), "{text}");
        assert_eq!(
            markdown(&reports)
                .lines()
                .filter(|l| l.starts_with("| build-"))
                .count(),
            2
        );
    }
}
