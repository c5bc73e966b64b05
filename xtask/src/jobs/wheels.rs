//! build-wheels: one abi3 manylinux_2_17 wheel, checked by auditwheel, installed into a fresh venv
//! and tested there with the SDK's pytest suite.

use crate::cache::{Backend, CacheSetup};
use crate::container;
use crate::flags::{BuildArgs, Engine};
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::tools::{self, GLIBC_MAX_MINOR, PYTEST, TARGET};

pub const PLATFORM_TAG: &str = "manylinux_2_17_x86_64";

pub fn wheel_name(version: &str) -> String {
    format!("boxspec-{version}-cp39-abi3-manylinux2014_x86_64.{PLATFORM_TAG}.whl")
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
            .compile_env(&super::compile_env(host, cache))
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
fn check_and_smoke(host: &HostEnv) -> Vec<Step> {
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
            .expect_stdout_contains(PLATFORM_TAG)
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
        tools::pip_install(&venv_bin.join("python"), &smoke)
            .args([format!("{}=={}", PYTEST.0, PYTEST.1)])
            .into_step("smoke: install pytest"),
        Cmd::new(venv_bin.join("python"), &smoke)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg_path(&root.join("sdks/python/tests"))
            .env("BOXSPEC_EXAMPLES", examples.display().to_string())
            .into_step("smoke: pytest"),
    ]
}

/// Chooses the wrapper inside cibuildwheel's container: sccache when it runs there, else a pass-through
/// shim. The path is absolute because cibuildwheel rewrites PATH. It is a script, never a symlink to
/// sccache: sccache run under another name takes that name for the compiler's and calls itself forever.
const CIBW_WRAPPER: &str = "/usr/local/bin/xtask-rustc-wrapper";

