//! Policy checks on `.github/workflows/*.yml`.
//!
//! The build workflows (`build-*.yml`, `warm-caches.yml`) must stay thin: set-up actions pinned by
//! commit, then `cargo xtask <job>` and nothing else. Only `warm-caches.yml` may save the compiler
//! cache, and tag (release) builds may neither restore it nor compile through it.
//! No set-up action keeps a cache of its own (setup-node's npm cache, setup-python's pip cache), and
//! the pinned actionlint and zizmor (offline) accept every workflow.
//!
//! No YAML crate: `Yaml::parse` is a small block-style reader, enough for these files (maps,
//! `- ` sequences, `|`/`>` block scalars, `[a, b]` flow lists, quotes and trailing comments).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// A minimal YAML reader.

#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Scalar(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Yaml::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Yaml::str)
    }

    fn entries(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(entries) => entries,
            _ => &[],
        }
    }

    fn items(&self) -> &[Yaml] {
        match self {
            Yaml::Seq(items) => items,
            _ => &[],
        }
    }

    fn parse(text: &str) -> Yaml {
        let lines: Vec<Line> = text
            .lines()
            .map(|raw| Line {
                indent: raw.len() - raw.trim_start().len(),
                text: raw.trim().to_string(),
                raw: raw.to_string(),
            })
            .collect();
        let mut parser = Parser { lines, pos: 0 };
        parser.skip_blank();
        if parser.pos >= parser.lines.len() {
            return Yaml::Map(Vec::new());
        }
        let indent = parser.lines[parser.pos].indent;
        parser.block(indent)
    }
}

#[derive(Debug, Clone)]
struct Line {
    indent: usize,
    text: String,
    raw: String,
}

struct Parser {
    lines: Vec<Line>,
    pos: usize,
}

impl Parser {
    fn skip_blank(&mut self) {
        while self.pos < self.lines.len() {
            let t = &self.lines[self.pos].text;
            if t.is_empty() || t.starts_with('#') || t == "---" {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<&Line> {
        self.skip_blank();
        self.lines.get(self.pos)
    }

    fn block(&mut self, indent: usize) -> Yaml {
        match self.peek() {
            Some(l) if l.indent == indent && is_seq_item(&l.text) => self.seq(indent),
            Some(l) if l.indent == indent => self.map(indent),
            _ => Yaml::Scalar(String::new()),
        }
    }

    fn seq(&mut self, indent: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent != indent || !is_seq_item(&l.text) {
                break;
            }
            let rest = l.text[1..].trim_start().to_string();
            let rest_indent = indent + (l.text.len() - rest.len());
            if rest.is_empty() {
                self.pos += 1;
                let child = match self.peek() {
                    Some(n) if n.indent > indent => {
                        let i = n.indent;
                        self.block(i)
                    }
                    _ => Yaml::Scalar(String::new()),
                };
                items.push(child);
            } else if split_key(&rest).is_some() || is_seq_item(&rest) {
                // `- key: value` opens a map whose keys sit where `key` starts: reread in place.
                let line = &mut self.lines[self.pos];
                line.indent = rest_indent;
                line.text = rest;
                items.push(self.block(rest_indent));
            } else {
                self.pos += 1;
                items.push(scalar(&rest));
            }
        }
        Yaml::Seq(items)
    }

    fn map(&mut self, indent: usize) -> Yaml {
        let mut entries = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent != indent || is_seq_item(&l.text) {
                break;
            }
            let text = l.text.clone();
            let Some((key, value)) = split_key(&text) else {
                panic!("unsupported YAML line (expected `key: value`): {:?}", l.raw);
            };
            self.pos += 1;
            let value = strip_comment(value);
            let node = if value.is_empty() {
                match self.peek() {
                    Some(n) if n.indent > indent => {
                        let i = n.indent;
                        self.block(i)
                    }
                    // A sequence may sit at its key's own indent.
                    Some(n) if n.indent == indent && is_seq_item(&n.text) => self.seq(indent),
                    _ => Yaml::Scalar(String::new()),
                }
            } else if value.starts_with('|') || value.starts_with('>') {
                self.block_scalar(indent, value.starts_with('>'))
            } else {
                scalar(value)
            };
            entries.push((unquote(key).to_string(), node));
        }
        Yaml::Map(entries)
    }

    /// The raw lines indented deeper than the key (blank lines included), dedented.
    fn block_scalar(&mut self, key_indent: usize, folded: bool) -> Yaml {
        let start = self.pos;
        while self.pos < self.lines.len() {
            let l = &self.lines[self.pos];
            if l.text.is_empty() || l.indent > key_indent {
                self.pos += 1;
            } else {
                break;
            }
        }
        // Trailing blank lines belong to whatever follows.
        while self.pos > start && self.lines[self.pos - 1].text.is_empty() {
            self.pos -= 1;
        }
        let body = &self.lines[start..self.pos];
        let min = body
            .iter()
            .filter(|l| !l.text.is_empty())
            .map(|l| l.indent)
            .min()
            .unwrap_or(0);
        let lines: Vec<&str> = body
            .iter()
            .map(|l| if l.text.is_empty() { "" } else { &l.raw[min..] })
            .collect();
        let sep = if folded { " " } else { "\n" };
        Yaml::Scalar(lines.join(sep).trim_end().to_string())
    }
}

fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: value` or `key:`; a key is a plain or quoted word, never a flow collection or a quote-led scalar.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let (key, value) = match text.find(": ") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None if text.ends_with(':') => (&text[..text.len() - 1], ""),
        None => return None,
    };
    let bare = unquote(key);
    let plain = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && (bare == key || key.len() == bare.len() + 2);
    plain.then_some((key, value.trim()))
}

/// Drops a trailing ` # comment` that is not inside quotes.
fn strip_comment(value: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                return value[..i].trim_end();
            }
            _ => {}
        }
    }
    value.trim_end()
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

