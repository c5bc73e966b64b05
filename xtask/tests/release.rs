//! From build artifacts to packages users install: the build jobs for x86_64 and (under emulation)
//! aarch64 Linux, laid out as actions/download-artifact lays out a matrix's artifacts, then
//! `cargo xtask release` and `cargo xtask publish` as typed, against a real PyPI (pypiserver) and a real
//! npm registry (verdaccio) on loopback ports; then `pip install` and `npm install` in fresh directories,
//! each computing examples/box.digest, natively and for aarch64 under qemu, and the sdist built into a
//! wheel. Before that, each registry's credentials missing or wrong: publish uploads nothing anywhere and
//! says what to fix; then the npm registry killed half-way through a publish, and a second publish
//! finishing the release. A publish of a version that is out everywhere is refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::root;
use common::server::Server;

const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const PYPI_PASSWORD: &str = "pypi-release-secret";

fn ok(what: &str, out: &Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    format!("{stdout}{stderr}")
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

/// `dir` after `fs::remove_dir_all` and `create_dir_all`.
fn empty(dir: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    dir.to_path_buf()
}

/// Every file under `dir`, relative, sorted (what a registry stores).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.path().is_dir() {
                true => stack.push(entry.path()),
                false => out.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .display()
                        .to_string(),
                ),
            }
        }
    }
    out.sort();
    out
}

/// The registries' settings as a release job has them: twine's own configuration (a ~/.pypirc section
/// named by TWINE_REPOSITORY, with its credentials; the index publish asks is derived from it), npm's
/// user config with the token setup-node would write.
struct Registries {
    pypi: Server,
    npm: Server,
    npmrc: PathBuf,
    token: String,
    dir: PathBuf,
}

impl Registries {
    fn start(dir: &Path) -> Registries {
        let pypi = Server::pypi(&dir.join("pypi"), PYPI_PASSWORD);
        let npm = Server::verdaccio(&dir.join("verdaccio"));
        let token = npm.verdaccio_token("ci", "npm-release-password");
        let home = dir.join("home");
        fs::create_dir_all(&home).unwrap();
        fs::write(
            home.join(".pypirc"),
            format!(
                "[distutils]\nindex-servers = local\n\n[local]\nrepository = {}\nusername = ci\n\
                 password = {PYPI_PASSWORD}\n",
                Self::url(&pypi)
            ),
        )
        .unwrap();
        let npmrc = dir.join("publisher.npmrc");
        fs::write(
            &npmrc,
            format!(
                "registry={url}\n//127.0.0.1:{port}/:_authToken=${{NODE_AUTH_TOKEN}}\n",
                url = Self::url(&npm),
                port = npm.port
            ),
        )
        .unwrap();
        Registries {
            pypi,
            npm,
            npmrc,
            token,
            dir: dir.to_path_buf(),
        }
    }

    fn url(server: &Server) -> String {
        format!("http://127.0.0.1:{}/", server.port)
    }

    fn pypi_index(&self) -> String {
        format!("{}simple/", Self::url(&self.pypi))
    }

    /// A HOME of its own (for ~/.pypirc), with cargo's and rustup's homes and the tools kept.
    fn env(&self) -> Vec<(&'static str, String)> {
        let home = std::env::var("HOME").unwrap_or_default();
        let keep = |name: &str, default: &str| {
            std::env::var(name).unwrap_or_else(|_| format!("{home}/{default}"))
        };
        vec![
            ("HOME", self.dir.join("home").display().to_string()),
            ("CARGO_HOME", keep("CARGO_HOME", ".cargo")),
            ("RUSTUP_HOME", keep("RUSTUP_HOME", ".rustup")),
            ("XTASK_TOOLS_DIR", common::tools_dir().display().to_string()),
            ("TWINE_REPOSITORY", "local".into()),
            ("NPM_CONFIG_USERCONFIG", self.npmrc.display().to_string()),
            ("NODE_AUTH_TOKEN", self.token.clone()),
        ]
    }

