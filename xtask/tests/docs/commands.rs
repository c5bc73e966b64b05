//! The commands the docs show, as the driver runs them: `cargo xtask …` with its placeholders filled in,
//! its optional parts (`[--json]`) with and without, each alternative (`auto|off`) once, and `--dry-run`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common;

/// The build jobs: `<job>` in a doc stands for each, and so does "build jobs" in the flags table.
pub const BUILD_JOBS: [&str; 4] = ["build-runtime", "build-node", "build-wheels", "warm-caches"];

/// Jobs whose `--dry-run` needs an input the docs' placeholders cannot provide, and how the driver
/// refuses without it (a named error, not clap's usage message).
const NEEDS_INPUT: [(&str, &str); 2] = [
    ("release", "are not a release of"),
    ("publish", "release.json is missing"),
];

/// What a placeholder in a doc's command stands for here. `dir` is an empty scratch directory.
fn placeholder(token: &str, dir: &Path) -> Option<String> {
    let version = common::workspace_version();
    Some(match token {
        "TRIPLE" => "x86_64-unknown-linux-gnu".into(),
        "TRIPLES" | "T1,T2" => "x86_64-unknown-linux-gnu,aarch64-unknown-linux-gnu".into(),
        "DIR" => dir.display().to_string(),
        "P" => common::fixture().join("Cargo.toml").display().to_string(),
        "PATH" => stand_ins().join("stand-in-sccache").display().to_string(),
        "IMAGE" => "localhost/boxspec-docs-test".into(),
        "FILE" => dir.join("bench.json").display().to_string(),
        "GROUP" => "cache".into(),
        "N" => "1".into(),
        "TAG" | "vX.Y.Z" => format!("v{version}"),
        _ => return None,
    })
}

/// A directory of stand-ins, made once: `stand-in-sccache` answers `--version` as sccache does (for
/// `--sccache PATH`: the check is whether the flag is accepted, and `warm-caches` requires a working
/// cache), and `docker` and `podman`, which a dry run only looks for on PATH (they fail if run). Made by
/// a child: a file this process held open for writing could be inherited by a step forked meanwhile,
/// and executing it would fail with ETXTBSY.
pub fn stand_ins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::fresh_dir("docs", "stand-ins");
        let script = r#"mkdir -p "$1" && cd "$1" &&
            printf '#!/bin/sh\necho sccache 0.16.0\n' >stand-in-sccache &&
            printf '#!/bin/sh\necho "a docs stand-in: a --dry-run ran $0" >&2\nexit 1\n' >docker &&
            cp docker podman && chmod +x stand-in-sccache docker podman"#;
        let made = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(made.success(), "making {}", dir.display());
        dir
    })
}

/// A span or shell line that is a `cargo xtask` command: the words after `cargo xtask`, with leading
/// `NAME=value` assignments and a trailing `# comment` dropped.
pub fn xtask_words(text: &str) -> Option<Vec<String>> {
    let text = text.split(" #").next().unwrap();
    let mut words = text.split_whitespace().peekable();
    while words.peek().is_some_and(|w| is_assignment(w)) {
        words.next();
    }
    (words.next() == Some("cargo") && words.next() == Some("xtask"))
        .then(|| words.map(String::from).collect())
}

pub fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
    })
}

/// Every concrete command a doc's command stands for, or why it cannot be made concrete.
pub fn variants(words: &[String], dir: &Path) -> Result<Vec<Vec<String>>, String> {
    let mut out = vec![];
    for optional in [true, false] {
        let words = brackets(words, optional)?;
        let alternatives = (words.iter())
            .map(|w| match w.as_str() {
                "<job>" => BUILD_JOBS.len(),
                w if w.contains('|') => w.split('|').count(),
                _ => 1,
            })
            .max()
            .unwrap_or(1);
        for i in 0..alternatives {
            let concrete = (words.iter())
                .map(|w| concrete(w, i, dir))
                .collect::<Result<Vec<_>, _>>()?;
            if !out.contains(&concrete) {
                out.push(concrete);
            }
        }
    }
    Ok(out)
}

/// A command's words with what `required` (job → its required flags and placeholders, as the jobs
/// table shows them) says the job needs and the words lack: prose names a job (`cargo xtask release`)
/// where a command line needs its required flags.
pub fn complete(words: &[String], required: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = words.to_vec();
    let needed = words.first().and_then(|job| required.get(job));
    for pair in needed.map_or(&[][..], |n| &n[..]).chunks(2) {
        if !words.contains(&pair[0]) {
            out.extend(pair.iter().cloned());
        }
    }
    out
}

