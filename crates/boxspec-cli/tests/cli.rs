use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_boxspec");

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/box.json")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run boxspec")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Writes `contents` to a per-test file under cargo's scratch dir.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn validate_ok() {
    let file = example();
    let file = file.to_str().unwrap();
    let o = run(&["validate", file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("ok: {file}\n"));
}

#[test]
fn validate_invalid_spec() {
    let file = temp_file("bad-cpus.json", r#"{"image":"a","cpus":0}"#);
    let file = file.to_str().unwrap();
    let o = run(&["validate", file]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: {file}: cpus: must be between 1 and 64, got 0\n")
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn validate_invalid_json() {
    let file = temp_file("bad-json.json", "{\"image\": ");
    let file = file.to_str().unwrap();
    let o = run(&["validate", file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("error: {file}: invalid JSON at line 1 column ")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unreadable_file() {
    let o = run(&["validate", "/nonexistent/box.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: /nonexistent/box.json: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn digest_matches_committed() {
    let o = run(&["digest", example().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = include_str!("../../../examples/box.digest");
    assert_eq!(stdout(&o), want);
}

#[test]
fn normalize_prints_canonical_json() {
    let o = run(&["normalize", example().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // examples/box.json written out by hand in canonical form: compact, the Spec's field order, memory in
    // bytes (2G), env by name, mounts by target, ports by (host, protocol, container), defaults filled.
    let canonical = concat!(
        r#"{"image":"ghcr.io/example/webapp:1.4.2","cpus":2,"memory":2147483648,"#,
        r#""env":{"APP_PORT":"8080","DATABASE_URL":"postgres://app@db:5432/app","RUST_LOG":"info"},"#,
        r#""mounts":[{"source":"./config","target":"/etc/app","readonly":true},"#,
        r#"{"source":"./data","target":"/var/lib/app","readonly":false}],"#,
        r#""ports":[{"host":5353,"container":53,"protocol":"udp"},"#,
        r#"{"host":8080,"container":8080,"protocol":"tcp"}]}"#,
    );
    assert_eq!(stdout(&o), format!("{canonical}\n"));
}

#[test]
fn version() {
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "boxspec 0.1.0\n");
}

#[test]
fn help() {
    for flag in ["--help", "-h"] {
        let o = run(&[flag]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).starts_with("usage: boxspec"));
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate", "x"],
        &["validate"],
        &["digest", "a", "b"],
        &["--nope"],
    ];
    for args in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "args: {args:?}");
        assert!(stderr(&o).starts_with("usage: boxspec"), "args: {args:?}");
        assert!(stdout(&o).is_empty());
    }
}
