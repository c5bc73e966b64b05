//! Cache hits across jobs need identical rustc invocations for shared dependencies. Cargo unifies
//! features per `-p` selection, so a feature one job's tree enables changes `-C metadata` of every crate
//! above it (measured: 0 cross-job hits for serde_json and boxspec). `crates/boxspec-hack` pins the union;
//! this test fails when a dependency change makes the jobs' feature sets drift apart again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The package each build job compiles.
const JOB_PACKAGES: [(&str, &str); 3] = [
    ("build-runtime", "boxspec-cli"),
    ("build-node", "boxspec-node"),
    ("build-wheels", "boxspec-python"),
];

/// `name version` → the feature sets it is built with, for one job.
fn features(package: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--quiet",
            "--locked",
            "--offline",
            "-p",
            package,
            "-e",
            "normal,build",
        ])
        .args([
            "--target",
            "x86_64-unknown-linux-gnu",
            "--prefix",
            "none",
            "-f",
            "{p}|{f}",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((pkg, feats)) = line.split_once('|') else {
            continue;
        };
        let name_version: String = pkg.split(' ').take(2).collect::<Vec<_>>().join(" ");
        map.entry(name_version)
            .or_default()
            .insert(feats.to_string());
    }
    map
}

#[test]
fn shared_dependencies_have_the_same_features_in_every_job() {
    let trees: Vec<(&str, BTreeMap<String, BTreeSet<String>>)> = JOB_PACKAGES
        .iter()
        .map(|(job, package)| (*job, features(package)))
        .collect();
    let mut drift = Vec::new();
    for (i, (job_a, a)) in trees.iter().enumerate() {
        for (job_b, b) in &trees[i + 1..] {
            for (package, features_a) in a {
                if let Some(features_b) = b.get(package).filter(|f| *f != features_a) {
                    drift.push(format!(
                        "{package}: {job_a} {features_a:?} vs {job_b} {features_b:?}"
                    ));
                }
            }
        }
    }
    assert!(
        drift.is_empty(),
        "shared dependencies are built with different features, so the jobs cannot share cache hits; \
         add the union to crates/boxspec-hack/Cargo.toml:\n{}",
        drift.join("\n")
    );
    let shared = trees[0]
        .1
        .keys()
        .filter(|k| trees[1].1.contains_key(*k) && trees[2].1.contains_key(*k))
        .count();
    assert!(
        shared >= 10,
        "expected the jobs to share most of the runtime's dependencies, found {shared}"
    );
}
