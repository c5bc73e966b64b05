//! The whole command line, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Build, smoke-test and cache the boxspec runtime, Node addon and Python wheels."
)]
pub struct Xtask {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub job: Job,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print the exact plan (programs, arguments, environment, working directories) and run nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Compiler cache policy [default: auto; warm-caches: require].
    #[arg(long, global = true, env = "XTASK_CACHE", value_enum)]
    pub cache: Option<CacheMode>,
    /// The sccache binary to use, tried before the pinned copy and PATH.
    #[arg(long, global = true, env = "XTASK_SCCACHE", value_name = "PATH")]
    pub sccache: Option<PathBuf>,
    /// Distribute compiles to this sccache-dist scheduler (token from XTASK_DIST_TOKEN); falls back to
    /// local compiles with a notice.
    #[arg(long, global = true, env = "XTASK_DIST_SCHEDULER", value_name = "URL")]
    pub dist: Option<String>,
}

/// bench-cache's scenario groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchGroup {
    /// nocache, cold and warm builds of each job.
    Cache,
    /// cross-job and cross-path: one cache shared across jobs and checkouts.
    Cross,
    /// ci-warm: a fresh checkout with the warm sccache directory and target layer.
    CiWarm,
    /// runner-cold and runner-warm: `cargo xtask <job>` as a fresh GitHub runner starts it.
    Runner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheMode {
    /// Use sccache when it works; otherwise build uncached with a one-line notice.
    Auto,
    /// Use the cache's hits and write nothing to it: builds of untrusted code (pull requests from forks).
    Read,
    /// Never use a compiler cache (an inherited RUSTC_WRAPPER is emptied).
    Off,
    /// Fail fast when the cache cannot be used as configured.
    Require,
}

impl CacheMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Auto => "auto",
            CacheMode::Read => "read",
            CacheMode::Off => "off",
            CacheMode::Require => "require",
        }
    }
}

