//! Container mode: a job's compile steps run inside docker or podman; packaging, checks and smoke tests
//! stay on the host. The workspace, `CARGO_HOME`, the tools directory (linker wrapper), the sccache
//! directory and, by default, the host's toolchain are mounted at their host paths, and the compile
//! environment goes in unchanged (by name), so rustc sees the very invocation it sees on the host and
//! the cache keys match.

pub mod inside;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::cache::backend::{PASSED_WITH_VALUE, container_env_names};
use crate::cache::{Backend, CacheSetup, Stats};
use crate::env_delta::EnvDelta;
use crate::flags::{BuildArgs, Engine, Toolchain, UsageError};
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};
use crate::process::run_with_deadline;
use inside::{Mount, rw};

/// What container mode needs to know, probed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub engine: Engine,
    /// The engine's executable.
    pub program: PathBuf,
    pub image: String,
    /// Compile with the host's toolchain, mounted read-only (else the image's own `cargo`).
    pub host_toolchain: bool,
    pub uid: u32,
    pub gid: u32,
}

/// The container's entry point: drop a wrapper that cannot run there (the build goes on uncached), run
/// the step, then save the container's own sccache counters and stop its server so every write lands.
fn entry_script() -> String {
    format!(
        r#"if [ -n "$RUSTC_WRAPPER" ] && ! {runs}; then
  RUSTC_WRAPPER=; export RUSTC_WRAPPER
fi
"$@"
status=$?
if [ -n "$RUSTC_WRAPPER" ]; then
  "$RUSTC_WRAPPER" --show-stats --stats-format=json >"$XTASK_SCCACHE_STATS" 2>/dev/null
  "$RUSTC_WRAPPER" --stop-server >/dev/null 2>&1
fi
exit $status"#,
        runs = inside::wrapper_runs("$RUSTC_WRAPPER")
    )
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(300);

impl Container {
    /// `None` without `--container`. Checks the engine can run the image; `dry_run` only looks on PATH.
    pub fn probe(build: &BuildArgs, host: &HostEnv, dry_run: bool) -> Result<Option<Container>> {
        let Some(engine) = build.container else {
            // Accepted and ignored, it would build on the host while the user thinks it ran in the image.
            if build.image.as_deref().is_some_and(|i| !i.is_empty()) {
                bail!(UsageError(
                    "--image (or XTASK_IMAGE) needs --container docker|podman (or --via cibuildwheel)"
                        .into()
                ));
            }
            return Ok(None);
        };
        let name = engine.as_str();
        let Some(image) = build.image.clone().filter(|i| !i.is_empty()) else {
            bail!(UsageError(format!(
                "--container {name} needs --image IMAGE (or XTASK_IMAGE)"
            )));
        };
        let Some(program) = host.find_on_path(name) else {
            bail!(
                "--container {name}: `{name}` is not on PATH. Install it (Debian: apt-get install {name}; \
                 .ci/container-setup.sh sets podman up on a machine without a registry), or build on the \
                 host without --container"
            );
        };
        let mut container = Container {
            engine,
            program,
            image,
            host_toolchain: build.toolchain != Some(Toolchain::Image),
            uid: host.uid,
            gid: host.gid,
        };
        if dry_run {
            return Ok(Some(container));
        }
        let image_cargo = container.image_cargo()?;
        if build.toolchain.is_none() {
            container.host_toolchain = image_cargo.is_none();
        }
        Ok(Some(container))
    }

    /// Runs `command -v cargo` in the image: fails with the engine's own words when it cannot run it.
    fn image_cargo(&self) -> Result<Option<String>> {
        let name = self.engine.as_str();
        let args = ["run", "--rm", "--network=none", &self.image, "sh", "-c"];
        let args = [&args[..], &["command -v cargo || true"]].concat();
        let out = run_with_deadline(&self.program, &args, &Default::default(), PROBE_TIMEOUT)?;
        if !out.ok() {
            // The engine's first line says what is wrong; docker adds a generic hint after it.
            let why = match out.stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
                Some(line) if out.code.is_some() => line.to_string(),
                _ => out.why(),
            };
            bail!(
                "--container {name}: {name} cannot run a container from {}: {why}. Check `{name} info` \
                 and `{name} images`; on machines like CI, .ci/container-setup.sh sets podman up",
                self.image,
            );
        }
        let cargo = out.stdout.trim();
        Ok((!cargo.is_empty()).then(|| cargo.to_string()))
    }

    /// Every path the container sees. A path inside another mount gets none.
    pub fn mounts(&self, host: &HostEnv, cache: &CacheSetup, cwd: &Path) -> Vec<Mount> {
        let mut wanted = vec![
            rw(host.root.clone()),
            rw(cwd.to_path_buf()),
            rw(host.target_dir()),
            rw(host.dist()),
        ];
        wanted.extend(inside::toolchain_and_cache(
            host,
            cache,
            self.host_toolchain,
        ));
        wanted.push(rw(home_dir(host)));
        inside::outermost(wanted)
    }

    /// `cmd` as a container run named `name`; its environment stays on the engine's process, which
    /// passes it on by name.
    pub fn wrap(&self, cmd: &Cmd, name: &str, host: &HostEnv, cache: &CacheSetup) -> Cmd {
        let mut args: Vec<String> = ["run", "--rm", &format!("--name={name}")]
            .map(String::from)
            .to_vec();
        // A remote backend needs the network; the container's sccache server then needs its own port.
        let remote = matches!(cache.backend, Backend::Remote { .. });
        args.push(format!(
            "--network={}",
            if remote { "host" } else { "none" }
        ));
        // Rootless podman: keep-id maps the user's uid to itself inside, so `--user` is the same uid
        // inside and out (without it, a uid inside is a subordinate uid outside).
        if self.engine == Engine::Podman && self.uid != 0 {
            args.push("--userns=keep-id".into());
        }
        args.push(format!("--user={}:{}", self.uid, self.gid));
        args.extend(
            self.mounts(host, cache, &cmd.cwd)
                .iter()
                .map(Mount::volume_arg),
        );
        args.push(format!("--workdir={}", cmd.cwd.display()));
        args.extend(self.env_args(host, cmd, cache));
        if remote {
            args.push(format!("--env=SCCACHE_SERVER_PORT={}", server_port(cache)));
        }
        let program = self.program_inside(cmd, host);
        if self.host_toolchain {
            let path = format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                host.cargo_home().join("bin").display()
            );
            args.push(format!("--env=PATH={path}"));
        }
        args.extend([self.image.clone(), "sh".into(), "-c".into(), entry_script()]);
        args.extend(["xtask-container".into(), program]);
        args.extend(cmd.args.iter().cloned());
        Cmd {
            program: self.program.clone(),
            args,
            ..cmd.clone()
        }
    }

    /// `--env` arguments: by name, except the cache decision's own settings and the container's own.
    fn env_args(&self, host: &HostEnv, cmd: &Cmd, cache: &CacheSetup) -> Vec<String> {
        let names = container_env_names(host, &cmd.env, self.host_toolchain, &cache.backend);
        let mut args: Vec<String> = names
            .into_iter()
            .map(|name| match cmd.env.value(&name) {
                Some(v) if PASSED_WITH_VALUE.contains(&name.as_str()) => {
                    format!("--env={name}={v}")
                }
                _ => format!("--env={name}"),
            })
            .collect();
        args.push(format!("--env=HOME={}", home_dir(host).display()));
        args.push(format!(
            "--env=XTASK_SCCACHE_STATS={}",
            stats_file(host).display()
        ));
        args
    }

    /// The step's program; with the image's toolchain, the image's own `cargo` instead of the host's.
    fn program_inside(&self, cmd: &Cmd, host: &HostEnv) -> String {
        let host_cargo = cmd.program.starts_with(host.rustup_home())
            || cmd.program.starts_with(host.cargo_home());
        match (self.host_toolchain, cmd.program.file_name()) {
            (false, Some(name)) if host_cargo => name.to_string_lossy().into_owned(),
            _ => cmd.program.display().to_string(),
        }
    }

    /// A name for the next container run, unique on this machine: a run the watch stopped is removed
    /// by name (killing the engine's client leaves the container running).
    pub fn run_name(&self) -> String {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        format!("xtask-{}-{n}", std::process::id())
    }

    /// Kills and removes a container run (the watch stopped it). `kill` sends SIGKILL in both engines;
    /// `rm --force` alone would wait out the stop timeout (the entry shell ignores SIGTERM), and only
    /// podman's `rm` takes `--time`. With `--rm` the engine may already have removed it.
    pub fn remove(&self, name: &str) {
        for args in [vec!["kill", name], vec!["rm", "--force", name]] {
            let _ = run_with_deadline(
                &self.program,
                &args,
                &EnvDelta::default(),
                Duration::from_secs(30),
            );
        }
    }

    /// The plan with its compile steps marked for the container (the pipeline wraps them when it runs
    /// them: `wrap`). The pipeline's `cargo fetch` ran on the host first (the container has no network
    /// with a local cache backend).
    pub fn plan(&self, steps: Vec<Step>, host: &HostEnv, cache: &CacheSetup) -> Vec<Step> {
        let mut out = Vec::new();
        for step in steps {
            let Some(cmd) = step.compile_cmd() else {
                out.push(step);
                continue;
            };
            // Engines create missing mount sources as root (docker) or refuse (podman).
            let writable = (self.mounts(host, cache, &cmd.cwd).into_iter())
                .filter(|m| !m.read_only)
                .map(|m| m.path);
            out.push(Step::new(
                "create the container's mount points",
                Action::MakeDirs(writable.chain([scratch_dir(host)]).collect()),
            ));
            let name = format!("{} (in {} {})", step.name, self.engine.as_str(), self.image);
            out.push(Step { name, ..step });
        }
        out
    }
}

