//! build-node: the napi-rs addon, packaged in dist/node/ so `require()` loads it, and tested from a
//! directory outside the repository with the SDK's own `node --test` suite.

use std::path::Path;

use crate::cache::CacheSetup;
use crate::host::{HostEnv, NODE_MODULES_STAMP};
use crate::plan::{Action, Cmd, Step};
use crate::tools::{GLIBC_MAX_MINOR, TARGET};

/// What `napi build --platform` names the addon for our one target.
pub const ADDON: &str = "boxspec.linux-x64-gnu.node";

pub fn plan(host: &HostEnv, cache: &CacheSetup) -> Vec<Step> {
    let sdk = host.root.join("sdks/node");
    let dist = host.dist().join("node");
    let mut steps = Vec::new();
    if !host.node_modules_current {
        let npm = host.npm.clone().unwrap_or_else(|| "npm".into());
        steps.push(
            Cmd::new(npm, &sdk)
                .args(["ci", "--no-audit", "--no-fund"])
                .into_step("npm ci"),
        );
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
            .args(["build", "--platform", "--release", "--target", TARGET])
            .compile_env(&super::compile::compile_env(host, cache))
            .into_step("napi build"),
        Step::new("clean dist/node", Action::CleanDir(dist.clone())),
        Step::new(
            "package the addon",
            Action::CopyInto {
                files: [ADDON, "index.js", "index.d.ts", "package.json"]
                    .iter()
                    .map(|f| sdk.join(f))
                    .collect(),
                dir: dist.clone(),
            },
        ),
        Step::new(
            "check glibc",
            Action::CheckGlibc {
                path: dist.join(ADDON),
                max_minor: GLIBC_MAX_MINOR,
            },
        ),
    ]);
    steps.extend(smoke(host, &sdk, &dist));
    steps
}

/// `require()` from a directory outside the repository, then the SDK's own `node --test` suite.
fn smoke(host: &HostEnv, sdk: &Path, dist: &Path) -> Vec<Step> {
    let smoke_dir = host.temp.join("node-smoke");
    let node = host.node.clone().unwrap_or_else(|| "node".into());
    vec![
        Step::new(
            "clean the smoke directory",
            Action::CleanDir(smoke_dir.clone()),
        ),
        Cmd::new(&node, &smoke_dir)
            .args([
                "-e",
                "const b = require(process.argv[1]); \
                 console.log(b.digest(require('fs').readFileSync(process.argv[2], 'utf8')))",
                &dist.display().to_string(),
                &host.root.join("examples/box.json").display().to_string(),
            ])
            .expect_stdout(&host.example_digest)
            .into_step("smoke: require dist/node"),
        Cmd::new(&node, &smoke_dir)
            .args([
                "--test",
                &sdk.join("__test__/boxspec.test.mjs").display().to_string(),
            ])
            .env("BOXSPEC_NODE_DIR", dist.display().to_string())
            .env(
                "BOXSPEC_EXAMPLES",
                host.root.join("examples").display().to_string(),
            )
            .into_step("smoke: node --test"),
    ]
}
