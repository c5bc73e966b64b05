//! The docs (README.md and docs/*.md) checked against the code, so they cannot drift: every
//! `cargo xtask …` command they show parses and plans (`--dry-run` through the built driver), every
//! other shell command they show is one a script or test runs, the jobs and flags tables match the
//! command line, links and anchors resolve, repository paths exist, and the module map in
//! docs/how-it-works.md names exactly the files under xtask/src. Fast: nothing is built or installed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

mod commands;
#[path = "../common/mod.rs"]
mod common;
mod markdown;

use commands::BUILD_JOBS;
use markdown::Doc;

/// Shell commands the docs show that are not `cargo xtask`, each with the file that runs it and the
/// text there that runs it.
const RUN_ELSEWHERE: [(&str, &str, &str); 2] = [
    (
        "cargo test --workspace",
        ".ci/run",
        "\ncargo test --workspace",
    ),
    (".ci/run", ".github/workflows/test.yml", "run: bash .ci/run"),
];

fn root() -> PathBuf {
    common::root()
}

fn scratch(name: &str) -> PathBuf {
    let dir = common::fresh_dir("docs", name);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command a doc shows: which doc, the command, and whether it is a fenced shell line (else a span).
struct Shown {
    doc: PathBuf,
    command: String,
    shell: bool,
}

/// Every command a doc shows: fenced shell lines, and code spans that are `cargo xtask …`.
fn shown_commands() -> Vec<Shown> {
    let mut out = vec![];
    for doc in Doc::all(&root()) {
        let (shell, _) = doc.split();
        let lines = (shell.into_iter())
            .map(|l| l.split(" #").next().unwrap().trim().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| (l, true));
        let spans = (doc.code_spans().into_iter())
            .filter(|s| commands::xtask_words(s).is_some())
            .map(|s| (s, false));
        for (command, shell) in lines.chain(spans) {
            out.push(Shown {
                doc: doc.path.clone(),
                command,
                shell,
            });
        }
    }
    out
}

/// Checks each concrete command on a few threads; returns what failed.
fn check_all(commands: Vec<(String, Vec<String>)>, dir: &Path) -> Vec<String> {
    let chunks: Vec<_> = commands
        .chunks(commands.len().div_ceil(4).max(1))
        .map(<[_]>::to_vec)
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (chunks.into_iter())
            .map(|chunk| {
                s.spawn(move || {
                    (chunk.into_iter())
                        .filter_map(|(origin, args)| {
                            let err = commands::check(&args, dir).err()?;
                            Some(format!("{origin}: `cargo xtask {}`: {err}", args.join(" ")))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn every_cargo_xtask_command_in_the_docs_parses_and_plans() {
    let dir = scratch("commands");
    let required = required_flags();
    let (mut concrete, mut failures) = (vec![], vec![]);
    for Shown {
        doc,
        command,
        shell,
    } in shown_commands()
    {
        let Some(words) = commands::xtask_words(&command) else {
            continue;
        };
        if words.is_empty() {
            continue; // `cargo xtask` alone names the driver
        }
        // A span in prose may name a job without its required flags; a shell line is typed as shown.
        let words = match shell {
            true => words,
            false => commands::complete(&words, &required),
        };
        let origin = format!("{}: `{command}`", doc.display());
        match commands::variants(&words, &dir) {
            Ok(all) => concrete.extend(all.into_iter().map(|args| (origin.clone(), args))),
            Err(why) => failures.push(format!("{origin}: {why}")),
        }
    }
    assert!(concrete.len() >= 20, "too few commands found: {concrete:?}");
    failures.extend(check_all(concrete, &dir));
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn every_other_shell_command_in_the_docs_is_run_by_a_script_or_test() {
    let (mut failures, mut used) = (vec![], BTreeSet::new());
    for Shown {
        doc,
        command,
        shell,
    } in shown_commands()
    {
        if commands::xtask_words(&command).is_some() || !shell {
            continue;
        }
        if let Some(assignments) = command.strip_prefix("export ") {
            failures.extend(unknown_variables(&doc, assignments));
            continue;
        }
        match RUN_ELSEWHERE.iter().find(|(shown, _, _)| *shown == command) {
            Some((shown, file, text)) => {
                used.insert(*shown);
                let body = fs::read_to_string(root().join(file)).unwrap_or_default();
                if !body.contains(text) {
                    failures.push(format!(
                        "{}: `{command}`: {file} no longer runs it ({text:?})",
                        doc.display()
                    ));
                }
            }
            None => failures.push(format!(
                "{}: `{command}` is run by nothing the docs test knows (RUN_ELSEWHERE)",
                doc.display()
            )),
        }
    }
    for (shown, _, _) in RUN_ELSEWHERE {
        if !used.contains(shown) {
            failures.push(format!("RUN_ELSEWHERE: no doc shows `{shown}` any more"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `export NAME=… NAME=…`: each name must be one the driver or its tests read.
fn unknown_variables(doc: &Path, assignments: &str) -> Vec<String> {
    let code = source_text();
    (assignments.split_whitespace())
        .filter(|w| commands::is_assignment(w))
        .map(|w| w.split('=').next().unwrap())
        .filter(|name| !code.contains(name))
        .map(|name| {
            format!(
                "{}: `export {name}=…`: nothing in xtask/src or xtask/tests reads it",
                doc.display()
            )
        })
        .collect()
}

/// The text of every file under xtask/src and xtask/tests.
fn source_text() -> String {
    let mut text = String::new();
    for file in files(&root().join("xtask/src"))
        .iter()
        .chain(&files(&root().join("xtask/tests")))
    {
        if file.extension().is_some_and(|e| e == "rs") {
            text.push_str(&fs::read_to_string(file).unwrap());
        }
    }
    text
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => out.extend(files(&path)),
            false => out.push(path),
        }
    }
    out.sort();
    out
}

/// The jobs `cargo xtask --help` lists.
fn cli_jobs() -> BTreeSet<String> {
    let out = common::driver(false).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands = help.split("Commands:").nth(1).expect("a Commands: section");
    (commands.lines().skip(1))
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|job| *job != "help")
        .map(String::from)
        .collect()
}

fn readme() -> Doc {
    Doc::all(&root()).into_iter().next().unwrap()
}

/// The first word of each row's first code span.
fn first_words(cells: &[String]) -> Vec<String> {
    (markdown::code_spans(cells.first().map_or("", String::as_str))
        .0
        .iter())
    .filter_map(|s| s.split_whitespace().next().map(String::from))
    .collect()
}

#[test]
fn the_jobs_table_lists_every_job_and_only_jobs() {
    let table: BTreeSet<String> = readme()
        .table("Jobs")
        .iter()
        .flat_map(|r| first_words(r))
        .collect();
    let cli = cli_jobs();
    assert!(cli.len() >= 10, "{cli:?}");
    assert_eq!(
        table, cli,
        "README's jobs table (left) and `cargo xtask --help` (right)"
    );
}

/// Each jobs-table entry (`doctor [--json]`) is a command line the driver accepts, with and without its
/// optional parts.
#[test]
fn the_jobs_table_entries_parse_and_plan() {
    let dir = scratch("jobs");
    let (mut concrete, mut failures) = (vec![], vec![]);
    for row in readme().table("Jobs") {
        let Some(entry) = markdown::code_spans(&row[0]).0.into_iter().next() else {
            continue;
        };
        let words = commands::xtask_words(&format!("cargo xtask {entry}")).unwrap();
        match commands::variants(&words, &dir) {
            Ok(v) => concrete.extend(
                v.into_iter()
                    .map(|a| (format!("README jobs: `{entry}`"), a)),
            ),
            Err(why) => failures.push(format!("README jobs: `{entry}`: {why}")),
        }
    }
    failures.extend(check_all(concrete, &dir));
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The jobs a flags-table row names: `all`, `build jobs`, and jobs in code spans.
fn row_jobs(cell: &str, all: &BTreeSet<String>) -> Vec<String> {
    let mut jobs: Vec<String> = markdown::code_spans(cell).0;
    if cell.contains("build jobs") {
        jobs.extend(BUILD_JOBS.map(String::from));
    }
    if cell.trim() == "all" {
        jobs.extend(all.iter().cloned());
    }
    jobs
}

/// Each job's required flags with their placeholders, from README's jobs table
/// (`check-cache --manifest-path P` → `check-cache: [--manifest-path, P]`).
fn required_flags() -> BTreeMap<String, Vec<String>> {
    (readme().table("Jobs").iter())
        .filter_map(|row| markdown::code_spans(&row[0]).0.into_iter().next())
        .map(|span| {
            let words: Vec<String> = span.split_whitespace().map(String::from).collect();
            (words[0].clone(), commands::required_words(&words[1..]))
        })
        .collect()
}

/// Flags that need another to be accepted at all, as the flags table says in words.
fn needs(flag: &str) -> &'static str {
    match flag {
        "--image" => "--container podman",
        "--container" => "--image IMAGE",
        "--toolchain" => "--container podman --image IMAGE",
        _ => "",
    }
}

#[test]
fn the_flags_table_matches_the_command_line() {
    let dir = scratch("flags");
    let all = cli_jobs();
    let required = required_flags();
    let (mut concrete, mut failures) = (vec![], vec![]);
    for row in readme().table("Flags") {
        let [flags, env, jobs, ..] = &row[..] else {
            panic!("a flags row of four cells: {row:?}")
        };
        let jobs = row_jobs(jobs, &all);
        assert!(!jobs.is_empty(), "no jobs in {row:?}");
        for flag in markdown::code_spans(flags).0 {
            let name = flag.split_whitespace().next().unwrap().to_string();
            for job in &jobs {
                let line = format!("cargo xtask {job} {flag} {}", needs(&name));
                let words = commands::complete(&commands::xtask_words(&line).unwrap(), &required);
                match commands::variants(&words, &dir) {
                    Ok(v) => concrete.extend(
                        v.into_iter()
                            .map(|a| (format!("README flags: `{flag}`"), a)),
                    ),
                    Err(why) => failures.push(format!("README flags: `{flag}`: {why}")),
                }
            }
            failures.extend(env_in_help(&name, env, &jobs));
        }
    }
    failures.extend(check_all(concrete, &dir));
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The flags table's environment variable is the one `cargo xtask <job> --help` shows for that flag.
fn env_in_help(flag: &str, env: &str, jobs: &[String]) -> Vec<String> {
    let Some(var) = markdown::code_spans(env).0.into_iter().next() else {
        return vec![];
    };
    let mut failures = vec![];
    for job in jobs {
        let out = common::driver(false)
            .args([job, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let block: String = (help.lines())
            .skip_while(|l| !l.trim_start().starts_with(&format!("{flag} ")))
            .take_while(|l| {
                !l.starts_with("  -") || l.trim_start().starts_with(&format!("{flag} "))
            })
            .collect::<Vec<_>>()
            .join("\n");
        if !block.contains(&format!("[env: {var}=")) {
            failures.push(format!(
                "README flags: `{flag}` on {job}: its help does not say `[env: {var}=…]`:\n{block}"
            ));
        }
    }
    failures
}

#[test]
fn links_and_anchors_in_the_docs_resolve() {
    let root = root();
    let docs = Doc::all(&root);
    let mut failures = vec![];
    for doc in &docs {
        let (_, paragraphs) = doc.split();
        for target in paragraphs.iter().flat_map(|p| markdown::links(p)) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = match path {
                "" => doc.path.clone(),
                p => normalise(&doc.path.parent().unwrap().join(p)),
            };
            if !root.join(&file).exists() {
                failures.push(format!(
                    "{}: link to {target}: no {}",
                    doc.path.display(),
                    file.display()
                ));
                continue;
            }
            let Some(page) = docs.iter().find(|d| d.path == file) else {
                continue;
            };
            if !anchor.is_empty() && !page.anchors().contains(anchor) {
                failures.push(format!(
                    "{}: link to {target}: {} has no heading #{anchor} (it has {:?})",
                    doc.path.display(),
                    file.display(),
                    page.anchors()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `docs/../README.md` as `README.md`.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Paths the docs name that are made by a build or an install, not kept in the repository.
const NOT_IN_THE_REPOSITORY: [&str; 1] = ["sdks/node/node_modules"];

#[test]
fn repository_paths_named_in_the_docs_exist() {
    let root = root();
    let tops = [
        ".ci/",
        ".github/",
        "crates/",
        "sdks/",
        "xtask/",
        "docs/",
        "examples/",
    ];
    let mut failures = vec![];
    for doc in Doc::all(&root) {
        for span in doc.code_spans() {
            let path = span.trim_end_matches('/');
            let looks_like_a_path = tops.iter().any(|t| span.starts_with(t)) && !span.contains(' ');
            if looks_like_a_path
                && !NOT_IN_THE_REPOSITORY.contains(&path)
                && !root.join(path).exists()
            {
                failures.push(format!(
                    "{}: `{span}` is not in the repository",
                    doc.path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The module map's first column, and the module paths the page names anywhere (`cache/`, `plan.rs`).
fn module_map() -> (BTreeSet<String>, BTreeSet<String>) {
    let page = Doc::all(&root())
        .into_iter()
        .find(|d| d.path == Path::new("docs/how-it-works.md"))
        .unwrap();
    let map = (page.table("Module map").iter())
        .flat_map(|row| markdown::code_spans(&row[0]).0)
        .collect();
    // Relative to xtask/src; a path from the repository's root (`xtask/tests/…`) is another test's.
    let is_module = |s: &str| {
        !s.starts_with("xtask/")
            && (s.ends_with(".rs") || s.ends_with('/'))
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_/.".contains(c))
    };
    let named = page
        .code_spans()
        .into_iter()
        .filter(|s| is_module(s))
        .collect();
    (map, named)
}

#[test]
fn the_module_map_names_exactly_the_files_under_xtask_src() {
    let src = root().join("xtask/src");
    let files: BTreeSet<String> = (files(&src).iter())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    let (map, named) = module_map();
    let missing: Vec<_> = files.difference(&map).collect();
    let extra: Vec<_> = map.difference(&files).collect();
    let gone: Vec<_> = named.iter().filter(|m| !src.join(m).exists()).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && gone.is_empty(),
        "docs/how-it-works.md's module map against xtask/src:\n  files it does not name: {missing:?}\n  \
         rows for files that do not exist: {extra:?}\n  module paths it names that do not exist: {gone:?}"
    );
}

/// `process::kill_group` and the like: a Rust path the how-it-works page names is a function there.
#[test]
fn functions_named_in_how_it_works_exist() {
    let src = root().join("xtask/src");
    let page = Doc::all(&root())
        .into_iter()
        .find(|d| d.path == Path::new("docs/how-it-works.md"))
        .unwrap();
    let mut failures = vec![];
    for span in page.code_spans() {
        let Some((module, function)) = span.split_once("::") else {
            continue;
        };
        let file = [
            src.join(format!("{module}.rs")),
            src.join(module).join("mod.rs"),
        ]
        .into_iter()
        .find(|f| f.exists());
        let has = file.is_some_and(|f| {
            fs::read_to_string(f)
                .unwrap()
                .contains(&format!("fn {function}("))
        });
        if !has {
            failures.push(span);
        }
    }
    assert!(
        failures.is_empty(),
        "docs/how-it-works.md names functions that do not exist: {failures:?}"
    );
}
