//! build-runtime's plan: the `boxspec` CLI for one platform, checked against its floor and run on the example
//! spec (natively or under emulation).

use super::Build;
use crate::plan::{Action, Cmd, Step};
use crate::platform::Runner;

pub fn plan(b: &Build) -> Vec<Step> {
    let root = &b.host.root;
    let binary = b.dist.join("boxspec");
    let example = root.join("examples/box.json").display().to_string();
    let smoke = b.smoke_dir("runtime-smoke");
    let mut steps = vec![
        Cmd::new(b.host.cargo(), root)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                b.platform.triple,
            ])
            .args(["--package", "boxspec-cli"])
            .compile_env(&super::compile::compile_env(b))
            .into_step("cargo build boxspec-cli"),
        Step::new(
            format!("clean {}", b.host.relative(&b.dist)),
            Action::CleanDir(b.dist.clone()),
        ),
        Step::new(
            "copy the binary",
            Action::CopyInto {
                files: vec![b.release_dir().join("boxspec")],
                dir: b.dist.clone(),
            },
        ),
        b.floor_check(binary.clone()),
    ];
    let run = |args: &[&str]| match &b.runner {
        Runner::Emulated { qemu, sysroot } => Cmd::new(qemu, &smoke)
            .args(["-L"])
            .arg_path(sysroot)
            .arg_path(&binary)
            .args(args.iter().copied()),
        _ => Cmd::new(&binary, &smoke).args(args.iter().copied()),
    };
    match b.not_run() {
        Some(why) => steps.push(Step::new("smoke tests", Action::Notice(why))),
        None => steps.extend([
            Step::new("clean the smoke directory", Action::CleanDir(smoke.clone())),
            run(&["--version"])
                .expect_stdout(format!("boxspec {}", b.host.version))
                .into_step("smoke: boxspec --version"),
            run(&["validate", &example])
                .expect_stdout(format!("ok: {example}"))
                .into_step("smoke: boxspec validate"),
            run(&["digest", &example])
                .expect_stdout(&b.host.example_digest)
                .into_step("smoke: boxspec digest"),
        ]),
    }
    steps
}
