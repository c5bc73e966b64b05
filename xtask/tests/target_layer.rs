//! The target layer: what `cargo xtask target-layer` (warm-caches' last step) leaves in `target/`, that
//! it is smaller than the target it was made from and saves work, and that a stale or partial layer
//! restored into a changed workspace still gives the right artifact: cargo's fingerprints decide.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;
use common::{Run, driver, fresh_dir, tools_installed};

/// A bin crate `app` and, outside its workspace, the dependency `greeting` it uses, which uses `words`.
struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    fn new(name: &str) -> Workspace {
        tools_installed();
        let dir = fresh_dir("layer", name);
        let ws = Workspace { dir };
        ws.write(
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\ngreeting = { path = \"../greeting\" }\n\n[workspace]\n",
        );
        ws.write(
            "app/src/main.rs",
            "fn main() {\n    println!(\"{}\", greeting::hello());\n}\n",
        );
        ws.write(
            "words/Cargo.toml",
            "[package]\nname = \"words\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        ws.write("words/src/lib.rs", "pub const HELLO: &str = \"hello\";\n");
        ws.greeting("1.0.0");
        ws
    }

    /// The dependency at `version`, with a `loud` feature.
    fn greeting(&self, version: &str) {
        self.write(
            "greeting/Cargo.toml",
            &format!(
                "[package]\nname = \"greeting\"\nversion = \"{version}\"\nedition = \"2021\"\n\n\
                 [dependencies]\nwords = {{ path = \"../words\" }}\n\n[features]\nloud = []\n"
            ),
        );
        self.write(
            "greeting/src/lib.rs",
            "pub fn hello() -> String {\n    let text = format!(\"{} {}\", words::HELLO, env!(\"CARGO_PKG_VERSION\"));\n    \
             if cfg!(feature = \"loud\") { text.to_uppercase() } else { text }\n}\n",
        );
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn target(&self) -> PathBuf {
        self.dir.join("target")
    }

    fn xtask(&self, job: &str) -> Run {
        let mut cmd = driver(false);
        cmd.arg(job)
            .arg("--manifest-path")
            .arg(self.dir.join("app/Cargo.toml"));
        cmd.env("XTASK_CACHE", "off")
            .env("CARGO_TARGET_DIR", self.target())
            .env("XTASK_DIST_DIR", self.dir.join("dist"));
        let start = Instant::now();
        let run = Run::finish(cmd.output().unwrap(), start);
        assert!(run.ok, "{job}: {}", run.stderr);
        run
    }

    /// Builds the app and says what it prints.
    fn build_and_run(&self) -> String {
        self.build_and_run_compiling().0
    }

    /// Builds the app and says what it prints and which packages cargo compiled for it.
    fn build_and_run_compiling(&self) -> (String, Vec<String>) {
        let run = self.xtask("check-cache");
        let compiled = (run.stderr.lines())
            .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_string)
            .collect();
        let binary = self.target().join("x86_64-unknown-linux-gnu/release/app");
        let out = Command::new(binary).output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            compiled,
        )
    }

    /// Units of `name` in the target-triple profile's `deps`.
    fn units_of(&self, name: &str) -> usize {
        let deps = self.target().join("x86_64-unknown-linux-gnu/release/deps");
        fs::read_dir(deps)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let file = e.file_name().to_string_lossy().into_owned();
                        file.starts_with(&format!("lib{name}-"))
                            || file.starts_with(&format!("{name}-"))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// The layer as CI would save and restore it (a copy that keeps modification times).
    fn save_layer(&self) -> PathBuf {
        let saved = self.dir.join("saved-layer");
        copy(&self.target(), &saved);
        saved
    }

    fn restore_layer(&self, saved: &Path) {
        let _ = fs::remove_dir_all(self.target());
        copy(saved, &self.target());
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Bytes of the files under `dir`.
fn size_of(dir: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    (text.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("du {}: {text}", dir.display()))
}

fn copy(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_layer_keeps_dependencies_and_drops_the_workspace() {
    let ws = Workspace::new("prune");
    assert_eq!(ws.build_and_run(), "hello 1.0.0");
    assert!(ws.units_of("app") > 0 && ws.units_of("greeting") > 0);
    let run = ws.xtask("target-layer");
    assert!(run.stdout.contains("target layer: "), "{}", run.stdout);
    assert_eq!(
        ws.units_of("app"),
        0,
        "the workspace crate's units are not part of the layer"
    );
    assert!(
        ws.units_of("greeting") > 0,
        "the dependency's units are the layer"
    );
    assert!(
        !ws.target()
            .join("x86_64-unknown-linux-gnu/release/app")
            .exists()
    );
    // Restored as is, it builds the same artifact again.
    let saved = ws.save_layer();
    ws.restore_layer(&saved);
    assert_eq!(ws.build_and_run(), "hello 1.0.0");
}

/// The layer is smaller than the target it was made from, and saves work: restored from an older key
/// (another version of a dependency, another feature set), only what changed rebuilds. Stale or only
/// part of one, it never gives a wrong artifact: cargo's fingerprints decide.
#[test]
fn a_stale_or_partial_layer_still_gives_the_right_artifact() {
    let ws = Workspace::new("stale");
    let (printed, cold) = ws.build_and_run_compiling();
    assert_eq!(printed, "hello 1.0.0");
    assert_eq!(
        cold,
        ["words", "greeting", "app"],
        "a cold build compiles all"
    );
    let full = size_of(&ws.target());
    ws.xtask("target-layer");
    let layer = size_of(&ws.target());
    assert!(
        layer < full,
        "the layer ({layer} bytes) is not smaller than the target ({full} bytes)"
    );
    let saved = ws.save_layer();

    ws.greeting("1.1.0");
    ws.restore_layer(&saved);
    let (printed, rebuilt) = ws.build_and_run_compiling();
    assert_eq!(printed, "hello 1.1.0", "a new dependency version");
    assert_eq!(rebuilt, ["greeting", "app"], "only what changed rebuilds");

    let manifest = fs::read_to_string(ws.dir.join("app/Cargo.toml")).unwrap();
    ws.write(
        "app/Cargo.toml",
        &manifest.replace(
            "greeting = { path = \"../greeting\" }",
            "greeting = { path = \"../greeting\", features = [\"loud\"] }",
        ),
    );
    ws.restore_layer(&saved);
    assert_eq!(ws.build_and_run(), "HELLO 1.1.0", "a new feature");

    // Partial: half of the layer's files lost (an interrupted save or restore).
    ws.restore_layer(&saved);
    let deps = ws.target().join("x86_64-unknown-linux-gnu/release/deps");
    for (i, entry) in fs::read_dir(&deps).unwrap().flatten().enumerate() {
        if i % 2 == 0 {
            fs::remove_file(entry.path()).unwrap();
        }
    }
    assert_eq!(ws.build_and_run(), "HELLO 1.1.0", "a partial layer");
}