/// The words of a jobs-table entry (`check-cache --manifest-path P [--json]`) without its optional parts.
pub fn required_words(words: &[String]) -> Vec<String> {
    brackets(words, false).unwrap_or_default()
}

/// The words with `[optional]` groups kept (brackets dropped) or left out.
fn brackets(words: &[String], keep: bool) -> Result<Vec<String>, String> {
    let (mut out, mut depth) = (vec![], 0);
    for word in words {
        let opens = word.starts_with('[');
        let closes = word.ends_with(']');
        if opens {
            depth += 1;
        }
        if depth == 0 || keep {
            out.push(
                word.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            );
        }
        if closes {
            depth -= 1;
        }
        if depth < 0 {
            return Err(format!("unbalanced `]` at {word:?}"));
        }
    }
    match depth {
        0 => Ok(out),
        _ => Err("unbalanced `[`".into()),
    }
}

/// One word made concrete: the `i`-th alternative, a placeholder filled in, or the word itself.
fn concrete(word: &str, i: usize, dir: &Path) -> Result<String, String> {
    if word == "<job>" {
        return Ok(BUILD_JOBS[i % BUILD_JOBS.len()].into());
    }
    if word.contains('|') {
        let alts: Vec<&str> = word.split('|').collect();
        return Ok(alts[i % alts.len()].into());
    }
    if let Some(value) = placeholder(word, dir) {
        return Ok(value);
    }
    let unknown = word.contains('…')
        || word.starts_with('<')
        || (word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
    match unknown {
        true => Err(format!(
            "{word:?} is a placeholder the docs test does not know (commands.rs: placeholder)"
        )),
        false => Ok(word.into()),
    }
}

/// Runs a concrete command's `--dry-run` through the built driver; `Err` says what is wrong with it.
pub fn check(args: &[String], dir: &Path) -> Result<(), String> {
    let mut args = args.to_vec();
    let asks_for_help = args
        .iter()
        .any(|a| matches!(a.as_str(), "--help" | "-h" | "--version"));
    if !asks_for_help && !args.iter().any(|a| a == "--dry-run") {
        args.push("--dry-run".into());
    }
    let out = run(&args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    if code == Some(2) && stderr.contains("For more information, try '--help'") {
        return Err(format!(
            "the command line is refused (a flag or value that does not exist?):\n{stderr}"
        ));
    }
    if out.status.success() {
        return Ok(());
    }
    let job = args.first().map(String::as_str).unwrap_or("");
    match NEEDS_INPUT.iter().find(|(j, _)| *j == job) {
        Some((_, needle)) if stderr.contains(needle) => Ok(()),
        _ => Err(format!("--dry-run exited {code:?}:\n{stderr}")),
    }
}

fn run(args: &[String], dir: &Path) -> Output {
    // A cache directory and port of its own: the cache decision's write probe of a directory is not
    // safe for runs side by side (one removes the probe file the other just wrote).
    let port = common::free_port();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        [stand_ins().to_path_buf()]
            .into_iter()
            .chain(std::env::split_paths(&path)),
    );
    let mut cmd = common::driver(false);
    cmd.args(args)
        .env("PATH", path.unwrap())
        .env("XTASK_DIST_DIR", dir.join("dist"))
        .env("SCCACHE_DIR", dir.join(format!("sccache-{port}")))
        .env("SCCACHE_SERVER_PORT", port.to_string());
    cmd.output().unwrap()
}

#[test]
fn commands_are_made_concrete() {
    let dir = Path::new("/d");
    let words = |s: &str| xtask_words(s).unwrap();
    assert_eq!(
        words("RUSTC_WRAPPER= cargo xtask doctor   # comment"),
        ["doctor"]
    );
    assert_eq!(xtask_words("cargo test --workspace"), None);
    let v = variants(&words("cargo xtask doctor [--json]"), dir).unwrap();
    assert_eq!(v, [vec!["doctor", "--json"], vec!["doctor"]]);
    let v = variants(
        &words("cargo xtask build-wheels --via maturin|cibuildwheel"),
        dir,
    )
    .unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[1], ["build-wheels", "--via", "cibuildwheel"]);
    let v = variants(&words("cargo xtask release --artifacts DIR"), dir).unwrap();
    assert_eq!(v, [vec!["release", "--artifacts", "/d"]]);
    assert!(variants(&words("cargo xtask build-node --target SOMETHING"), dir).is_err());
    assert!(variants(&words("cargo xtask build-node …"), dir).is_err());
}
