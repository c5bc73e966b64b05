//! The house limits, as a test (rust-analyzer keeps its tidy checks as tests): no production file in
//! xtask/src over 400 lines (the lines before its `#[cfg(test)]` module; a `tests.rs` is all test), no
//! function there over 60 lines.

use std::fs;
use std::path::{Path, PathBuf};

const FILE_LINES: usize = 400;
const FN_LINES: usize = 60;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => rust_files(&path, out),
            false if path.extension().is_some_and(|e| e == "rs") => out.push(path),
            false => {}
        }
    }
}

/// A line that opens a function with a body, and its indentation.
fn fn_start(line: &str) -> Option<&str> {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    let body = ["pub(crate) ", "pub(super) ", "pub "]
        .iter()
        .find_map(|p| body.strip_prefix(p))
        .unwrap_or(body);
    let body = body.strip_prefix("const ").unwrap_or(body);
    (body.starts_with("fn ") && !line.trim_end().ends_with(';')).then_some(indent)
}

/// Every file and function of `text` over the limits, as messages.
fn oversized(name: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let production = match name.ends_with("/tests.rs") {
        true => 0,
        false => (lines.iter())
            .position(|l| l.trim() == "#[cfg(test)]")
            .unwrap_or(lines.len()),
    };
    let mut out = Vec::new();
    if production > FILE_LINES {
        out.push(format!(
            "{name}: {production} production lines (at most {FILE_LINES})"
        ));
    }
    for (i, line) in lines[..production].iter().enumerate() {
        let Some(indent) = fn_start(line) else {
            continue;
        };
        let close = format!("{indent}}}");
        let end = (i + 1..lines.len())
            .find(|&j| lines[j] == close)
            .unwrap_or(i);
        if end + 1 - i > FN_LINES {
            let what = line.trim();
            out.push(format!(
                "{name}:{}: `{what}` is {} lines (at most {FN_LINES})",
                i + 1,
                end + 1 - i
            ));
        }
    }
    out
}

#[test]
fn no_production_file_over_400_lines_and_no_function_over_60() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let name = file.strip_prefix(&src).unwrap().display().to_string();
        problems.extend(oversized(
            &format!("xtask/src/{name}"),
            &fs::read_to_string(&file).unwrap(),
        ));
    }
    assert!(
        problems.is_empty(),
        "over the house limits:\n  {}",
        problems.join("\n  ")
    );
}

/// The checker finds what it must (a long function, a long file) and not a test module's lines.
#[test]
fn the_checker_sees_long_functions_and_files() {
    let long_fn = format!("pub fn f() {{\n{}}}\n", "    x();\n".repeat(60));
    assert_eq!(oversized("a.rs", &long_fn).len(), 1);
    let short = format!("fn f() {{\n{}}}\n", "    x();\n".repeat(58));
    assert!(oversized("a.rs", &short).is_empty());
    let long_file = "const A: u8 = 1;\n".repeat(401);
    assert_eq!(oversized("a.rs", &long_file).len(), 1);
    let tested = format!("#[cfg(test)]\n{long_file}{long_fn}");
    assert!(oversized("a.rs", &tested).is_empty());
}