fn scalar(value: &str) -> Yaml {
    let value = strip_comment(value);
    if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return Yaml::Seq(
            inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Yaml::Scalar(unquote(s).into()))
                .collect(),
        );
    }
    Yaml::Scalar(unquote(value).to_string())
}

// ---------------------------------------------------------------------------------------------
// The workflows.

struct Workflow {
    file: String,
    text: String,
    doc: Yaml,
}

impl Workflow {
    /// A build workflow only sets up and calls the driver.
    fn is_build(&self) -> bool {
        self.file.starts_with("build-") || self.file == "warm-caches.yml"
    }

    /// `on:` as a map of trigger name -> config (`on: push` and `on: [a, b]` included).
    fn triggers(&self) -> Vec<(String, Yaml)> {
        match self.doc.get("on") {
            Some(Yaml::Scalar(s)) => vec![(s.clone(), Yaml::Scalar(String::new()))],
            Some(Yaml::Seq(items)) => items
                .iter()
                .filter_map(Yaml::str)
                .map(|s| (s.to_string(), Yaml::Scalar(String::new())))
                .collect(),
            Some(map @ Yaml::Map(_)) => map.entries().to_vec(),
            None => panic!("{}: no `on:`", self.file),
        }
    }

    /// Builds tags: on a tag push, or called (release.yml calls the build workflows on `v*` tags).
    fn builds_tags(&self) -> bool {
        self.has_tag_trigger() || self.triggers().iter().any(|(t, _)| t == "workflow_call")
    }

    fn has_tag_trigger(&self) -> bool {
        self.triggers()
            .iter()
            .any(|(name, cfg)| name == "push" && cfg.get("tags").is_some())
    }

    fn jobs(&self) -> &[(String, Yaml)] {
        self.doc
            .get("jobs")
            .unwrap_or_else(|| panic!("{}: no `jobs:`", self.file))
            .entries()
    }

