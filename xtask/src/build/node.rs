//! build-node's plan: the napi-rs addon for one platform, packaged in dist/node/ so `require()` loads it, and
//! tested from a directory outside the repository with the SDK's own test suite (natively, or with an
//! aarch64 node under emulation).

use std::path::{Path, PathBuf};

use super::Build;
use crate::host::NODE_MODULES_STAMP;
use crate::plan::{Action, Cmd, Step};
use crate::platform::Runner;
use crate::release::names::{LOADER, addon_name};
use crate::tools;

pub fn plan(b: &Build) -> Vec<Step> {
    let sdk = b.host.root.join("sdks/node");
    let addon = addon_name(b.platform);
    let mut steps = Vec::new();
    if !b.host.node_modules_current {
        let npm = b.host.npm.clone().unwrap_or_else(|| "npm".into());
        steps.push(
            Cmd::new(npm, &sdk)
                .args(["ci", "--no-audit", "--no-fund"])
                .into_step("npm ci"),
        );
        steps.push(Step::new(
            "npm ci: trim",
            Action::Trim(tools::Trim::NodeModules {
                dir: sdk.join("node_modules"),
            }),
        ));
        steps.push(Step::new(
            "npm ci: stamp",
            Action::CopyFile {
                from: sdk.join("package-lock.json"),
                to: sdk.join(NODE_MODULES_STAMP),
            },
        ));
    }
    steps.extend([
        Cmd::new(sdk.join("node_modules/.bin/napi"), &sdk)
            .args([
                "build",
                "--platform",
                "--release",
                "--target",
                b.platform.triple,
            ])
            .compile_env(&super::compile::compile_env(b))
            .into_step("napi build"),
        Step::new(
            format!("clean {}", b.host.relative(&b.dist)),
            Action::CleanDir(b.dist.clone()),
        ),
        Step::new(
            "package the addon",
            Action::CopyInto {
                files: ([addon.as_str()].into_iter())
                    .chain(LOADER)
                    .chain(["package.json"])
                    .map(|f| sdk.join(f))
                    .collect(),
                dir: b.dist.clone(),
            },
        ),
        b.floor_check(b.dist.join(&addon)),
    ]);
    match b.not_run() {
        Some(why) => steps.push(Step::new("smoke tests", Action::Notice(why))),
        None => steps.extend(smoke(b, &sdk)),
    }
    steps
}

/// `require()` from a directory outside the repository, then the SDK's own test suite.
fn smoke(b: &Build, sdk: &Path) -> Vec<Step> {
    let smoke_dir = b.smoke_dir("node-smoke");
    let tests = sdk.join("__test__/boxspec.test.mjs").display().to_string();
    let mut steps = vec![Step::new(
        "clean the smoke directory",
        Action::CleanDir(smoke_dir.clone()),
    )];
    let (node, test_args) = match &b.runner {
        Runner::Emulated { qemu, sysroot } => {
            let node = b.host.tools.emulated_node();
            if !b.host.tools_state.emulated_node {
                steps.extend(tools::install_emulated_node(&b.host.tools));
            }
            // `node --test` starts a child node, which the kernel cannot run without binfmt_misc;
            // the test file run directly fails the same way (exit 1) when a test fails.
            let run = Cmd::new(qemu, &smoke_dir).args(["-L"]).arg_path(sysroot);
            (run.arg_path(&node), vec![tests])
        }
        _ => {
            let node: PathBuf = b.host.node.clone().unwrap_or_else(|| "node".into());
            (
                Cmd::new(node, &smoke_dir),
                vec!["--test".to_string(), tests],
            )
        }
    };
    steps.extend([
        node.clone()
            .args([
                "-e",
                "const b = require(process.argv[1]); \
                 console.log(b.digest(require('fs').readFileSync(process.argv[2], 'utf8')))",
                &b.dist.display().to_string(),
                &b.host.root.join("examples/box.json").display().to_string(),
            ])
            .expect_stdout(&b.host.example_digest)
            .into_step("smoke: require dist/node"),
        node.args(test_args)
            .env("BOXSPEC_NODE_DIR", b.dist.display().to_string())
            .env(
                "BOXSPEC_EXAMPLES",
                b.host.root.join("examples").display().to_string(),
            )
            .into_step("smoke: node --test"),
    ]);
    steps
}

#[cfg(test)]
mod tests {
    /// The Node the tests run the addon's suite on (tools::OLDEST_NODE, e2e) is the oldest that the
    /// package's `engines` allows: raising one without the other fails here.
    #[test]
    fn the_oldest_node_tested_is_the_oldest_engines_allows() {
        let package = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdks/node/package.json"),
        )
        .unwrap();
        let package: serde_json::Value = serde_json::from_str(&package).unwrap();
        let engines = package["engines"]["node"].as_str().unwrap();
        let oldest_major = engines.trim_start_matches(">=").trim();
        let (_, pinned) = crate::tools::OLDEST_NODE;
        assert_eq!(
            pinned.split('.').next(),
            Some(oldest_major),
            "engines {engines:?}, pinned node {pinned}"
        );
    }
}
