//! build-wheels: one abi3 manylinux_2_17 wheel, checked by auditwheel, installed into a fresh venv
//! and tested there with the SDK's pytest suite.

use crate::cache::CacheSetup;
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::tools::{self, GLIBC_MAX_MINOR, TARGET};

pub const PLATFORM_TAG: &str = "manylinux_2_17_x86_64";

pub fn wheel_name(version: &str) -> String {
    format!("boxspec-{version}-cp39-abi3-manylinux2014_x86_64.{PLATFORM_TAG}.whl")
}

/// What `auditwheel show` says when it computes our tag: the tag in quotes. (It prints the wheel's file
/// name first, and that already holds the tag, so the bare tag would be found whatever auditwheel says.)
fn audited_tag() -> String {
    format!("\"{PLATFORM_TAG}\"")
}

pub fn plan(host: &HostEnv, cache: &CacheSetup) -> Vec<Step> {
    let root = &host.root;
    let dist = host.dist().join("wheels");
    let mut steps = vec![
        Step::new("clean dist/wheels", Action::CleanDir(dist.clone())),
        Cmd::new(host.tools.bin("maturin"), root)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                TARGET,
                "--compatibility",
                "manylinux2014",
            ])
            .args(["--manifest-path", "sdks/python/Cargo.toml", "--out"])
            .arg_path(&dist)
            .compile_env(&super::compile::compile_env(host, cache))
            .into_step("maturin build"),
        Step::new(
            "check glibc",
            Action::CheckGlibc {
                path: host.target_dir().join(TARGET).join("release/libboxspec.so"),
                max_minor: GLIBC_MAX_MINOR,
            },
        ),
    ];
    steps.extend(check_and_smoke(host));
    steps
}

/// The wheel in dist/wheels is manylinux_2_17, installs into a fresh venv and passes the SDK's tests.
pub fn check_and_smoke(host: &HostEnv) -> Vec<Step> {
    let root = &host.root;
    let wheel = host.dist().join("wheels").join(wheel_name(&host.version));
    let smoke = host.temp.join("wheel-smoke");
    let python = smoke_venv(host).join("bin/python");
    let examples = root.join("examples");
    let mut steps = vec![
        // The project promises glibc 2.17: an image with a newer glibc gives a wheel with another tag.
        Step::new(
            "expect the manylinux_2_17 wheel",
            Action::ExpectFile(wheel.clone()),
        ),
        Cmd::new(host.tools.bin("auditwheel"), root)
            .args(["show"])
            .arg_path(&wheel)
            .expect_stdout_contains(audited_tag())
            .into_step("auditwheel show"),
        Step::new("clean the smoke directory", Action::CleanDir(smoke.clone())),
    ];
    if !host.smoke_venv_ready {
        steps.extend(new_smoke_venv(host));
    }
    steps.extend([
        // Replaces whatever an earlier run installed: this build's wheel is the one tested.
        tools::pip_install(&python, &smoke)
            .args(["--no-index", "--no-deps", "--force-reinstall"])
            .arg_path(&wheel)
            .into_step("smoke: install the wheel"),
        Cmd::new(&python, &smoke)
            .args([
                "-c",
                "import boxspec, sys; print(boxspec.digest(open(sys.argv[1]).read()))",
            ])
            .arg_path(&examples.join("box.json"))
            .expect_stdout(&host.example_digest)
            .into_step("smoke: import boxspec"),
        Cmd::new(&python, &smoke)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg_path(&root.join("sdks/python/tests"))
            .env("BOXSPEC_EXAMPLES", examples.display().to_string())
            .into_step("smoke: pytest"),
    ]);
    steps
}

/// The smoke tests' venv, kept between runs (a new one costs ≈ 4 s): only the wheel changes in it.
pub fn smoke_venv(host: &HostEnv) -> std::path::PathBuf {
    host.temp.join("wheel-smoke-venv")
}

/// A new venv with pytest from the wheelhouse the tools install filled (no registry needed); the stamp,
/// written last, tells the next run it is complete.
fn new_smoke_venv(host: &HostEnv) -> Vec<Step> {
    let venv = smoke_venv(host);
    let python3 = host.python3.clone().unwrap_or_else(|| "python3".into());
    vec![
        Step::new("smoke: clean the venv", Action::CleanDir(venv.clone())),
        Cmd::new(python3, &venv)
            .args(["-m", "venv", "."])
            .into_step("smoke: new venv"),
        tools::pip_install(&venv.join("bin/python"), &venv)
            .args(["--no-index", "--find-links"])
            .arg_path(&host.tools.wheelhouse())
            .args(tools::smoke_requirements())
            .into_step("smoke: install pytest"),
        Step::new(
            "smoke: venv stamp",
            Action::WriteFile {
                path: venv.join(tools::SMOKE_STAMP),
                contents: tools::smoke_requirements().join("\n"),
                executable: false,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Expect;

    /// auditwheel names the wheel, then the tag it computed: only the computed tag may satisfy the check.
    #[test]
    fn the_audit_check_reads_the_computed_tag_not_the_file_name() {
        let expect = Expect::Contains(audited_tag());
        let said = |tag: &str| {
            format!(
                "{} is consistent with the\nfollowing platform tag: \"{tag}\".\n",
                wheel_name("0.1.0")
            )
        };
        assert!(expect.check(&said("manylinux_2_17_x86_64")).is_ok());
        assert!(expect.check(&said("manylinux_2_31_x86_64")).is_err());
        assert!(expect.check(&said("linux_x86_64")).is_err());
    }

    /// The smoke venv is made once; every run force-reinstalls this build's wheel into it.
    #[test]
    fn the_smoke_venv_is_made_only_when_missing() {
        for (ready, made) in [(true, false), (false, true)] {
            let mut host = HostEnv::fixture(&[("HOME", "/home/u")]);
            host.smoke_venv_ready = ready;
            let steps = check_and_smoke(&host);
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names.contains(&"smoke: new venv"), made, "{names:?}");
            let install = steps
                .iter()
                .find(|s| s.name == "smoke: install the wheel")
                .unwrap();
            let Action::Run(cmd) = &install.action else {
                panic!()
            };
            assert!(
                cmd.args.contains(&"--force-reinstall".to_string()),
                "{cmd:?}"
            );
        }
    }
}
