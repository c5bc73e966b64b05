//! build-wheels's plan: one abi3 wheel for a platform (manylinux_2_17 on Linux), checked (auditwheel computes its
//! tag), installed into the smoke venv and tested there with the SDK's pytest suite; an aarch64 wheel is
//! tested the same way with an aarch64 CPython under emulation.

use std::path::Path;

use super::Build;
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::platform::{Os, Platform, Runner};
use crate::release::names::wheel_name;
use crate::tools;

/// What `auditwheel show` says when it computes our tag: the tag in quotes. (It prints the wheel's file
/// name first, and that already holds the tag, so the bare tag would be found whatever auditwheel says.)
fn audited_tag(platform: Platform) -> String {
    format!("\"{}\"", platform.wheel_platform().1)
}

pub fn plan(b: &Build) -> Vec<Step> {
    let mut maturin = Cmd::new(b.host.tools.bin("maturin"), &b.host.root).args([
        "build",
        "--release",
        "--locked",
        "--target",
        b.platform.triple,
    ]);
    if b.platform.os == Os::Linux {
        maturin = maturin.args(["--compatibility", "manylinux2014"]);
    }
    let mut steps = vec![
        Step::new(
            format!("clean {}", b.host.relative(&b.dist)),
            Action::CleanDir(b.dist.clone()),
        ),
        maturin
            .args(["--manifest-path", "sdks/python/Cargo.toml", "--out"])
            .arg_path(&b.dist)
            .compile_env(&super::compile::compile_env(b))
            .into_step("maturin build"),
        b.floor_check(b.release_dir().join(b.platform.shared_library("boxspec"))),
    ];
    steps.extend(check_and_smoke(b));
    steps
}

/// The wheel in the dist directory has the platform's tag and passes the SDK's tests.
pub fn check_and_smoke(b: &Build) -> Vec<Step> {
    let wheel = b.dist.join(wheel_name(&b.host.version, b.platform));
    let mut steps = vec![
        // The project promises glibc 2.17: an image with a newer glibc gives a wheel with another tag.
        Step::new(
            format!("expect the {} wheel", b.platform.wheel_platform().1),
            Action::ExpectFile(wheel.clone()),
        ),
    ];
    if b.platform.os == Os::Linux {
        steps.push(
            Cmd::new(b.host.tools.bin("auditwheel"), &b.host.root)
                .args(["show"])
                .arg_path(&wheel)
                .expect_stdout_contains(audited_tag(b.platform))
                .into_step("auditwheel show"),
        );
    }
    let smoke = b.smoke_dir("wheel-smoke");
    match (&b.runner, &b.host.aarch64_python) {
        (Runner::Native, _) => steps.extend(smoke_in_venv(b.host, &wheel, &smoke)),
        (Runner::Emulated { qemu, .. }, Some(sysroot)) => {
            steps.extend(smoke_emulated(b.host, &wheel, &smoke, qemu, sysroot))
        }
        (Runner::Emulated { .. }, None) => steps.push(Step::new(
            "smoke tests",
            Action::Notice(format!(
                "smoke tests of the {} wheel not run: no aarch64 CPython (sudo .ci/aarch64-setup.sh \
                 makes one from Debian's packages; or set XTASK_AARCH64_PYTHON to its sysroot); the \
                 wheel was checked statically",
                b.platform.triple
            )),
        )),
        (Runner::NotRun(_), _) => {
            steps.extend(b.not_run().map(|why| Step::new("smoke tests", Action::Notice(why))))
        }
    }
    steps
}

/// This build's wheel force-reinstalled into the kept smoke venv, imported, and the SDK's pytest suite.
fn smoke_in_venv(host: &HostEnv, wheel: &Path, smoke: &Path) -> Vec<Step> {
    let python = host.tools.smoke_venv().join("bin/python");
    let mut steps = vec![Step::new(
        "clean the smoke directory",
        Action::CleanDir(smoke.to_path_buf()),
    )];
    if !host.smoke_venv_ready {
        steps.extend(new_smoke_venv(host));
    }
    steps.push(
        // Replaces whatever an earlier run installed: this build's wheel is the one tested.
        smoke_pip(host, smoke)
            .args(["--no-index", "--no-deps", "--force-reinstall"])
            .arg_path(wheel)
            .into_step("smoke: install the wheel"),
    );
    steps.extend(import_and_pytest(host, Cmd::new(&python, smoke)));
    steps
}

