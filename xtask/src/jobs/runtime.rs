//! build-runtime: the `boxspec` CLI, portable to glibc 2.17, run on the example spec.

use crate::cache::CacheSetup;
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::tools::{GLIBC_MAX_MINOR, TARGET};

pub fn plan(host: &HostEnv, cache: &CacheSetup) -> Vec<Step> {
    let root = &host.root;
    let dist = host.dist().join("runtime");
    let binary = dist.join("boxspec");
    let example = root.join("examples/box.json");
    let example_arg = example.display().to_string();
    let smoke = host.temp.join("runtime-smoke");
    vec![
        Cmd::new(host.cargo(), root)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                TARGET,
                "--package",
                "boxspec-cli",
            ])
            .compile_env(&super::compile::compile_env(host, cache))
            .into_step("cargo build boxspec-cli"),
        Step::new("clean dist/runtime", Action::CleanDir(dist.clone())),
        Step::new(
            "copy the binary",
            Action::CopyInto {
                files: vec![host.target_dir().join(TARGET).join("release/boxspec")],
                dir: dist,
            },
        ),
        Step::new(
            "check glibc",
            Action::CheckGlibc {
                path: binary.clone(),
                max_minor: GLIBC_MAX_MINOR,
            },
        ),
        Step::new("clean the smoke directory", Action::CleanDir(smoke.clone())),
        Cmd::new(&binary, &smoke)
            .args(["--version"])
            .expect_stdout(format!("boxspec {}", host.version))
            .into_step("smoke: boxspec --version"),
        Cmd::new(&binary, &smoke)
            .args(["validate", &example_arg])
            .expect_stdout(format!("ok: {example_arg}"))
            .into_step("smoke: boxspec validate"),
        Cmd::new(&binary, &smoke)
            .args(["digest", &example_arg])
            .expect_stdout(&host.example_digest)
            .into_step("smoke: boxspec digest"),
    ]
}