/// The container's sccache counters for the last compile step, if it used sccache.
pub fn take_stats(host: &HostEnv) -> Option<Stats> {
    let path = stats_file(host);
    let text = std::fs::read_to_string(&path).ok();
    let _ = std::fs::remove_file(&path);
    Stats::parse(&text?)
}

/// Forget counters of an earlier run, so a build that fell back uncached reports none.
pub fn clear_stats(host: &HostEnv) {
    let _ = std::fs::remove_file(stats_file(host));
}

fn scratch_dir(host: &HostEnv) -> PathBuf {
    host.target_dir().join("xtask-container")
}

/// A writable HOME the user owns, kept across builds (zig keeps its libc stubs under it).
fn home_dir(host: &HostEnv) -> PathBuf {
    host.user_cache_dir().join("boxspec-xtask/container-home")
}

fn stats_file(host: &HostEnv) -> PathBuf {
    scratch_dir(host).join("sccache-stats.json")
}

/// The port of the container's own sccache server (the host network is shared with a remote backend).
pub fn server_port(cache: &CacheSetup) -> u16 {
    match cache.port.parse::<u16>() {
        Ok(port) if port < u16::MAX => port + 1,
        _ => 4227,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::backend::RemoteKind;

    const SCCACHE_OUTSIDE_TOOLS: &str = "/opt/sccache/bin/sccache";

    fn host() -> HostEnv {
        HostEnv::fixture(&[
            ("HOME", "/home/u"),
            ("PATH", "/home/u/.cargo/bin:/usr/bin"),
            ("CARGO_HOME", "/home/u/.cargo"),
            ("RUSTUP_HOME", "/home/u/.rustup"),
            ("RUSTUP_TOOLCHAIN", "1.95.0-x86_64-unknown-linux-gnu"),
            ("CARGO", "/home/u/.rustup/toolchains/1.95.0/bin/cargo"),
            ("SCCACHE_REDIS_ENDPOINT", "redis://:hunter2@10.0.0.1:6379"),
            ("ACTIONS_RUNTIME_TOKEN", "tok-123"),
            ("AWS_SECRET_ACCESS_KEY", "aws-456"),
            ("EDITOR", "vi"),
            ("RUSTC_BOOTSTRAP", "1"),
        ])
    }

    fn container(engine: Engine, uid: u32, host_toolchain: bool) -> Container {
        Container {
            engine,
            program: format!("/usr/bin/{}", engine.as_str()).into(),
            image: "localhost/img".into(),
            host_toolchain,
            uid,
            gid: uid,
        }
    }

    fn local() -> CacheSetup {
        CacheSetup::fixture(
            Some(SCCACHE_OUTSIDE_TOOLS),
            Backend::Local {
                dir: "/home/u/.cache/sccache".into(),
            },
        )
    }

    fn build(host: &HostEnv, cache: &CacheSetup) -> Cmd {
        Cmd::new("/home/u/.rustup/toolchains/1.95.0/bin/cargo", &host.root)
            .args(["build", "--release"])
            .compile_env(&linked(cache))
    }

    /// `build` as the pipeline runs it in the container `c`.
    fn wrapped_build(c: Container, host: &HostEnv, cache: &CacheSetup) -> Cmd {
        c.wrap(&build(host, cache), "xtask-1-0", host, cache)
    }

    /// The cache decision's environment and a linker, as a job's compile step has them.
    fn linked(cache: &CacheSetup) -> crate::env_delta::EnvDelta {
        let mut env = cache.env.clone();
        env.set(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
            "/home/u/.cache/boxspec-xtask/tools/bin/zig-cc-x86_64-linux-gnu.2.17",
        );
        env
    }

    fn volumes(cmd: &Cmd) -> Vec<&str> {
        cmd.args
            .iter()
            .filter_map(|a| a.strip_prefix("--volume="))
            .collect()
    }

    fn envs(cmd: &Cmd) -> Vec<&str> {
        cmd.args
            .iter()
            .filter_map(|a| a.strip_prefix("--env="))
            .collect()
    }

    #[test]
    fn everything_is_mounted_at_its_host_path() {
        let host = host();
        let cache = local();
        let cmd = wrapped_build(container(Engine::Podman, 0, true), &host, &cache);
        assert_eq!(
            volumes(&cmd),
            [
                "/src/boxspec:/src/boxspec",
                "/home/u/.cargo:/home/u/.cargo",
                "/home/u/.cache/boxspec-xtask/tools:/home/u/.cache/boxspec-xtask/tools:ro",
                "/home/u/.rustup:/home/u/.rustup:ro",
                "/opt/sccache/bin/sccache:/opt/sccache/bin/sccache:ro",
                "/home/u/.cache/sccache:/home/u/.cache/sccache",
                "/home/u/.cache/boxspec-xtask/container-home:/home/u/.cache/boxspec-xtask/container-home",
            ]
        );
        assert!(cmd.args.contains(&"--workdir=/src/boxspec".to_string()));
        // The same program and arguments run inside, after the image name and the prologue.
        assert_eq!(
            cmd.args[cmd.args.len() - 3..],
            [
                "/home/u/.rustup/toolchains/1.95.0/bin/cargo",
                "build",
                "--release"
            ]
        );
    }

    /// sccache is mounted only when the host probe passed; the local cache only when it is the backend.
    #[test]
    fn sccache_and_its_cache_are_mounted_only_when_used() {
        let host = host();
        let cases = [
            (local(), true, true),
            (CacheSetup::fixture(None, Backend::Disabled), false, false),
            (
                CacheSetup::fixture(
                    Some(SCCACHE_OUTSIDE_TOOLS),
                    Backend::Remote {
                        kind: RemoteKind::Redis,
                        health: None,
                    },
                ),
                true,
                false,
            ),
        ];
        for (cache, sccache_mounted, dir_mounted) in cases {
            let cmd = wrapped_build(container(Engine::Docker, 1000, true), &host, &cache);
            let v = volumes(&cmd);
            assert_eq!(
                v.iter().any(|m| m.starts_with(SCCACHE_OUTSIDE_TOOLS)),
                sccache_mounted,
                "{:?}: {v:?}",
                cache.backend
            );
            assert_eq!(
                v.iter().any(|m| m.starts_with("/home/u/.cache/sccache")),
                dir_mounted,
                "{:?}: {v:?}",
                cache.backend
            );
        }
    }

    /// Values never reach the command line: the engine passes variables on by name, from an allow-list.
    #[test]
    fn environment_goes_in_by_name_only() {
        let host = host();
        let cache = CacheSetup::fixture(
            Some(SCCACHE_OUTSIDE_TOOLS),
            Backend::Remote {
                kind: RemoteKind::Redis,
                health: None,
            },
        );
        let cmd = wrapped_build(container(Engine::Podman, 0, true), &host, &cache);
        let line = cmd.args.join(" ");
        for secret in ["hunter2", "tok-123", "aws-456"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
        let envs = envs(&cmd);
        for name in [
            "SCCACHE_REDIS_ENDPOINT",
            "ACTIONS_RUNTIME_TOKEN",
            "CARGO_HOME",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
            "RUSTUP_TOOLCHAIN",
            "RUSTC_BOOTSTRAP",
        ] {
            assert!(envs.contains(&name), "{name} not passed: {envs:?}");
        }
        for name in ["AWS_SECRET_ACCESS_KEY", "EDITOR"] {
            assert!(
                !envs.iter().any(|e| e.starts_with(name)),
                "{name} passed: {envs:?}"
            );
        }
        // Only the cache decision's two settings and the container's own carry values.
        let with_values: Vec<&str> = envs
            .iter()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(
            with_values,
            [
                "CARGO_INCREMENTAL",
                "RUSTC_WRAPPER",
                "HOME",
                "XTASK_SCCACHE_STATS",
                "SCCACHE_SERVER_PORT",
                "PATH"
            ]
        );
        assert!(envs.contains(&"RUSTC_WRAPPER=/opt/sccache/bin/sccache"));
        assert!(envs.contains(&"CARGO_INCREMENTAL=0"));
        // The engine's own environment carries the values it passes on by name.
        assert!(
            cmd.env
                .value("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER")
                == Some("/home/u/.cache/boxspec-xtask/tools/bin/zig-cc-x86_64-linux-gnu.2.17")
        );
    }

    /// An S3 backend's client reads AWS_* credentials: they go in by name with that backend only.
    #[test]
    fn s3_credentials_go_in_by_name_with_the_s3_backend() {
        let host = host();
        let cases = [(RemoteKind::S3, true), (RemoteKind::Redis, false)];
        for (kind, passed) in cases {
            let cache = CacheSetup::fixture(
                Some(SCCACHE_OUTSIDE_TOOLS),
                Backend::Remote { kind, health: None },
            );
            let cmd = wrapped_build(container(Engine::Podman, 0, true), &host, &cache);
            let envs = envs(&cmd);
            assert_eq!(
                envs.contains(&"AWS_SECRET_ACCESS_KEY"),
                passed,
                "{kind:?}: {envs:?}"
            );
            assert!(!cmd.args.join(" ").contains("aws-456"), "{kind:?}");
        }
    }

    #[test]
    fn variables_the_step_removes_stay_out() {
        let host = host();
        let cache = local();
        // A local (fallen-back) build unsets the remote backend's variables.
        let cmd = wrapped_build(container(Engine::Podman, 0, true), &host, &cache);
        assert!(
            !envs(&cmd).contains(&"SCCACHE_REDIS_ENDPOINT"),
            "{:?}",
            envs(&cmd)
        );
    }

    #[test]
    fn runs_as_the_invoking_user() {
        let host = host();
        let cache = local();
        // Under rootless podman, dropping keep-id and --user leaves uid 0 inside, which is the user
        // outside: the ownership test cannot see it, this table does.
        let cases: [(Engine, u32, &[&str]); 4] = [
            (Engine::Docker, 1000, &["--user=1000:1001"]),
            (Engine::Docker, 0, &["--user=0:1001"]),
            (Engine::Podman, 0, &["--user=0:1001"]),
            (
                Engine::Podman,
                1000,
                &["--userns=keep-id", "--user=1000:1001"],
            ),
        ];
        for (engine, uid, want) in cases {
            let c = Container {
                gid: 1001,
                ..container(engine, uid, true)
            };
            let cmd = wrapped_build(c, &host, &cache);
            let user_args: Vec<&str> = (cmd.args.iter())
                .filter(|a| a.starts_with("--user"))
                .map(String::as_str)
                .collect();
            assert_eq!(user_args, want, "{engine:?} {uid}: {:?}", cmd.args);
            assert!(
                envs(&cmd).contains(&"HOME=/home/u/.cache/boxspec-xtask/container-home"),
                "a writable HOME the user owns"
            );
        }
    }

    #[test]
    fn network_only_for_remote_backends() {
        let host = host();
        let remote = CacheSetup::fixture(
            Some(SCCACHE_OUTSIDE_TOOLS),
            Backend::Remote {
                kind: RemoteKind::Redis,
                health: None,
            },
        );
        let cases = [
            (local(), "--network=none", None),
            (
                CacheSetup::fixture(None, Backend::Disabled),
                "--network=none",
                None,
            ),
            (remote, "--network=host", Some("SCCACHE_SERVER_PORT=4227")),
        ];
        for (cache, network, port) in cases {
            let cmd = wrapped_build(container(Engine::Podman, 0, true), &host, &cache);
            assert!(cmd.args.contains(&network.to_string()), "{:?}", cmd.args);
            assert_eq!(
                envs(&cmd)
                    .into_iter()
                    .find(|e| e.starts_with("SCCACHE_SERVER_PORT=")),
                port
            );
        }
    }

    #[test]
    fn image_toolchain_uses_the_images_cargo() {
        let host = host();
        let cache = local();
        let cmd = wrapped_build(container(Engine::Docker, 1000, false), &host, &cache);
        assert!(
            !volumes(&cmd).iter().any(|v| v.contains(".rustup")),
            "{:?}",
            volumes(&cmd)
        );
        let envs = envs(&cmd);
        for name in ["CARGO", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            assert!(!envs.contains(&name), "{name}: {envs:?}");
        }
        assert!(
            !envs.iter().any(|e| e.starts_with("PATH=")),
            "the image's PATH"
        );
        assert_eq!(
            cmd.args[cmd.args.len() - 3..],
            ["cargo", "build", "--release"]
        );
    }

    /// Only compile steps move into the container; the rest stays.
    #[test]
    fn plan_moves_only_compile_steps() {
        let host = host();
        let cache = local();
        // The shape of a build job's plan: one compile step, then steps on the host.
        let steps = vec![
            build(&host, &cache).into_step("cargo build boxspec-cli"),
            Step::new(
                "clean dist/runtime",
                Action::CleanDir("/src/boxspec/dist/runtime".into()),
            ),
            Cmd::new("/src/boxspec/dist/runtime/boxspec", Path::new("/tmp"))
                .args(["--version"])
                .into_step("smoke: boxspec --version"),
        ];
        let c = container(Engine::Podman, 0, true);
        let planned = c.plan(steps.clone(), &host, &cache);
        assert_eq!(planned.len(), steps.len() + 1);
        let Action::MakeDirs(dirs) = &planned[0].action else {
            panic!("{:?}", planned[0])
        };
        assert_eq!(
            dirs,
            &[
                "/src/boxspec",
                "/home/u/.cargo",
                "/home/u/.cache/sccache",
                "/home/u/.cache/boxspec-xtask/container-home",
                "/src/boxspec/target/xtask-container"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            planned[1].name,
            "cargo build boxspec-cli (in podman localhost/img)"
        );
        // The pipeline wraps it when it runs it (a retry without the cache is wrapped anew).
        assert_eq!(planned[1].action, steps[0].action);
        assert_eq!(planned[2..], steps[1..]);
    }

    #[test]
    fn a_missing_engine_or_image_is_an_error_before_anything_runs() {
        let mut host = host();
        host.vars.insert("PATH".into(), "/nonexistent".into());
        let args = |engine, image: Option<&str>| BuildArgs {
            container: Some(engine),
            image: image.map(String::from),
            toolchain: None,
            targets: vec![],
        };
        let err = Container::probe(&args(Engine::Podman, Some("img")), &host, false).unwrap_err();
        assert!(!err.is::<UsageError>());
        let text = format!("{err:#}");
        assert!(
            text.contains("`podman` is not on PATH") && text.contains("apt-get install podman"),
            "{text}"
        );
        let err = Container::probe(&args(Engine::Docker, None), &host, false).unwrap_err();
        assert!(err.is::<UsageError>(), "{err:#}");
        assert!(format!("{err}").contains("--container docker needs --image"));
        assert_eq!(
            Container::probe(&BuildArgs::default(), &host, false).unwrap(),
            None
        );
        let image_alone = BuildArgs {
            image: Some("img".into()),
            ..BuildArgs::default()
        };
        let err = Container::probe(&image_alone, &host, true).unwrap_err();
        assert!(err.is::<UsageError>(), "{err:#}");
        assert!(format!("{err}").contains("--image (or XTASK_IMAGE) needs --container"));
    }
}
