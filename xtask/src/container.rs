//! Container mode: a job's compile steps run inside docker or podman; packaging, checks and smoke tests
//! stay on the host. The workspace, `CARGO_HOME`, the tools directory (linker wrapper), the sccache
//! directory and, by default, the host's toolchain are mounted at their host paths, and the compile
//! environment goes in unchanged (by name), so rustc sees the very invocation it sees on the host and
//! the cache keys match.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::UsageError;
use crate::bounded;
use crate::cache::{Backend, CacheSetup, Stats};
use crate::flags::{BuildArgs, Engine, Toolchain};
use crate::host::HostEnv;
use crate::plan::{Action, Cmd, Step};

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

/// Host variables a container receives, by name only: the cache backend, cargo's settings, GitHub's cache.
const PASSED_PREFIXES: &[&str] = &["SCCACHE_", "CARGO_"];
const PASSED_NAMES: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_CACHE_SERVICE_V2",
    "ACTIONS_CACHE_URL",
];
/// Passed only with the host's toolchain: they select the very same compiler inside.
const HOST_TOOLCHAIN_NAMES: &[&str] = &["CARGO", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"];

/// Runs first in the container: drop a wrapper that cannot run there (the build goes on uncached), run
/// the step, then save the container's own sccache counters and stop its server so every write lands.
const PROLOGUE: &str = r#"mkdir -p "$HOME"
if [ -n "$RUSTC_WRAPPER" ] && ! "$RUSTC_WRAPPER" --version >/dev/null 2>&1; then
  echo "notice: $RUSTC_WRAPPER does not run in this image; building uncached" >&2
  RUSTC_WRAPPER=; export RUSTC_WRAPPER
fi
"$@"
status=$?
if [ -n "$RUSTC_WRAPPER" ]; then
  "$RUSTC_WRAPPER" --show-stats --stats-format=json >"$XTASK_SCCACHE_STATS" 2>/dev/null
  "$RUSTC_WRAPPER" --stop-server >/dev/null 2>&1
fi
exit $status"#;

const PROBE_TIMEOUT: Duration = Duration::from_secs(300);

impl Container {
    /// `None` without `--container`. Checks the engine can run the image; `dry_run` only looks on PATH.
    pub fn probe(build: &BuildArgs, host: &HostEnv, dry_run: bool) -> Result<Option<Container>> {
        let Some(engine) = build.container else {
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
        let probe_args = [
            "run",
            "--rm",
            "--network=none",
            &container.image,
            "sh",
            "-c",
            "command -v cargo || true",
        ];
        let out = bounded::run(&container.program, &probe_args, &[], PROBE_TIMEOUT)?;
        if !out.ok() {
            bail!(
                "--container {name}: {name} cannot run a container from {}: {}. Check `{name} info` and \
                 `{name} images`; on machines like CI, .ci/container-setup.sh sets podman up",
                container.image,
                out.why()
            );
        }
        if build.toolchain.is_none() {
            container.host_toolchain = out.stdout.trim().is_empty();
        }
        Ok(Some(container))
    }

    /// Every path the container sees, as (path, read-only). A path inside another mount gets none.
    pub fn mounts(&self, host: &HostEnv, cache: &CacheSetup) -> Vec<(PathBuf, bool)> {
        let mut wanted = vec![
            (host.root.clone(), false),
            (host.target_dir(), false),
            (host.dist(), false),
            (cargo_home(host), false),
            (host.tools.dir.clone(), true),
        ];
        if self.host_toolchain {
            wanted.push((rustup_home(host), true));
        }
        if let Some(wrapper) = &cache.wrapper {
            wanted.push((wrapper.clone(), true));
        }
        if let Backend::Local { dir } = &cache.backend {
            wanted.push((dir.clone(), false));
        }
        let mut mounts: Vec<(PathBuf, bool)> = Vec::new();
        for (path, read_only) in wanted {
            if !mounts.iter().any(|(m, _)| path.starts_with(m)) {
                mounts.retain(|(m, _)| !m.starts_with(&path));
                mounts.push((path, read_only));
            }
        }
        mounts
    }

    /// The names of the variables the step gets from the driver's environment and its own.
    pub fn env_names(&self, host: &HostEnv, cmd: &Cmd) -> Vec<String> {
        let passed = |name: &str| passed_by_name(name) || HOST_TOOLCHAIN_NAMES.contains(&name);
        let mut names: Vec<String> = host.vars.keys().filter(|k| passed(k)).cloned().collect();
        for (name, value) in &cmd.env {
            names.retain(|n| n != name);
            if value.is_some() {
                names.push(name.clone());
            }
        }
        if !self.host_toolchain {
            names.retain(|n| !HOST_TOOLCHAIN_NAMES.contains(&n.as_str()));
        }
        names.sort();
        names.dedup();
        names
    }

    /// `cmd` as a container run; its environment stays on the engine's process, which passes it on by name.
    pub fn wrap(&self, cmd: &Cmd, host: &HostEnv, cache: &CacheSetup) -> Cmd {
        let scratch = scratch_dir(host);
        let mut args: Vec<String> = ["run", "--rm"].map(String::from).to_vec();
        // A remote backend needs the network; the container's sccache server then needs its own port.
        let remote = matches!(cache.backend, Backend::Remote { .. });
        args.push(format!(
            "--network={}",
            if remote { "host" } else { "none" }
        ));
        match (self.engine, self.uid) {
            (Engine::Podman, uid) if uid != 0 => args.push("--userns=keep-id".into()),
            _ => args.push(format!("--user={}:{}", self.uid, self.gid)),
        }
        for (path, read_only) in self.mounts(host, cache) {
            let ro = if read_only { ":ro" } else { "" };
            args.push(format!("--volume={0}:{0}{ro}", path.display()));
        }
        args.push(format!("--workdir={}", cmd.cwd.display()));
        for name in self.env_names(host, cmd) {
            args.push(format!("--env={name}"));
        }
        args.push(format!("--env=HOME={}", scratch.join("home").display()));
        args.push(format!(
            "--env=XTASK_SCCACHE_STATS={}",
            stats_file(host).display()
        ));
        if remote {
            args.push(format!(
                "--env=SCCACHE_SERVER_PORT={}",
                container_port(cache)
            ));
        }
        let mut program = cmd.program.display().to_string();
        if self.host_toolchain {
            let path = format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                cargo_home(host).join("bin").display()
            );
            args.push(format!("--env=PATH={path}"));
        } else if cmd.program.starts_with(rustup_home(host))
            || cmd.program.starts_with(cargo_home(host))
        {
            // The host's cargo is not mounted: use the image's.
            program = cmd
                .program
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
        }
        args.extend([
            self.image.clone(),
            "sh".into(),
            "-c".into(),
            PROLOGUE.into(),
        ]);
        args.extend(["xtask-container".into(), program]);
        args.extend(cmd.args.iter().cloned());
        Cmd {
            program: self.program.clone(),
            args,
            ..cmd.clone()
        }
    }

    /// The plan with its compile steps moved into the container, after a host `cargo fetch` (the
    /// container has no network with a local cache backend).
    pub fn plan(&self, steps: Vec<Step>, host: &HostEnv, cache: &CacheSetup) -> Vec<Step> {
        let mut out = Vec::new();
        let mut fetched = false;
        for step in steps {
            match &step.action {
                Action::Run(cmd) if cmd.compiles => {
                    if !fetched {
                        out.push(
                            Cmd::new(crate::jobs::cargo(host), &host.root)
                                .args(["fetch", "--locked"])
                                .into_step("cargo fetch (for the container)"),
                        );
                        fetched = true;
                    }
                    let name =
                        format!("{} (in {} {})", step.name, self.engine.as_str(), self.image);
                    out.push(self.wrap(cmd, host, cache).into_step(name));
                }
                _ => out.push(step),
            }
        }
        out
    }
}

/// Whether a host variable goes into containers (by name): the cache backend, cargo's settings and
/// GitHub's cache service.
pub fn passed_by_name(name: &str) -> bool {
    PASSED_PREFIXES.iter().any(|p| name.starts_with(p)) || PASSED_NAMES.contains(&name)
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

fn stats_file(host: &HostEnv) -> PathBuf {
    scratch_dir(host).join("sccache-stats.json")
}

fn container_port(cache: &CacheSetup) -> u16 {
    match cache.port.parse::<u16>() {
        Ok(port) if port < u16::MAX => port + 1,
        _ => 4227,
    }
}

pub fn cargo_home(host: &HostEnv) -> PathBuf {
    home_var(host, "CARGO_HOME", ".cargo")
}

pub fn rustup_home(host: &HostEnv) -> PathBuf {
    home_var(host, "RUSTUP_HOME", ".rustup")
}

fn home_var(host: &HostEnv, name: &str, default: &str) -> PathBuf {
    match host.var(name) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(host.var("HOME").unwrap_or("/")).join(default),
    }
}
