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
    let venv_bin = smoke.join("venv/bin");
    let python3 = host.python3.clone().unwrap_or_else(|| "python3".into());
    let examples = root.join("examples");
    vec![
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
        Cmd::new(python3, &smoke)
            .args(["-m", "venv", "venv"])
            .into_step("smoke: fresh venv"),
        tools::pip_install(&venv_bin.join("python"), &smoke)
            .args(["--no-index"])
            .arg_path(&wheel)
            .into_step("smoke: install the wheel"),
        Cmd::new(venv_bin.join("python"), &smoke)
            .args([
                "-c",
                "import boxspec, sys; print(boxspec.digest(open(sys.argv[1]).read()))",
            ])
            .arg_path(&examples.join("box.json"))
            .expect_stdout(&host.example_digest)
            .into_step("smoke: import boxspec"),
        // From the wheelhouse the tools install filled: a second build needs no package registry.
        tools::pip_install(&venv_bin.join("python"), &smoke)
            .args(["--no-index", "--find-links"])
            .arg_path(&host.tools.wheelhouse())
            .args(tools::smoke_requirements())
            .into_step("smoke: install pytest"),
        Cmd::new(venv_bin.join("python"), &smoke)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg_path(&root.join("sdks/python/tests"))
            .env("BOXSPEC_EXAMPLES", examples.display().to_string())
            .into_step("smoke: pytest"),
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
}