/// What the build jobs build for, and where they compile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct BuildArgs {
    /// The platform to build for [default: this machine's own]; repeat it on warm-caches.
    /// x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu build on any Linux host; the Apple
    /// targets on a Mac. Another machine's target needs its standard library (`rustup target add`).
    #[arg(
        long = "target",
        env = "XTASK_TARGET",
        value_name = "TRIPLE",
        value_delimiter = ','
    )]
    pub targets: Vec<String>,
    /// Compile inside a container of this engine, with the host's paths (artifacts are checked and
    /// smoke-tested on the host).
    #[arg(long, env = "XTASK_CONTAINER", value_enum)]
    pub container: Option<Engine>,
    /// The image for --container (with --via cibuildwheel: the manylinux image); needs one of them.
    #[arg(long, env = "XTASK_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,
    /// Which compiler the container uses [default: host, unless the image has its own cargo].
    /// The host's is mounted read-only at its own path: the compiler is part of every cache key.
    #[arg(long, value_enum, requires = "container")]
    pub toolchain: Option<Toolchain>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toolchain {
    Host,
    Image,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// maturin on the host, or in --container with the host's paths.
    #[default]
    Maturin,
    /// The pinned cibuildwheel with the --container engine (docker by default) and its manylinux image.
    Cibuildwheel,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Job {
    /// Build the `boxspec` CLI into dist/runtime/ and smoke-test it.
    BuildRuntime(BuildRuntime),
    /// Build the Node addon into dist/node/ and load it from outside the repository.
    BuildNode(BuildNode),
    /// Build the manylinux_2_17 abi3 wheel into dist/wheels/, install it into the kept smoke venv and
    /// run the SDK's tests there.
    BuildWheels(BuildWheels),
    /// Run the three build jobs' own plans to fill the compiler cache (cache required by default).
    WarmCaches(WarmCaches),
    /// Build any crate through the cache decision and report its cache result (fault drills, fixtures).
    CheckCache(CheckCache),
    /// Measure the cache on the real workspace: nocache, cold, warm, cross-job, cross-path, ci-warm and
    /// runner (a fresh GitHub runner, cold and with CI's entries restored) builds.
    BenchCache(BenchCache),
    /// Prune target/ to the layer CI saves next to the compiler cache (warm-caches does this last).
    TargetLayer(TargetLayer),
    /// Collect the build jobs' artifacts into dist/release/ (wheels + sdist, npm packages, runtime
    /// archives + SHA256SUMS) after checking the set: every target, one version, platforms as named.
    Release(Release),
    /// Upload dist/release/ with twine (PyPI) and npm publish; a version already out is refused
    /// before anything is uploaded.
    Publish(Publish),
    /// Lint .github/workflows with the pinned actionlint and zizmor.
    LintWorkflows(LintWorkflows),
    /// Install the pinned tools and print where each one is, as JSON.
    Tools(Tools),
    /// Show what the driver detects: tools, sccache candidates, backend, server port, probe result.
    Doctor(Doctor),
}

// One struct per job (its doc comment is the variant's above); its file in jobs/ adds `run`.

#[derive(Debug, Clone, Args)]
pub struct BuildRuntime {
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BuildNode {
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BuildWheels {
    #[command(flatten)]
    pub build: BuildArgs,
    /// What drives the wheel build.
    #[arg(long, value_enum, default_value = "maturin")]
    pub via: Via,
}

#[derive(Debug, Clone, Args)]
pub struct WarmCaches {
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CheckCache {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Cargo.toml of the crate to build.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BenchCache {
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Only these groups of scenarios [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<BenchGroup>,
    /// How many times nocache and cold build each job (the table shows the median's ratio).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub runs: u32,
}

#[derive(Debug, Clone, Args)]
pub struct TargetLayer {
    /// Cargo.toml of the workspace [default: this one].
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct Release {
    /// The build artifacts as actions/download-artifact lays them out: one folder per artifact,
    /// named `<job>-<target>` (build-runtime-x86_64-unknown-linux-gnu, …).
    #[arg(long, value_name = "DIR")]
    pub artifacts: PathBuf,
    /// The release tag (`v0.1.0`): it must name the version everything else says.
    #[arg(long, env = "XTASK_RELEASE_TAG", value_name = "TAG")]
    pub tag: Option<String>,
    #[command(flatten)]
    pub targets: ReleaseTargets,
}

#[derive(Debug, Clone, Args)]
pub struct Publish {
    #[command(flatten)]
    pub targets: ReleaseTargets,
}

#[derive(Debug, Clone, Args)]
pub struct LintWorkflows {}

#[derive(Debug, Clone, Args)]
pub struct Tools {
    /// Also install the real servers the tests run against (redis-server, S3, WebDAV, pypiserver, verdaccio).
    #[arg(long)]
    pub test: bool,
}

#[derive(Debug, Clone, Args)]
pub struct Doctor {
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which targets a release holds: every platform the SDKs ship unless named here. A release of fewer
/// (a test, a platform whose runner is down) must say so to `release` and again to `publish`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ReleaseTargets {
    /// Release only these targets (comma-separated), not every shipped one.
    #[arg(long = "targets", value_name = "TRIPLES", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// A combination of flags clap cannot reject by itself; exits with 2 like clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Xtask::command().debug_assert();
    }

    #[test]
    fn unknown_job_is_a_usage_error() {
        let err = Xtask::try_parse_from(["xtask", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    /// The help says what the jobs do: where each build job puts its artifacts, and that the wheel's
    /// smoke venv is kept between runs (made once, the wheel force-reinstalled: wheels.rs).
    #[test]
    fn help_texts_match_the_jobs() {
        let about = |job: &str| {
            let cmd = Xtask::command();
            let sub = cmd.find_subcommand(job).unwrap();
            sub.get_about().unwrap().to_string()
        };
        for (job, dist) in [
            ("build-runtime", "dist/runtime/"),
            ("build-node", "dist/node/"),
            ("build-wheels", "dist/wheels/"),
        ] {
            assert!(about(job).contains(dist), "{job}: {}", about(job));
        }
        let wheels = about("build-wheels");
        assert!(
            wheels.contains("kept smoke venv") && !wheels.contains("fresh"),
            "{wheels}"
        );
    }

    #[test]
    fn global_flags_go_after_the_job() {
        let flags = Xtask::try_parse_from(["xtask", "build-wheels", "--dry-run", "--cache", "off"])
            .unwrap();
        assert!(flags.global.dry_run);
        assert_eq!(flags.global.cache, Some(CacheMode::Off));
        assert!(matches!(flags.job, Job::BuildWheels(_)));
    }
}