    /// The packages both registries store (verdaccio's own database left out).
    fn stored(&self) -> Vec<String> {
        let mut files = files_under(&self.dir.join("pypi/packages"));
        files.extend(files_under(&self.dir.join("verdaccio/storage")));
        files.retain(|f| !f.starts_with(".verdaccio"));
        files
    }
}

/// `cargo xtask …` as a user types it, in the repository, with a scratch dist directory.
fn xtask(args: &[&str], dist: &Path, env: &[(&'static str, String)]) -> Output {
    let mut cmd = common::driver(true);
    cmd.args(args)
        .env("XTASK_DIST_DIR", dist)
        .envs(env.iter().cloned());
    cmd.output().unwrap()
}

/// Each build job for each target, once, into `<artifacts>/<job>-<target>/` (the artifact's dist/).
fn build_artifacts(artifacts: &Path, targets: &[&str], scratch: &Path) {
    for target in targets {
        // The e2e test's compiler caches: cargo test runs the test binaries one after another, and e2e
        // (first) leaves them warm, so these builds mostly hit. Each target its own target directory.
        let sccache = match *target {
            AARCH64 => "target/e2e/aarch64-sccache",
            _ => "target/e2e/sccache",
        };
        let target_dir = scratch.join(format!("target-{target}"));
        let env = [
            ("XTASK_TARGET", target.to_string()),
            ("CARGO_TARGET_DIR", target_dir.display().to_string()),
            ("SCCACHE_DIR", root().join(sccache).display().to_string()),
            ("SCCACHE_SERVER_PORT", common::free_port().to_string()),
            ("SCCACHE_IDLE_TIMEOUT", "30".into()),
            (
                "XTASK_AARCH64_PYTHON",
                common::aarch64_python().display().to_string(),
            ),
        ];
        for job in ["build-runtime", "build-node", "build-wheels"] {
            let mut cmd = common::driver(false);
            cmd.arg(job)
                .env("XTASK_DIST_DIR", artifacts.join(format!("{job}-{target}")))
                .envs(env.iter().cloned());
            let printed = ok(&format!("{job} for {target}"), &run(&mut cmd));
            assert!(
                printed.contains("==> smoke: "),
                "{job} for {target} ran no smoke test"
            );
        }
    }
}

#[test]
fn a_release_is_published_to_real_registries_and_installs_as_users_install() {
    let targets: Vec<&str> = match common::aarch64_missing() {
        None => vec![X86_64, AARCH64],
        Some(why) => {
            if std::env::var("XTASK_REQUIRE_AARCH64_TEST").as_deref() == Ok("1")
                || std::env::var("CI").as_deref() == Ok("true")
            {
                panic!("the aarch64 release test is required here, but {why}");
            }
            common::skipped(&format!(
                "SKIPPED aarch64 part of the release test: {why}. `sudo .ci/aarch64-setup.sh` sets a \
                 Debian machine up."
            ));
            vec![X86_64]
        }
    };
    let only = targets.join(",");
    common::tools_installed();
    let scratch = root().join("target/release-test");
    let (artifacts, dist) = (scratch.join("artifacts"), scratch.join("dist"));
    let _ = fs::remove_dir_all(&dist);
    empty(&artifacts);
    build_artifacts(&artifacts, &targets, &scratch);
    let version = common::workspace_version();

    // A real release needs every shipped target: the Mac artifacts are missing here.
    let out = xtask(
        &["release", "--artifacts", &artifacts.display().to_string()],
        &dist,
        &[],
    );
    let printed = format!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("missing artifact build-wheels-aarch64-apple-darwin"),
        "{printed}"
    );
    assert!(!dist.join("release/release.json").exists());

    let tag = format!("v{version}");
    let args = [
        "release",
        "--artifacts",
        &artifacts.display().to_string(),
        "--targets",
        &only,
        "--tag",
        &tag,
    ];
    let printed = ok("cargo xtask release", &xtask(&args, &dist, &[]));
    assert!(
        printed.contains("a partial release (--targets): it leaves out"),
        "{printed}"
    );
    let release = dist.join("release");
    let sums = fs::read_to_string(release.join("runtime/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), targets.len(), "{sums}");

    let mut registries = Registries::start(&empty(&scratch.join("registries")));
    let env = registries.env();
    // A partial release is published only with its targets named again.
    let out = xtask(&["publish"], &dist, &env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    preflight_refuses_before_any_upload(&registries, &dist, &only);
    let dry = ok(
        "publish --dry-run",
        &xtask(&["publish", "--dry-run", "--targets", &only], &dist, &env),
    );
    assert!(
        dry.contains("[npm publish boxspec]") && dry.contains("NODE_AUTH_TOKEN='***'"),
        "{dry}"
    );
    assert!(registries.stored().is_empty(), "{:?}", registries.stored());

    let printed = interrupted_then_finished(&mut registries, &dist, &only);
    for secret in [PYPI_PASSWORD, registries.token.as_str()] {
        assert!(
            !printed.contains(secret),
            "a secret was printed:\n{printed}"
        );
    }

    let digest = fs::read_to_string(root().join("examples/box.digest")).unwrap();
    let example = root().join("examples/box.json").display().to_string();
    installs_as_users_install(
        &registries,
        &version,
        &targets,
        &scratch,
        digest.trim(),
        &example,
    );
    sdist_builds_and_installs(
        &dist.join("release"),
        &version,
        &scratch,
        digest.trim(),
        &example,
    );

    // Everything out: the same version again is refused before any upload.
    let before = registries.stored();
    let out = xtask(&["publish", "--targets", &only], &dist, &env);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(&format!(
            "nothing was uploaded: boxspec {version} is already out everywhere"
        )),
        "{printed}"
    );
    assert!(
        !printed.contains("==> twine upload") && !printed.contains("==> npm publish"),
        "{printed}"
    );
    assert_eq!(
        registries.stored(),
        before,
        "the refused publish changed a registry"
    );
}

/// `publish`'s output and exit code, as one text.
fn publish(dist: &Path, only: &str, env: &[(&'static str, String)]) -> (Option<i32>, String) {
    let out = xtask(&["publish", "--targets", only], dist, env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// One registry's credentials missing or wrong: publish says what to fix and uploads nothing
/// anywhere (the files both registries store are counted), also in a dry run.
fn preflight_refuses_before_any_upload(registries: &Registries, dist: &Path, only: &str) {
    let npm = Registries::url(&registries.npm);
    let pypi = Registries::url(&registries.pypi);
    let with = |name: &'static str, value: &str| {
        let mut env = registries.env();
        env.retain(|(n, _)| *n != name);
        env.push((name, value.to_string()));
        env
    };
    let cases = [
        (
            "npm has no login",
            with("NODE_AUTH_TOKEN", ""),
            format!("npm {npm}: not logged in (`npm whoami` says: ENEEDAUTH"),
            "set NODE_AUTH_TOKEN",
        ),
        (
            "PyPI refuses the password",
            with("TWINE_PASSWORD", "not-the-password"),
            format!("PyPI {pypi}: the credentials do not work (HTTP 403"),
            "check TWINE_USERNAME and TWINE_PASSWORD",
        ),
        (
            "twine's repository is not in ~/.pypirc",
            with("TWINE_REPOSITORY", "elsewhere"),
            "Missing 'elsewhere' section from ~/.pypirc".to_string(),
            "TWINE_REPOSITORY",
        ),
    ];
    for (what, env, problem, fix) in cases {
        for dry in [false, true] {
            let mut args = vec!["publish", "--targets", only];
            if dry {
                args.push("--dry-run");
            }
            let out = xtask(&args, dist, &env);
            let text = String::from_utf8_lossy(&out.stderr).to_string();
            assert_eq!(out.status.code(), Some(1), "{what}: {text}");
            assert!(
                text.contains("nothing was uploaded: the preflight found")
                    && text.contains(&problem)
                    && text.contains(fix),
                "{what}: {text}"
            );
            assert!(
                registries.stored().is_empty(),
                "{what}: uploaded {:?}",
                registries.stored()
            );
        }
    }
}

/// The npm registry killed (connections refused) once the first npm package is out: publish stops
/// half-way and says so; the registry back, publish again finishes the release, uploading only what
/// is not out.
fn interrupted_then_finished(registries: &mut Registries, dist: &Path, only: &str) -> String {
    let mut cmd = common::driver(true);
    cmd.args(["publish", "--targets", only])
        .env("XTASK_DIST_DIR", dist)
        .envs(registries.env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let storage = registries
        .dir
        .join("verdaccio/storage/boxspec-linux-x64-gnu");
    let first_out = || {
        (fs::read_dir(&storage).into_iter().flatten().flatten())
            .any(|e| e.file_name().to_string_lossy().ends_with(".tgz"))
    };
    let child = common::wait_for(child, std::time::Instant::now(), first_out);
    // Killed, not frozen: publish's next npm upload is refused.
    registries.npm.kill();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("publish stopped half-way. Uploaded now: boxspec-linux-x64-gnu@")
            && text.contains("Run `cargo xtask publish` again"),
        "{text}"
    );
    let stored = registries.stored();
    assert!(
        !stored.iter().any(|f| f.starts_with("boxspec/")),
        "the main npm package went out before a platform package: {stored:?}"
    );
    registries.npm.restart();
    let (code, again) = publish(dist, only, &registries.env());
    assert_eq!(code, Some(0), "{again}");
    assert!(
        again.contains("is partly out (a publish stopped half-way)"),
        "{again}"
    );
    assert!(
        !again.contains("==> npm publish boxspec-linux-x64-gnu"),
        "a package already out was published again: {again}"
    );
    format!("{text}{again}")
}

/// The sdist as pip builds it where no wheel fits: unpacked and built with the pinned maturin into a
/// wheel, installed in a fresh venv, computing the example's digest.
fn sdist_builds_and_installs(
    release: &Path,
    version: &str,
    scratch: &Path,
    digest: &str,
    example: &str,
) {
    let dir = empty(&scratch.join("sdist"));
    let sdist = release.join(format!("python/boxspec-{version}.tar.gz"));
    let tools_python = common::tool("maturin").with_file_name("python");
    let built = run(Command::new(&tools_python)
        .args([
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
        ])
        .args(["--disable-pip-version-check", "--no-cache-dir", "-w"])
        .arg(&dir)
        .arg(&sdist)
        .env("CARGO_TARGET_DIR", scratch.join("target-sdist"))
        // maturin is on the tools venv's PATH, as pip's build isolation would install it.
        .env(
            "PATH",
            format!(
                "{}:{}",
                tools_python.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir(&dir));
    ok("pip wheel from the sdist", &built);
    let wheel = (fs::read_dir(&dir).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("pip built no wheel from the sdist");
    let venv = dir.join("venv");
    ok(
        "python3 -m venv",
        &run(Command::new("python3").args(["-m", "venv"]).arg(&venv)),
    );
    let python = venv.join("bin/python");
    let installed = run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
        ])
        .arg(&wheel));
    ok("pip install the sdist's wheel", &installed);
    let py = "import boxspec, sys; print(boxspec.digest(open(sys.argv[1]).read()))";
    let out = ok(
        "python",
        &run(Command::new(&python)
            .args(["-c", py, example])
            .current_dir(&dir)),
    );
    assert_eq!(out.trim(), digest);
}

/// pip and npm in fresh directories, from the local registries only, as a user runs them.
fn installs_as_users_install(
    registries: &Registries,
    version: &str,
    targets: &[&str],
    scratch: &Path,
    digest: &str,
    example: &str,
) {
    let users = empty(&scratch.join("users"));
    let index = registries.pypi_index();
    let npm_registry = Registries::url(&registries.npm);
    let pip = |python: &Path, dir: &Path| {
        let mut cmd = Command::new(python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-cache-dir", "--index-url", &index])
        .current_dir(dir);
        cmd
    };
    // An empty user config and a fresh cache: nothing but the registry named here.
    let npm = |dir: &Path, extra: &[&str]| {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("user.npmrc"), "").unwrap();
        let mut cmd = Command::new("npm");
        cmd.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--registry",
            &npm_registry,
        ])
        .args(extra)
        .arg(format!("boxspec@{version}"))
        .env("NPM_CONFIG_USERCONFIG", dir.join("user.npmrc"))
        .env("npm_config_cache", dir.join("npm-cache"))
        .current_dir(dir);
        ok(&format!("npm install in {}", dir.display()), &run(&mut cmd));
    };
    let js = "console.log(process.arch, require('boxspec').digest(require('fs').readFileSync(process.argv[1], 'utf8')))";
    let py = "import boxspec, platform, sys; print(platform.machine(), boxspec.digest(open(sys.argv[1]).read()))";

    // x86_64: a fresh venv, and a fresh npm project.
    let venv = users.join("venv");
    let made = run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    ok("python3 -m venv", &made);
    let python = venv.join("bin/python");
    ok(
        "pip install",
        &run(pip(&python, &users).arg(format!("boxspec=={version}"))),
    );
    let out = ok(
        "python",
        &run(Command::new(&python)
            .args(["-c", py, example])
            .current_dir(&users)),
    );
    assert_eq!(out.trim(), format!("x86_64 {digest}"));
    let node_x64 = users.join("npm-x64");
    npm(&node_x64, &[]);
    assert!(node_x64.join("node_modules/boxspec-linux-x64-gnu").is_dir());
    let out = ok(
        "node",
        &run(Command::new("node")
            .args(["-e", js, example])
            .current_dir(&node_x64)),
    );
    assert_eq!(out.trim(), format!("x64 {digest}"));
    if targets.len() == 1 {
        assert!(
            !node_x64
                .join("node_modules/boxspec-linux-arm64-gnu")
                .exists()
        );
        return;
    }
    // Only the platform package that fits is installed.
    assert!(
        !node_x64
            .join("node_modules/boxspec-linux-arm64-gnu")
            .exists()
    );

    // aarch64: pip resolves the aarch64 wheel for that platform; npm the arm64 package for --cpu arm64;
    // both load under qemu.
    let site = users.join("aarch64-site");
    let resolved = pip(&python, &users)
        .args([
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_aarch64",
            "--python-version",
            "3.11",
        ])
        .arg("--target")
        .arg(&site)
        .arg(format!("boxspec=={version}"))
        .output()
        .unwrap();
    ok("pip install --platform manylinux2014_aarch64", &resolved);
    let sysroot = common::aarch64_python();
    let out = run(Command::new("qemu-aarch64")
        .arg("-L")
        .arg(&sysroot)
        .arg("-E")
        .arg(format!("PYTHONPATH={}", site.display()))
        .arg(sysroot.join("usr/bin/python3"))
        .args(["-c", py, example])
        .current_dir(&users));
    assert_eq!(
        ok("aarch64 python", &out).trim(),
        format!("aarch64 {digest}")
    );
    let node_arm64 = users.join("npm-arm64");
    npm(
        &node_arm64,
        &["--cpu", "arm64", "--os", "linux", "--libc", "glibc"],
    );
    assert!(
        node_arm64
            .join("node_modules/boxspec-linux-arm64-gnu")
            .is_dir()
    );
    assert!(
        !node_arm64
            .join("node_modules/boxspec-linux-x64-gnu")
            .exists()
    );
    let out = run(Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(common::tool("emulated-node"))
        .args(["-e", js, example])
        .current_dir(&node_arm64));
    assert_eq!(ok("aarch64 node", &out).trim(), format!("arm64 {digest}"));
}
