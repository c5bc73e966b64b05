//! What bench-cache prints and writes: the table of builds, where each runner row's time went, the
//! targets' ratios, and the JSON file.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::runner::EntryWeight;
use super::{JOBS, Row};

/// The tables and ratios, on stdout.
pub fn print(rows: &[Row], entries: &[EntryWeight], layer_mb: Option<f64>) {
    println!("\n{}", table(rows));
    if let Some(mb) = layer_mb {
        println!("target layer: {mb:.1} MB compressed (tar | gzip), as CI stores it");
    }
    if !entries.is_empty() {
        println!("\n{}", entries_table(entries));
    }
    let runner_rows: Vec<&Row> = rows.iter().filter(|r| r.parts.is_some()).collect();
    if !runner_rows.is_empty() {
        println!("\n{}", parts_table(&runner_rows));
    }
    println!("\n{}", ratios(rows).join("\n"));
}

pub fn write_json(
    rows: &[Row],
    entries: &[EntryWeight],
    layer_mb: Option<f64>,
    path: &Path,
) -> Result<()> {
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
    let entries: Vec<Value> = (entries.iter())
        .map(|e| {
            json!({
                "entry": e.name, "compressed_mb": (e.compressed_mb * 10.0).round() / 10.0,
                "disk_mb": e.disk_mb.round(), "files": e.files, "restore_seconds": e.restore_seconds,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({
        "target_layer_mb": layer_mb,
        "cache_entries": entries,
        "scenarios": scenarios,
        "ratios": ratios(rows),
    }))?;
    fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub fn line(row: &Row) -> String {
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
    const PARTS: [&str; 7] = [
        "restore", "driver", "tools", "crates", "compile", "smoke", "other",
    ];
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

/// CI's cache entries as actions/cache stores them, and the restores the warm jobs paid (median).
fn entries_table(entries: &[EntryWeight]) -> String {
    let header = format!(
        "{:<10} {:>15} {:>12} {:>8} {:>11}",
        "entry", "compressed MB", "on disk MB", "files", "restore s"
    );
    let median = |secs: &[f64]| median(secs.to_vec()).unwrap_or(f64::NAN);
    let lines = entries.iter().map(|e| {
        format!(
            "{:<10} {:>15.1} {:>12.0} {:>8} {:>11.2}",
            e.name,
            e.compressed_mb,
            e.disk_mb,
            e.files,
            median(&e.restore_seconds)
        )
    });
    let total = (entries.iter()).fold((0.0, 0.0, 0), |(c, d, f), e| {
        (c + e.compressed_mb, d + e.disk_mb, f + e.files)
    });
    let restores: Vec<f64> = (0..entries.first().map_or(0, |e| e.restore_seconds.len()))
        .map(|i| entries.iter().map(|e| e.restore_seconds[i]).sum())
        .collect();
    let all = format!(
        "{:<10} {:>15.1} {:>12.0} {:>8} {:>11.2}",
        "all",
        total.0,
        total.1,
        total.2,
        median(&restores)
    );
    std::iter::once(header)
        .chain(lines)
        .chain([all])
        .collect::<Vec<_>>()
        .join("\n")
}

/// The targets' ratios, per job: cold / nocache (medians of the runs), runner-warm / runner-cold, and
/// the one a runner waits for: (restore + runner-warm) / runner-cold.
fn ratios(rows: &[Row]) -> Vec<String> {
    let median = |scenario: &str, job: &str| {
        median(
            (rows.iter())
                .filter(|r| r.scenario == scenario && r.job == job)
                .map(|r| r.seconds)
                .collect(),
        )
    };
    let restore = |job: &str| {
        (rows.iter())
            .find(|r| r.scenario == "runner-warm" && r.job == job)
            .and_then(|r| r.parts.as_ref()?["restore"].as_f64())
    };
    let mut out = Vec::new();
    for job in JOBS {
        let warm = median("runner-warm", job).zip(restore(job));
        if let (Some((warm, restore)), Some(cold)) = (warm, median("runner-cold", job)) {
            out.push(format!(
                "(restore + runner-warm) / runner-cold {job}: ({restore:.1} + {warm:.1}) s / {cold:.1} s = {:.2}",
                (restore + warm) / cold
            ));
        }
    }
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

fn median(mut secs: Vec<f64>) -> Option<f64> {
    secs.sort_by(f64::total_cmp);
    secs.get(secs.len() / 2).copied()
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
