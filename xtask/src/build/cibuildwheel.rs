//! build-wheels --via cibuildwheel's plan: the pinned cibuildwheel builds the wheel in its own manylinux
//! container; the same host checks and smoke tests as the maturin path follow.

use super::Build;
use crate::cache::CacheSetup;
use crate::cache::backend::container_env_names;
use crate::container::inside::{self, Mount};
use crate::flags::{BuildArgs, Engine};
use crate::plan::{Action, Cmd, Step};

/// The wrapper inside cibuildwheel's container: sccache when it runs there, else a pass-through shim.
/// The path is absolute because cibuildwheel rewrites PATH. It is a script, never a symlink to sccache:
/// sccache run under another name takes that name for the compiler's and calls itself forever.
const CIBW_WRAPPER: &str = "/usr/local/bin/xtask-rustc-wrapper";

/// cibuildwheel copies the project to /project, so keys differ from host builds (dependencies still hit
/// across its own runs); `--container` is the mode that shares keys with the host.
pub fn plan(b: &Build, build: &BuildArgs) -> Vec<Step> {
    let (host, cache) = (b.host, b.cache);
    let dist = b.dist.clone();
    let engine = build.container.unwrap_or(Engine::Docker);
    let cargo_home = host.cargo_home();
    // The host's toolchain is mounted (manylinux images have no Rust), so its variables go in too.
    let volumes: Vec<String> = inside::outermost(inside::toolchain_and_cache(host, cache, true))
        .iter()
        .map(Mount::volume_arg)
        .collect();
    let mut passed = container_env_names(host, &cache.env, true, &cache.backend);
    passed.retain(|name| name != "RUSTC_WRAPPER");
    let mut cibuildwheel = Cmd::new(host.tools.bin("cibuildwheel"), &host.root)
        .args(["--platform", "linux", "--output-dir"])
        .arg_path(&dist)
        .args(["sdks/python"])
        .env(
            "CIBW_CONTAINER_ENGINE",
            format!("{}; create_args: {}", engine.as_str(), volumes.join(" ")),
        )
        .env("CIBW_BEFORE_ALL_LINUX", select_wrapper(cache))
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
        Step::new(
            format!("clean {}", b.host.relative(&dist)),
            Action::CleanDir(dist),
        ),
        cibuildwheel.into_step(format!("cibuildwheel ({})", engine.as_str())),
    ];
    steps.extend(super::wheels::check_and_smoke(b));
    steps
}

/// Shell for cibuildwheel's before-all: write the wrapper as sccache where it runs, else as the shim.
fn select_wrapper(cache: &CacheSetup) -> String {
    let shim = format!("printf '#!/bin/sh\\nexec \"$@\"\\n' > {CIBW_WRAPPER}");
    match &cache.wrapper {
        Some(sccache) => format!(
            "if {runs}; then printf '#!/bin/sh\\nexec {sccache} \"$@\"\\n' > {CIBW_WRAPPER}; \
             else {shim}; fi; chmod +x {CIBW_WRAPPER}",
            runs = inside::wrapper_runs(&sccache.display().to_string()),
            sccache = sccache.display(),
        ),
        None => format!("{shim}; chmod +x {CIBW_WRAPPER}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildJob;
    use crate::cache::Backend;
    use crate::cache::backend::RemoteKind;
    use crate::host::HostEnv;
    use crate::plan::Action;

    fn cibuildwheel_cmd(cache: &CacheSetup, build: &BuildArgs) -> Cmd {
        let host = HostEnv::fixture(&[
            ("HOME", "/home/u"),
            ("SCCACHE_REDIS_ENDPOINT", "redis://:hunter2@h:6379"),
            ("EDITOR", "vi"),
            ("CARGO_HOME", "/home/u/.cargo"),
            ("CARGO_PKG_NAME", "xtask"),
            ("CARGO_MANIFEST_DIR", "/src/boxspec/xtask"),
        ]);
        let job = BuildJob::WheelsViaCibuildwheel(build.clone());
        let steps = job.plan(&host, cache, host.platform.unwrap());
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
            .value(name)
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
                kind: RemoteKind::Redis,
                health: None,
            },
        );
        let build = BuildArgs {
            container: Some(Engine::Podman),
            image: Some("localhost/manylinux".into()),
            toolchain: None,
            targets: vec![],
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
            .map(|(_, v)| v.unwrap_or_default())
            .collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(env(&cmd, "CIBW_CONTAINER_ENGINE").starts_with("podman; "));
        assert_eq!(
            env(&cmd, "CIBW_MANYLINUX_X86_64_IMAGE"),
            "localhost/manylinux"
        );
    }
}
