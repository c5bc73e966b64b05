//! What the installs drop so CI's cache entries come back in seconds: the file count, not the bytes, is
//! what a restore pays for. zig's lib holds libc headers and sources for every OS and architecture
//! (20 786 files); the shipped Linux glibc targets use a sixth of them. node never loads the type
//! declarations, source maps and docs that are half of node_modules.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{NODE_DROPPED, NODE_KEPT_WHOLE, ZIG_LIB_KEEP};

/// In `ziglang/` once its lib is trimmed: the linker wrapper reinstalls ziglang in full when a link fails
/// while it is there (a trimmed part may have been needed after all).
pub const ZIG_TRIMMED_MARKER: &str = "xtask-trimmed.txt";

/// In node_modules once trimmed: the rule it was trimmed by (the host probe compares it).
pub const NODE_TRIMMED_MARKER: &str = ".xtask-trimmed.txt";

/// The rule a trimmed node_modules records.
pub fn node_trim_rule() -> String {
    format!(
        "dropped: *{}\nkept whole: {}\n",
        NODE_DROPPED.join(" *"),
        NODE_KEPT_WHOLE.join(" ")
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trim {
    /// zig's lib in the venv (found when the step runs: the venv's Python version names the path).
    ZigLib { venv: PathBuf },
    /// The type declarations, maps and docs in a node_modules.
    NodeModules { dir: PathBuf },
}

impl Trim {
    pub fn describe(&self) -> String {
        match self {
            Trim::ZigLib { venv } => format!(
                "keep only {} of ziglang/lib in {}",
                ZIG_LIB_KEEP.join(", "),
                venv.display()
            ),
            Trim::NodeModules { dir } => format!(
                "remove *{} from {} (not in {})",
                NODE_DROPPED.join(", *"),
                dir.display(),
                NODE_KEPT_WHOLE.join(", ")
            ),
        }
    }

    /// Removes what the rule drops; says how many files went.
    pub fn apply(&self) -> Result<String> {
        let removed = match self {
            Trim::ZigLib { venv } => trim_zig(venv)?,
            Trim::NodeModules { dir } => trim_node_modules(dir)?,
        };
        Ok(format!("trimmed {removed} files"))
    }
}

/// `site-packages/ziglang` in `venv`, if ziglang is installed there.
fn ziglang_dir(venv: &Path) -> Option<PathBuf> {
    let lib = fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten()
        .map(|python| python.path().join("site-packages/ziglang"))
        .find(|dir| dir.join("lib").is_dir())
}

fn trim_zig(venv: &Path) -> Result<usize> {
    let ziglang = ziglang_dir(venv).context("ziglang is not installed in the tools venv")?;
    let lib = ziglang.join("lib");
    let keep: Vec<PathBuf> = ZIG_LIB_KEEP.iter().map(|k| lib.join(k)).collect();
    let removed = remove_unkept(&lib, &keep)?;
    fs::write(
        ziglang.join(ZIG_TRIMMED_MARKER),
        ZIG_LIB_KEEP.join("\n") + "\n",
    )?;
    Ok(removed)
}

/// Removes every directory under `dir` that neither is nor holds a `keep` path (files directly in a
/// directory that holds one stay).
fn remove_unkept(dir: &Path, keep: &[PathBuf]) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if !path.is_dir() || keep.contains(&path) {
            continue;
        }
        removed += match keep.iter().any(|k| k.starts_with(&path)) {
            true => remove_unkept(&path, keep)?,
            false => remove_counted(&path)?,
        };
    }
    Ok(removed)
}

fn trim_node_modules(dir: &Path) -> Result<usize> {
    let removed = remove_dropped(dir)?;
    fs::write(dir.join(NODE_TRIMMED_MARKER), node_trim_rule())?;
    Ok(removed)
}

fn remove_dropped(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if kind.is_dir() && !NODE_KEPT_WHOLE.contains(&name.as_str()) {
            removed += remove_dropped(&path)?;
        } else if kind.is_file() && NODE_DROPPED.iter().any(|ext| name.ends_with(ext)) {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes a directory tree; returns how many files it held.
fn remove_counted(dir: &Path) -> Result<usize> {
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            match entry.file_type()?.is_dir() {
                true => stack.push(entry.path()),
                false => files += 1,
            }
        }
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[&str]) {
        let _ = fs::remove_dir_all(root);
        for f in files {
            let path = root.join(f);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
    }

    fn files_under(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                match e.file_type().unwrap().is_dir() {
                    true => stack.push(e.path()),
                    false => out.push(e.path().strip_prefix(root).unwrap().display().to_string()),
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn zig_keeps_the_linux_glibc_parts_and_the_top_files() {
        let venv = std::env::temp_dir().join(format!("xtask-trim-zig-{}", std::process::id()));
        let z = "lib/python3.11/site-packages/ziglang";
        let files = [
            "zig",
            "lib/c.zig",
            "lib/std/std.zig",
            "lib/libc/glibc/abilists",
            "lib/libc/include/generic-glibc/stdio.h",
            "lib/libc/include/x86-linux-gnu/bits/a.h",
            "lib/libc/include/any-darwin-any/stdio.h",
            "lib/libc/include/generic-musl/stdio.h",
            "lib/libc/musl/src/a.c",
            "lib/libcxx/include/vector",
            "lib/docs/index.html",
        ]
        .map(|f| format!("{z}/{f}"));
        tree(&venv, &files.each_ref().map(String::as_str));
        let said = Trim::ZigLib { venv: venv.clone() }.apply().unwrap();
        assert_eq!(said, "trimmed 5 files");
        let left = files_under(&venv.join(z));
        assert_eq!(
            left,
            [
                "lib/c.zig",
                "lib/libc/glibc/abilists",
                "lib/libc/include/generic-glibc/stdio.h",
                "lib/libc/include/x86-linux-gnu/bits/a.h",
                "lib/std/std.zig",
                ZIG_TRIMMED_MARKER,
                "zig",
            ]
        );
        fs::remove_dir_all(&venv).unwrap();
    }

    #[test]
    fn node_modules_lose_declarations_maps_and_docs_but_not_code_or_typescript() {
        let dir = std::env::temp_dir().join(format!("xtask-trim-node-{}", std::process::id()));
        tree(
            &dir,
            &[
                "es-toolkit/dist/a.js",
                "es-toolkit/dist/a.mjs",
                "es-toolkit/dist/a.d.ts",
                "es-toolkit/dist/a.d.mts",
                "es-toolkit/README.md",
                "@napi-rs/cli/dist/cli.js.map",
                "@napi-rs/cli/package.json",
                "typescript/lib/lib.es5.d.ts",
                "typescript/README.md",
            ],
        );
        let said = Trim::NodeModules { dir: dir.clone() }.apply().unwrap();
        assert_eq!(said, "trimmed 4 files");
        assert_eq!(
            files_under(&dir),
            [
                NODE_TRIMMED_MARKER,
                "@napi-rs/cli/package.json",
                "es-toolkit/dist/a.js",
                "es-toolkit/dist/a.mjs",
                "typescript/README.md",
                "typescript/lib/lib.es5.d.ts",
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