    fn steps(&self) -> Vec<(&str, &Yaml, &Yaml)> {
        self.jobs()
            .iter()
            .flat_map(|(id, job)| {
                job.get("steps")
                    .map(Yaml::items)
                    .unwrap_or_default()
                    .iter()
                    .map(move |s| (id.as_str(), job, s))
            })
            .collect()
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn workflows() -> Vec<Workflow> {
    let dir = root().join(".github/workflows");
    let mut out: Vec<Workflow> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            Workflow {
                file: p.file_name().unwrap().to_string_lossy().into_owned(),
                doc: Yaml::parse(&text),
                text,
            }
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    let names: Vec<&str> = out.iter().map(|w| w.file.as_str()).collect();
    for want in [
        "build-runtime.yml",
        "build-node.yml",
        "build-wheels.yml",
        "warm-caches.yml",
        "test.yml",
    ] {
        assert!(
            names.contains(&want),
            "missing .github/workflows/{want} (have {names:?})"
        );
    }
    out
}

fn step_label(file: &str, job: &str, step: &Yaml) -> String {
    let what = step
        .get_str("name")
        .or(step.get_str("uses"))
        .or(step.get_str("run"))
        .unwrap_or("?");
    format!("{file} job `{job}` step `{what}`")
}

/// `owner/repo[/path]` of a `uses:`, and its ref.
fn action(uses: &str) -> (&str, &str) {
    uses.split_once('@').unwrap_or((uses, ""))
}

fn is_full_sha(r: &str) -> bool {
    r.len() == 40
        && r.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

const SETUP_ACTIONS: &[&str] = &[
    "actions/checkout",
    "actions/setup-python",
    "actions/setup-node",
    "dtolnay/rust-toolchain",
    "actions/cache/restore",
    "actions/cache/save",
    "actions/upload-artifact",
];

const NOT_ON_TAGS: &str = "!startsWith(github.ref, 'refs/tags/')";
const OFF_ON_TAGS: &str = "startsWith(github.ref, 'refs/tags/') && 'off'";
const READ_ON_PULL_REQUESTS: &str = "github.event_name == 'pull_request' && 'read'";

/// `${{ expr }}` -> `expr`, whitespace collapsed.
fn expr(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("${{")
        .and_then(|s| s.strip_suffix("}}"))
        .unwrap_or(s);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// (a) Build workflows: set-up actions pinned by SHA, then `cargo xtask <job>` only.

#[test]
fn build_workflows_only_set_up_and_call_the_driver() {
    let mut errors = Vec::new();
    for wf in workflows().iter().filter(|w| w.is_build()) {
        let steps = wf.steps();
        assert!(!steps.is_empty(), "{}: no steps parsed", wf.file);
        let mut driver_calls = 0;
        for (job, _, step) in steps {
            let label = step_label(&wf.file, job, step);
            match (step.get_str("uses"), step.get("run")) {
                (Some(_), Some(_)) | (None, None) => {
                    errors.push(format!("{label}: needs exactly one of uses/run"))
                }
                (Some(uses), None) => {
                    let (name, r) = action(uses);
                    if !SETUP_ACTIONS.contains(&name) {
                        errors.push(format!(
                            "{label}: `{uses}` is not an allowed set-up action {SETUP_ACTIONS:?}"
                        ));
                    }
                    if !is_full_sha(r) {
                        errors.push(format!(
                            "{label}: `{uses}` is not pinned by a 40-hex commit SHA"
                        ));
                    }
                }
                (None, Some(run)) => {
                    let run = run.str().unwrap_or_default().trim();
                    let words: Vec<&str> = run.split_whitespace().collect();
                    let shell = ['\n', ';', '&', '|', '$', '`', '>', '<', '(', ')', '\\'];
                    if run.contains(shell) || words.len() < 3 || words[..2] != ["cargo", "xtask"] {
                        errors.push(format!(
                            "{label}: `run:` must be one `cargo xtask <job> …` line, got {run:?}"
                        ));
                    } else {
                        driver_calls += 1;
                    }
                }
            }
            for key in ["shell", "working-directory"] {
                if step.get(key).is_some() {
                    errors.push(format!(
                        "{label}: `{key}:` is not allowed in a build workflow"
                    ));
                }
            }
        }
        if driver_calls == 0 {
            errors.push(format!("{}: never runs `cargo xtask`", wf.file));
        }
        // Cache wiring is the driver's business: no wrapper set up from YAML.
        for (i, line) in wf.text.lines().enumerate() {
            if line.contains("RUSTC_WRAPPER") || line.contains("SCCACHE_DIR") {
                errors.push(format!(
                    "{}:{}: sccache wiring belongs to the driver: {line:?}",
                    wf.file,
                    i + 1
                ));
            }
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn every_action_is_pinned_by_sha_with_its_version_in_a_comment() {
    let mut errors = Vec::new();
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            if let Some(uses) = step.get_str("uses") {
                if uses.starts_with("./") || uses.starts_with("$/") || uses.starts_with("docker://")
                {
                    continue;
                }
                if !is_full_sha(action(uses).1) {
                    errors.push(format!(
                        "{}: `{uses}` is not pinned by a 40-hex SHA",
                        step_label(&wf.file, job, step)
                    ));
                }
            }
        }
        for (i, line) in wf.text.lines().enumerate() {
            let t = line.trim_start().trim_start_matches("- ");
            let local = t.starts_with("uses: ./") || t.starts_with("uses: $/");
            if t.starts_with("uses:") && !local && !line.contains(" # ") {
                errors.push(format!(
                    "{}:{}: pinned action without a `# vX` comment: {line:?}",
                    wf.file,
                    i + 1
                ));
            }
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// (b) Only warm-caches.yml saves, and never for a pull request.

#[test]
fn only_warm_caches_saves_the_cache() {
    let mut errors = Vec::new();
    let mut saves_in_warm = 0;
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            let Some(uses) = step.get_str("uses") else {
                continue;
            };
            let (name, _) = action(uses);
            let saves = name == "actions/cache/save" || name == "actions/cache";
            if saves && wf.file != "warm-caches.yml" {
                errors.push(format!(
                    "{}: `{name}` saves the cache; only warm-caches.yml may",
                    step_label(&wf.file, job, step)
                ));
            }
            if saves && wf.file == "warm-caches.yml" {
                saves_in_warm += 1;
            }
        }
        if wf.file == "warm-caches.yml" {
            let triggers = wf.triggers();
            let names: Vec<&str> = triggers.iter().map(|(n, _)| n.as_str()).collect();
            for forbidden in ["pull_request", "pull_request_target"] {
                if names.contains(&forbidden) {
                    errors.push(format!("warm-caches.yml: must not run on `{forbidden}`"));
                }
            }
            for wanted in ["push", "schedule", "workflow_dispatch"] {
                if !names.contains(&wanted) {
                    errors.push(format!(
                        "warm-caches.yml: missing trigger `{wanted}` (has {names:?})"
                    ));
                }
            }
            if wf.has_tag_trigger() {
                errors.push("warm-caches.yml: must not run on tags".into());
            }
            let size = wf
                .doc
                .get("env")
                .and_then(|e| e.get_str("SCCACHE_CACHE_SIZE"))
                .or_else(|| {
                    wf.jobs().iter().find_map(|(_, j)| {
                        j.get("env").and_then(|e| e.get_str("SCCACHE_CACHE_SIZE"))
                    })
                });
            if size.is_none_or(str::is_empty) {
                errors.push("warm-caches.yml: set SCCACHE_CACHE_SIZE so saved entries stay within the quota".into());
            }
        }
    }
    if saves_in_warm == 0 {
        errors.push("warm-caches.yml: never saves the cache (actions/cache/save)".into());
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// (c) Tag builds neither restore the cache nor compile through it.

#[test]
fn tag_builds_cannot_use_the_cache() {
    let mut errors = Vec::new();
    let mut tagged = 0;
    for wf in workflows()
        .iter()
        .filter(|w| w.is_build() && w.builds_tags())
    {
        tagged += 1;
        let wf_env = wf.doc.get("env");
        for (job, job_doc, step) in wf.steps() {
            let label = step_label(&wf.file, job, step);
            if step
                .get_str("uses")
                .is_some_and(|u| action(u).0.starts_with("actions/cache"))
            {
                let cond = expr(step.get_str("if").unwrap_or_default());
                if !cond.contains(NOT_ON_TAGS) || cond.contains("||") {
                    errors.push(format!(
                        "{label}: needs `if: ${{{{ {NOT_ON_TAGS} }}}}`, has {cond:?}"
                    ));
                }
            }
            let Some(run) = step.get_str("run") else {
                continue;
            };
            let words: Vec<&str> = run.split_whitespace().collect();
            let mut flag = None;
            for (i, w) in words.iter().enumerate() {
                if *w == "--cache" {
                    flag = Some(words.get(i + 1).copied().unwrap_or(""));
                } else if let Some(v) = w.strip_prefix("--cache=") {
                    flag = Some(v);
                }
            }
            match flag {
                Some("off") => continue,
                Some(other) => {
                    errors.push(format!(
                        "{label}: `--cache {other}` would override the tag guard"
                    ));
                    continue;
                }
                None => {}
            }
            // The nearest XTASK_CACHE wins: step, then job, then workflow.
            let env = [step.get("env"), job_doc.get("env"), wf_env]
                .into_iter()
                .flatten()
                .find_map(|e| e.get_str("XTASK_CACHE"));
            match env.map(expr) {
                Some(e) if e.starts_with(OFF_ON_TAGS) => {}
                other => errors.push(format!(
                    "{label}: on tags must run with `--cache off` (e.g. XTASK_CACHE: ${{{{ {OFF_ON_TAGS} || 'auto' }}}}), has {other:?}"
                )),
            }
            // A pull request is untrusted code: it may read the shared cache, never write it.
            let builds_pull_requests = wf.triggers().iter().any(|(t, _)| t == "pull_request");
            match env.map(expr) {
                Some(e) if !builds_pull_requests || e.contains(READ_ON_PULL_REQUESTS) => {}
                other => errors.push(format!(
                    "{label}: pull requests must build with `--cache read` ({READ_ON_PULL_REQUESTS}), has {other:?}"
                )),
            }
        }
    }
    assert!(
        tagged >= 3,
        "expected the three build-*.yml workflows to build tags, found {tagged}"
    );
    // setup-node and setup-python keep caches of their own, restored regardless of the compiler-cache
    // guard above and saved by whichever workflow ran first: none may be on, in any workflow (zizmor's
    // cache-poisoning audit, and only warm-caches.yml saves). setup-node v5 turns its npm cache on when
    // `package-manager-cache` is omitted, so it must say `false`.
    let mut setup_node = 0;
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            let Some(uses) = step.get_str("uses") else {
                continue;
            };
            let name = action(uses).0;
            if name != "actions/setup-node" && name != "actions/setup-python" {
                continue;
            }
            let label = step_label(&wf.file, job, step);
            let with = step.get("with");
            if with.and_then(|w| w.get("cache")).is_some() {
                errors.push(format!(
                    "{label}: `cache:` turns on {name}'s own cache; tag builds would restore it"
                ));
            }
            if name == "actions/setup-node" {
                setup_node += 1;
                let pm = with.and_then(|w| w.get_str("package-manager-cache"));
                if pm != Some("false") {
                    errors.push(format!(
                        "{label}: needs `package-manager-cache: false` (omitted, setup-node v5 caches npm), has {pm:?}"
                    ));
                }
            }
        }
    }
    assert!(
        setup_node > 0,
        "no actions/setup-node step parsed: the check above checked nothing"
    );
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The cache key: one shape everywhere, so saves and restores meet.

#[test]
fn cache_steps_share_one_key() {
    let hash = "hashFiles('rust-toolchain.toml', 'Cargo.lock', 'xtask/src/tools.rs', 'sdks/node/package-lock.json')";
    // The target layer is valid only for one OS, target triple, toolchain, lockfile and set of tool pins.
    let prefix =
        format!("build-caches-${{{{ runner.os }}}}-${{{{ matrix.target }}}}-${{{{ {hash} }}}}-");
    let key = format!("{prefix}${{{{ github.run_id }}}}");
    let mut errors = Vec::new();
    let mut restores = 0;
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            let Some(uses) = step.get_str("uses") else {
                continue;
            };
            let label = step_label(&wf.file, job, step);
            let with = step.get("with");
            let input = |k: &str| {
                with.and_then(|w| w.get_str(k))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            if !action(uses).0.starts_with("actions/cache") {
                continue;
            }
            if input("path") != "~/.cache/sccache\ntarget\nsdks/node/node_modules" {
                errors.push(format!(
                    "{label}: path must be ~/.cache/sccache, target and sdks/node/node_modules, is {:?}",
                    input("path")
                ));
            }
            if action(uses).0 == "actions/cache/restore" {
                restores += 1;
                if input("key") != key {
                    errors.push(format!(
                        "{label}: key must be {key:?}, is {:?}",
                        input("key")
                    ));
                }
                if input("restore-keys") != prefix {
                    errors.push(format!(
                        "{label}: restore-keys must be {prefix:?}, is {:?}",
                        input("restore-keys")
                    ));
                }
            }
        }
    }
    assert!(
        restores >= 4,
        "expected a restore step in each build workflow, found {restores}"
    );
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn workflows_are_least_privilege_and_cancel_superseded_runs() {
    let mut errors = Vec::new();
    for wf in workflows() {
        let perms = wf.doc.get("permissions");
        if perms
            != Some(&Yaml::Map(vec![(
                "contents".into(),
                Yaml::Scalar("read".into()),
            )]))
        {
            errors.push(format!(
                "{}: needs top-level `permissions: contents: read`, has {perms:?}",
                wf.file
            ));
        }
        for (job, j) in wf.jobs() {
            if wf.file == "release.yml" && job == "publish" {
                continue; // release_publishes_from_the_build_workflows_artifacts checks it
            }
            if let Some(p) = j.get("permissions") {
                errors.push(format!(
                    "{} job `{job}`: widens permissions: {p:?}",
                    wf.file
                ));
            }
        }
        let conc = wf.doc.get("concurrency");
        let group = conc
            .and_then(|c| c.get_str("group"))
            .map(expr)
            .unwrap_or_default();
        // A release cancelled half-way would leave a version half published.
        let cancels = (wf.file != "release.yml").to_string();
        if !(group.contains("github.workflow") && group.contains("github.ref"))
            || conc.and_then(|c| c.get_str("cancel-in-progress")) != Some(cancels.as_str())
        {
            errors.push(format!(
                "{}: needs concurrency keyed on workflow+ref with cancel-in-progress: true",
                wf.file
            ));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

/// Every build workflow (and the warm job) runs for each platform the SDKs ship, on its own hardware, and
/// tells the driver which through `XTASK_TARGET` (`run:` stays `cargo xtask <job>`).
#[test]
fn every_platform_builds_on_its_own_runner() {
    let wanted = [
        ("ubuntu-latest", "x86_64-unknown-linux-gnu"),
        ("ubuntu-24.04-arm", "aarch64-unknown-linux-gnu"),
        ("macos-15-intel", "x86_64-apple-darwin"),
        ("macos-14", "aarch64-apple-darwin"),
    ];
    let mut checked = 0;
    for wf in workflows()
        .iter()
        .filter(|w| w.is_build() || w.file == "warm-caches.yml")
    {
        for (job, doc) in wf.jobs() {
            let label = format!("{} job `{job}`", wf.file);
            let include = doc
                .get("strategy")
                .and_then(|s| s.get("matrix"))
                .and_then(|m| m.get("include"))
                .map(|i| i.items().to_vec())
                .unwrap_or_default();
            let legs: Vec<(&str, &str)> = include
                .iter()
                .filter_map(|leg| Some((leg.get_str("os")?, leg.get_str("target")?)))
                .collect();
            assert_eq!(legs, wanted, "{label}");
            assert_eq!(
                doc.get_str("runs-on").map(expr),
                Some("matrix.os".into()),
                "{label}"
            );
            let target = doc.get("env").and_then(|e| e.get_str("XTASK_TARGET"));
            assert_eq!(target.map(expr), Some("matrix.target".into()), "{label}");
            checked += 1;
        }
    }
    assert_eq!(
        checked, 4,
        "build-runtime, build-node, build-wheels and warm-caches"
    );
}

#[test]
fn build_workflows_upload_dist() {
    for wf in workflows().iter().filter(|w| w.file.starts_with("build-")) {
        let uploads = wf.steps().into_iter().any(|(_, _, s)| {
            s.get_str("uses")
                .is_some_and(|u| action(u).0 == "actions/upload-artifact")
                && s.get("with")
                    .and_then(|w| w.get_str("path"))
                    .is_some_and(|p| p.trim_end_matches('/') == "dist")
        });
        assert!(
            uploads,
            "{}: must upload dist/ with actions/upload-artifact",
            wf.file
        );
    }
}

/// A `v*` tag builds through the build workflows themselves (called: one definition serves both, with the
/// cache off on tags as they decide), and one job that needs them all downloads their artifacts, each in
/// a folder named `<job>-<target>` as they upload it, then only calls `cargo xtask release` and
/// `cargo xtask publish`. That job alone may mint the OIDC token trusted publishing needs.
#[test]
fn release_publishes_from_the_build_workflows_artifacts() {
    let all = workflows();
    let wf = (all.iter().find(|w| w.file == "release.yml")).expect(".github/workflows/release.yml");
    let triggers: Vec<String> = wf.triggers().into_iter().map(|(t, _)| t).collect();
    assert_eq!(triggers, ["push"], "release.yml runs on tag pushes only");
    assert!(wf.has_tag_trigger());
    let mut errors = Vec::new();
    let builds = ["build-runtime", "build-node", "build-wheels"];
    for build in builds {
        let job = wf.jobs().iter().find(|(id, _)| id == build).map(|(_, j)| j);
        let uses = job.and_then(|j| j.get_str("uses"));
        if uses != Some(&format!("$/.github/workflows/{build}.yml")) {
            errors.push(format!(
                "release.yml: job `{build}` must call {build}.yml, has {uses:?}"
            ));
        }
        let called = all
            .iter()
            .find(|w| w.file == format!("{build}.yml"))
            .unwrap();
        if !called.triggers().iter().any(|(t, _)| t == "workflow_call") || called.has_tag_trigger()
        {
            errors.push(format!(
                "{build}.yml: tags build only through release.yml (workflow_call, no tag trigger)"
            ));
        }
        // release reads `<job>-<target>` folders: the name each build uploads its dist/ under.
        let upload = (called.steps().into_iter())
            .find(|(_, _, s)| {
                s.get_str("uses")
                    .is_some_and(|u| action(u).0 == "actions/upload-artifact")
            })
            .and_then(|(_, _, s)| s.get("with").and_then(|w| w.get_str("name")).map(expr));
        let want = format!("{build}-${{{{ matrix.target }}}}");
        if upload.as_deref() != Some(want.as_str()) {
            errors.push(format!(
                "{build}.yml: upload-artifact name must be {want:?}, has {upload:?}"
            ));
        }
    }
    let (_, publish) = (wf.jobs().iter())
        .find(|(_, j)| j.get("steps").is_some())
        .expect("release.yml: a job with steps");
    let needs: Vec<&str> = publish
        .get("needs")
        .map(Yaml::items)
        .unwrap_or_default()
        .iter()
        .filter_map(Yaml::str)
        .collect();
    if needs != builds {
        errors.push(format!(
            "release.yml: the publishing job must need {builds:?}, needs {needs:?}"
        ));
    }
    let perms = publish.get("permissions");
    let want = Yaml::Map(vec![
        ("contents".into(), Yaml::Scalar("read".into())),
        ("id-token".into(), Yaml::Scalar("write".into())),
    ]);
    if perms != Some(&want) {
        errors.push(format!("release.yml: the publishing job needs exactly contents: read and id-token: write, has {perms:?}"));
    }
    let env = |k: &str| {
        publish
            .get("env")
            .and_then(|e| e.get_str(k))
            .map(str::to_string)
    };
    if env("NPM_CONFIG_PROVENANCE").as_deref() != Some("true") {
        errors.push(
            "release.yml: npm publishes with provenance (NPM_CONFIG_PROVENANCE: 'true')".into(),
        );
    }
    let mut runs = Vec::new();
    for step in publish.get("steps").map(Yaml::items).unwrap_or_default() {
        let label = step_label(&wf.file, "publish", step);
        match (step.get_str("uses"), step.get_str("run")) {
            (Some(uses), None) => {
                let (name, r) = action(uses);
                let download = name == "actions/download-artifact";
                if !(SETUP_ACTIONS.contains(&name) || download)
                    || name.starts_with("actions/cache")
                    || !is_full_sha(r)
                {
                    errors.push(format!("{label}: `{uses}` is not a pinned set-up action"));
                }
                let with = |k: &str| step.get("with").and_then(|w| w.get_str(k));
                if download
                    && (with("path") != Some("artifacts")
                        || with("name").is_some()
                        || with("pattern").is_some())
                {
                    errors.push(format!(
                        "{label}: download every artifact into artifacts/ (one folder each)"
                    ));
                }
            }
            (None, Some(run)) => runs.push(run.trim().to_string()),
            _ => errors.push(format!("{label}: needs exactly one of uses/run")),
        }
    }
    assert_eq!(
        runs,
        [
            "cargo xtask release --artifacts artifacts",
            "cargo xtask publish"
        ]
    );
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn rust_toolchain_input_matches_rust_toolchain_toml() {
    let toml = fs::read_to_string(root().join("rust-toolchain.toml")).unwrap();
    let channel = toml
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("channel").map(|v| {
                v.trim_start_matches([' ', '='])
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
        })
        .expect("rust-toolchain.toml: no channel");
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            if step
                .get_str("uses")
                .is_some_and(|u| action(u).0 == "dtolnay/rust-toolchain")
            {
                let t = step.get("with").and_then(|w| w.get_str("toolchain"));
                assert_eq!(
                    t,
                    Some(channel.as_str()),
                    "{}",
                    step_label(&wf.file, job, step)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (d) The pinned actionlint and zizmor accept every workflow.

/// `cargo xtask lint-workflows`, once per test binary: it installs the pinned tools into the tools
/// venv (two installs into one venv at once would race), then runs actionlint.
fn lint_workflows() -> &'static Output {
    static OUT: OnceLock<Output> = OnceLock::new();
    OUT.get_or_init(|| {
        Command::new(env!("CARGO"))
            .args(["xtask", "lint-workflows"])
            .current_dir(root())
            .env_remove("GITHUB_ACTIONS")
            // The caller's zizmor settings (a config, a token) must not change the verdict.
            .env_remove("ZIZMOR_CONFIG")
            .env_remove("ZIZMOR_GITHUB_TOKEN")
            .output()
            .expect("run cargo xtask lint-workflows")
    })
}

/// `cargo xtask lint-workflows` as typed: the pinned actionlint, then zizmor at its default persona,
/// offline, with `--strict-collection` (an unreadable workflow fails instead of being skipped). Any
/// finding fails (zizmor exits 10-14); an intended exception is a `# zizmor: ignore[rule]` comment with
/// its reason beside it.
#[test]
fn actionlint_and_zizmor_pass() {
    let out = lint_workflows();
    assert!(
        out.status.success(),
        "cargo xtask lint-workflows failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The reader itself.

#[test]
fn reader_handles_the_shapes_used_here() {
    let doc = Yaml::parse(
        "name: x # comment\non:\n  push:\n    branches: [main]\n    tags: ['v*']\n  schedule:\n    - cron: '1 2 * * 3'\njobs:\n  a:\n    steps:\n      - name: one\n        uses: o/r@abc # v1\n        with:\n          k: |\n            l1\n\n            l2\n      - run: |\n          echo a\n          echo b\n      - run: cargo xtask build-node\n        if: ${{ a: b }}\n",
    );
    assert_eq!(doc.get_str("name"), Some("x"));
    let on = doc.get("on").unwrap();
    assert_eq!(
        on.get("push").unwrap().get("tags"),
        Some(&Yaml::Seq(vec![Yaml::Scalar("v*".into())]))
    );
    assert_eq!(
        on.get("schedule").unwrap().items()[0].get_str("cron"),
        Some("1 2 * * 3")
    );
    let steps = doc
        .get("jobs")
        .unwrap()
        .get("a")
        .unwrap()
        .get("steps")
        .unwrap()
        .items();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0].get_str("uses"), Some("o/r@abc"));
    assert_eq!(steps[0].get("with").unwrap().get_str("k"), Some("l1\n\nl2"));
    assert_eq!(steps[1].get_str("run"), Some("echo a\necho b"));
    assert_eq!(steps[2].get_str("run"), Some("cargo xtask build-node"));
    assert_eq!(steps[2].get_str("if"), Some("${{ a: b }}"));
}