/// The wheel unpacked onto the path of an aarch64 CPython run by qemu, with pytest from the wheelhouse.
fn smoke_emulated(
    host: &HostEnv,
    wheel: &Path,
    smoke: &Path,
    qemu: &Path,
    sysroot: &Path,
) -> Vec<Step> {
    let site = smoke.join("site");
    let mut steps = vec![
        Step::new(
            "clean the smoke directory",
            Action::CleanDir(smoke.to_path_buf()),
        ),
        tools::pip_install(&host.tools.bin("python"), smoke)
            .args(["--no-index", "--find-links"])
            .arg_path(&host.tools.wheelhouse())
            .args(["--target"])
            .arg_path(&site)
            .args(tools::smoke_requirements())
            .into_step("smoke: pytest onto the path"),
        Cmd::new(host.tools.bin("python"), smoke)
            .args(["-m", "zipfile", "-e"])
            .arg_path(wheel)
            .arg_path(&site)
            .into_step("smoke: the wheel onto the path"),
    ];
    let python = Cmd::new(qemu, smoke)
        .args(["-L"])
        .arg_path(sysroot)
        .arg_path(&sysroot.join("usr/bin/python3"))
        .env("PYTHONPATH", site.display().to_string());
    steps.extend(import_and_pytest(host, python));
    steps
}

fn import_and_pytest(host: &HostEnv, python: Cmd) -> [Step; 2] {
    let examples = host.root.join("examples");
    [
        python
            .clone()
            .args([
                "-c",
                "import boxspec, sys; print(boxspec.digest(open(sys.argv[1]).read()))",
            ])
            .arg_path(&examples.join("box.json"))
            .expect_stdout(&host.example_digest)
            .into_step("smoke: import boxspec"),
        python
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg_path(&host.root.join("sdks/python/tests"))
            .env("BOXSPEC_EXAMPLES", examples.display().to_string())
            .into_step("smoke: pytest"),
    ]
}

/// `pip install` into the smoke venv, by the tools venv's pip: the smoke venv has none of its own (pip
/// and setuptools would be 60 % of its files in CI's tools entry).
fn smoke_pip(host: &HostEnv, cwd: &Path) -> Cmd {
    let python = host.tools.smoke_venv().join("bin/python");
    tools::pip_install_into(&host.tools.bin("python"), &python, cwd)
}

/// A new venv with pytest from the wheelhouse the tools install filled (no registry needed); the stamp,
/// written last, tells the next run it is complete.
fn new_smoke_venv(host: &HostEnv) -> Vec<Step> {
    let venv = host.tools.smoke_venv();
    let python3 = host.python3.clone().unwrap_or_else(|| "python3".into());
    vec![
        Step::new("smoke: clean the venv", Action::CleanDir(venv.clone())),
        Cmd::new(python3, &venv)
            .args(["-m", "venv", "--without-pip", "."])
            .into_step("smoke: new venv"),
        smoke_pip(host, &venv)
            .args(["--no-index", "--find-links"])
            .arg_path(&host.tools.wheelhouse())
            .args(tools::smoke_requirements())
            .into_step("smoke: install pytest"),
        Step::new(
            "smoke: venv stamp",
            Action::WriteFile {
                path: venv.join(tools::SMOKE_STAMP),
                contents: tools::smoke_stamp(),
                executable: false,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildJob;
    use crate::plan::{Expect, cmd_named};

    /// auditwheel names the wheel, then the tag it computed: only the computed tag may satisfy the check.
    #[test]
    fn the_audit_check_reads_the_computed_tag_not_the_file_name() {
        let x86_64 = crate::platform::PLATFORMS[0];
        let expect = Expect::Contains(audited_tag(x86_64));
        let said = |tag: &str| {
            format!(
                "{} is consistent with the\nfollowing platform tag: \"{tag}\".\n",
                wheel_name("0.1.0", x86_64)
            )
        };
        assert!(expect.check(&said("manylinux_2_17_x86_64")).is_ok());
        assert!(expect.check(&said("manylinux_2_31_x86_64")).is_err());
        assert!(expect.check(&said("linux_x86_64")).is_err());
    }

    /// The smoke venv is made once; every run force-reinstalls this build's wheel into it.
    #[test]
    fn the_smoke_venv_is_made_only_when_missing() {
        let cache = crate::cache::CacheSetup::fixture(None, crate::cache::Backend::Disabled);
        for (ready, made) in [(true, false), (false, true)] {
            let mut host = HostEnv::fixture(&[("HOME", "/home/u")]);
            host.smoke_venv_ready = ready;
            let steps = BuildJob::Wheels.plan(&host, &cache, host.platform.unwrap());
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names.contains(&"smoke: new venv"), made, "{names:?}");
            let cmd = cmd_named(&steps, "smoke: install the wheel");
            assert!(
                cmd.args.contains(&"--force-reinstall".to_string()),
                "{cmd:?}"
            );
        }
    }
}