/// The wheel built by the pinned cibuildwheel in its own manylinux container. cibuildwheel copies the
/// project to /project, so keys differ from host builds (dependencies still hit across its own runs);
/// `--container` is the mode that shares keys with the host.
pub fn plan_cibuildwheel(host: &HostEnv, cache: &CacheSetup, build: &BuildArgs) -> Vec<Step> {
    let dist = host.dist().join("wheels");
    let engine = build.container.unwrap_or(Engine::Docker);
    let cargo_home = container::cargo_home(host);
    let sccache = cache.wrapper.as_ref().map(|p| p.display().to_string());
    let shim = format!("printf '#!/bin/sh\\nexec \"$@\"\\n' > {CIBW_WRAPPER}");
    let select_wrapper = match &sccache {
        Some(sccache) => format!(
            "if {sccache} --version >/dev/null 2>&1; \
             then printf '#!/bin/sh\\nexec {sccache} \"$@\"\\n' > {CIBW_WRAPPER}; \
             else echo 'notice: sccache does not run in this image; building uncached' >&2; \
             {shim}; fi; chmod +x {CIBW_WRAPPER}"
        ),
        None => format!("{shim}; chmod +x {CIBW_WRAPPER}"),
    };
    // Mounted into cibuildwheel's container at the host's paths: sccache only when the host probe
    // passed, the local cache, and the host's toolchain (manylinux images have no Rust).
    let mut volumes = vec![
        format!("--volume={0}:{0}", cargo_home.display()),
        format!(
            "--volume={0}:{0}:ro",
            container::rustup_home(host).display()
        ),
    ];
    volumes.extend(sccache.iter().map(|s| format!("--volume={s}:{s}:ro")));
    if let Backend::Local { dir } = &cache.backend {
        volumes.push(format!("--volume={0}:{0}", dir.display()));
    }
    let mut passed: Vec<String> = cache
        .env
        .iter()
        .filter(|(name, value)| value.is_some() && name != "RUSTC_WRAPPER")
        .map(|(name, _)| name.clone())
        .chain(
            host.vars
                .keys()
                // Not the package variables of the driver's own `cargo run`: keys in cibuildwheel's
                // container never match the host's anyway, and cargo sets them per crate.
                .filter(|k| container::passed_by_name(k) && !k.starts_with("CARGO_PKG_"))
                .filter(|k| !k.starts_with("CARGO_MANIFEST_"))
                .cloned(),
        )
        .collect();
    passed.sort();
    passed.dedup();
    let mut cibuildwheel = Cmd::new(host.tools.bin("cibuildwheel"), &host.root)
        .args(["--platform", "linux", "--output-dir"])
        .arg_path(&dist)
        .args(["sdks/python"])
        .env(
            "CIBW_CONTAINER_ENGINE",
            format!("{}; create_args: {}", engine.as_str(), volumes.join(" ")),
        )
        .env("CIBW_BEFORE_ALL_LINUX", select_wrapper)
        .env(
            "CIBW_ENVIRONMENT_LINUX",
            format!(
                "RUSTC_WRAPPER={CIBW_WRAPPER} CARGO_HOME={home} PATH=$PATH:{home}/bin",
                home = cargo_home.display()
            ),
        )
        .env("CIBW_ENVIRONMENT_PASS_LINUX", passed.join(" "))
        .compile_env(&cache.env);
    if let Some(image) = &build.image {
        cibuildwheel = cibuildwheel.env("CIBW_MANYLINUX_X86_64_IMAGE", image);
    }
    let mut steps = vec![
        Step::new("clean dist/wheels", Action::CleanDir(dist)),
        cibuildwheel.into_step(format!("cibuildwheel ({})", engine.as_str())),
    ];
    steps.extend(check_and_smoke(host));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cibuildwheel_cmd(cache: &CacheSetup, build: &BuildArgs) -> Cmd {
        let host = HostEnv::fixture(&[
            ("HOME", "/home/u"),
            ("SCCACHE_REDIS_ENDPOINT", "redis://:hunter2@h:6379"),
            ("EDITOR", "vi"),
            ("CARGO_HOME", "/home/u/.cargo"),
            ("CARGO_PKG_NAME", "xtask"),
            ("CARGO_MANIFEST_DIR", "/src/boxspec/xtask"),
        ]);
        let steps = plan_cibuildwheel(&host, cache, build);
        steps
            .iter()
            .find_map(|s| match &s.action {
                Action::Run(cmd) if cmd.program.ends_with("cibuildwheel") => Some(cmd.clone()),
                _ => None,
            })
            .expect("a cibuildwheel step")
    }

    fn env<'a>(cmd: &'a Cmd, name: &str) -> &'a str {
        cmd.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .unwrap_or_else(|| panic!("{name} not set"))
    }

    /// Inside, the wrapper is sccache when it runs there and a pass-through shim otherwise, at an
    /// absolute path (cibuildwheel rewrites PATH); sccache is mounted only when the host probe passed.
    #[test]
    fn cibuildwheel_gets_a_wrapper_that_always_runs() {
        let cases = [
            (
                CacheSetup::fixture(
                    Some("/t/sccache"),
                    Backend::Local {
                        dir: "/h/sccache".into(),
                    },
                ),
                true,
            ),
            (CacheSetup::fixture(None, Backend::Disabled), false),
        ];
        for (cache, uses_sccache) in cases {
            let cmd = cibuildwheel_cmd(&cache, &BuildArgs::default());
            let before_all = env(&cmd, "CIBW_BEFORE_ALL_LINUX");
            assert!(
                before_all.contains(
                    r#"printf '#!/bin/sh\nexec "$@"\n' > /usr/local/bin/xtask-rustc-wrapper"#
                ),
                "{before_all}"
            );
            assert_eq!(
                before_all.contains(
                    r#"printf '#!/bin/sh\nexec /t/sccache "$@"\n' > /usr/local/bin/xtask-rustc-wrapper"#
                ),
                uses_sccache,
                "{before_all}"
            );
            assert!(!before_all.contains("ln -s"), "{before_all}");
            assert!(
                env(&cmd, "CIBW_ENVIRONMENT_LINUX")
                    .starts_with("RUSTC_WRAPPER=/usr/local/bin/xtask-rustc-wrapper ")
            );
            let engine = env(&cmd, "CIBW_CONTAINER_ENGINE");
            assert!(engine.starts_with("docker; create_args: "), "{engine}");
            assert_eq!(
                engine.contains("--volume=/t/sccache:/t/sccache:ro"),
                uses_sccache,
                "{engine}"
            );
            assert_eq!(
                engine.contains("--volume=/h/sccache:/h/sccache"),
                uses_sccache,
                "{engine}"
            );
        }
    }

    #[test]
    fn cibuildwheel_passes_cache_variables_by_name() {
        let cache = CacheSetup::fixture(
            Some("/t/sccache"),
            Backend::Remote {
                kind: "redis",
                health: None,
            },
        );
        let build = BuildArgs {
            container: Some(Engine::Podman),
            image: Some("localhost/manylinux".into()),
            toolchain: None,
        };
        let cmd = cibuildwheel_cmd(&cache, &build);
        let passed: Vec<&str> = env(&cmd, "CIBW_ENVIRONMENT_PASS_LINUX")
            .split(' ')
            .collect();
        for name in ["SCCACHE_REDIS_ENDPOINT", "CARGO_INCREMENTAL"] {
            assert!(passed.contains(&name), "{name}: {passed:?}");
        }
        assert!(passed.contains(&"CARGO_HOME"), "{passed:?}");
        for name in ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR"] {
            assert!(
                !passed.contains(&name),
                "the driver's own {name}: {passed:?}"
            );
        }
        assert!(
            !passed.contains(&"EDITOR") && !passed.contains(&"RUSTC_WRAPPER"),
            "{passed:?}"
        );
        let all: String = cmd
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("CIBW_"))
            .map(|(_, v)| v.clone().unwrap_or_default())
            .collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(env(&cmd, "CIBW_CONTAINER_ENGINE").starts_with("podman; "));
        assert_eq!(
            env(&cmd, "CIBW_MANYLINUX_X86_64_IMAGE"),
            "localhost/manylinux"
        );
    }
}
