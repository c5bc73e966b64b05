//! Policy checks on `.github/workflows/*.yml`, read with yaml-rust2.
//!
//! The build workflows (`build-*.yml`, `warm-caches.yml`) must stay thin: set-up actions pinned by
//! commit, then `cargo xtask <job>` and nothing else. Only `warm-caches.yml` may save the compiler
//! cache, and tag (release) builds may neither restore it nor compile through it; pull requests build
//! read-only (the `XTASK_CACHE` expression is evaluated for each event, as GitHub would).
//! No set-up action keeps a cache of its own (setup-node's npm cache, setup-python's pip cache), and
//! the pinned actionlint and zizmor (offline) accept every workflow.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// A workflow as plain text values.

/// A YAML node with every scalar as its text (`true`, `1.95.0`; null is empty), maps in file order.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Scalar(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn parse(file: &str, text: &str) -> Yaml {
        let docs = yaml_rust2::YamlLoader::load_from_str(text)
            .unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
        docs.first().map_or(Yaml::Map(Vec::new()), Yaml::from_doc)
    }

    fn from_doc(doc: &yaml_rust2::Yaml) -> Yaml {
        use yaml_rust2::Yaml as Doc;
        match doc {
            Doc::Array(items) => Yaml::Seq(items.iter().map(Yaml::from_doc).collect()),
            Doc::Hash(map) => Yaml::Map(
                map.iter()
                    .map(|(k, v)| match Yaml::from_doc(k) {
                        Yaml::Scalar(key) => (key, Yaml::from_doc(v)),
                        key => panic!("a map key that is not a scalar: {key:?}"),
                    })
                    .collect(),
            ),
            Doc::String(s) | Doc::Real(s) => Yaml::Scalar(s.clone()),
            Doc::Integer(i) => Yaml::Scalar(i.to_string()),
            Doc::Boolean(b) => Yaml::Scalar(b.to_string()),
            Doc::Null => Yaml::Scalar(String::new()),
            other => panic!("unexpected YAML node {other:?}"),
        }
    }

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
}

// ---------------------------------------------------------------------------------------------
// GitHub's expression language, the part the workflows use: string literals, `github.*`, `!`, `==`,
// `!=`, `&&`, `||`, parentheses and startsWith/endsWith/contains. `&&` and `||` give one of their
// operands, as GitHub's do; string comparisons ignore case, as GitHub's do.

/// What a workflow run is, as the expressions see it.
struct Event {
    what: &'static str,
    name: &'static str,
    git_ref: &'static str,
}

impl Event {
    fn is_tag(&self) -> bool {
        self.git_ref.starts_with("refs/tags/")
    }
}

/// The runs a build workflow may see, and the cache mode each must build with.
const EVENTS: [(Event, &str); 7] = [
    (
        Event {
            what: "a push to main",
            name: "push",
            git_ref: "refs/heads/main",
        },
        "auto",
    ),
    (
        Event {
            what: "a pull request",
            name: "pull_request",
            git_ref: "refs/pull/7/merge",
        },
        "read",
    ),
    // Runs the base branch's workflow with its secrets, but for a fork's pull request.
    (
        Event {
            what: "a pull_request_target run",
            name: "pull_request_target",
            git_ref: "refs/heads/main",
        },
        "read",
    ),
    (
        Event {
            what: "a tag push",
            name: "push",
            git_ref: "refs/tags/v1",
        },
        "off",
    ),
    (
        Event {
            what: "a scheduled run",
            name: "schedule",
            git_ref: "refs/heads/main",
        },
        "auto",
    ),
    (
        Event {
            what: "a manual run",
            name: "workflow_dispatch",
            git_ref: "refs/heads/main",
        },
        "auto",
    ),
    (
        Event {
            what: "a manual run on a tag",
            name: "workflow_dispatch",
            git_ref: "refs/tags/v1",
        },
        "off",
    ),
];

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Str(String),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Str(s) => !s.is_empty(),
        }
    }

    fn text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

/// The value of a workflow field for `event`: `${{ expr }}` evaluated, or the text as it is. An `if:`
/// may leave out the `${{ }}`.
fn evaluate(field: &str, event: &Event, is_condition: bool) -> Value {
    let field = field.trim();
    let inner = field.strip_prefix("${{").and_then(|f| f.strip_suffix("}}"));
    let expr = match (inner, is_condition) {
        (Some(inner), _) => inner,
        (None, true) => field,
        (None, false) => return Value::Str(field.to_string()),
    };
    let mut parser = Expr {
        tokens: tokens(expr),
        at: 0,
        event,
    };
    let value = parser.or();
    assert!(
        parser.at == parser.tokens.len(),
        "trailing tokens in {expr:?}"
    );
    value
}

fn tokens(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            // A string literal, `''` inside it is a quote; kept with its opening quote as the marker.
            chars.next();
            let mut lit = String::from("'");
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        lit.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => lit.push(ch),
                    None => panic!("unterminated string in {expr:?}"),
                }
            }
            out.push(lit);
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&ch) = chars
                .peek()
                .filter(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(**ch))
            {
                word.push(ch);
                chars.next();
            }
            out.push(word);
        } else {
            chars.next();
            let two = chars.peek().map(|next| format!("{c}{next}"));
            match two.as_deref() {
                Some("==" | "!=" | "&&" | "||") => {
                    chars.next();
                    out.push(two.unwrap());
                }
                _ if "!(),".contains(c) => out.push(c.to_string()),
                _ => panic!("unsupported character {c:?} in {expr:?}"),
            }
        }
    }
    out
}

struct Expr<'a> {
    tokens: Vec<String>,
    at: usize,
    event: &'a Event,
}

impl Expr<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> String {
        self.at += 1;
        (self.tokens.get(self.at - 1).cloned())
            .unwrap_or_else(|| panic!("the expression ends early: {:?}", self.tokens))
    }

    fn expect(&mut self, token: &str) {
        let got = self.next();
        assert_eq!(got, token, "in {:?}", self.tokens);
    }

    fn or(&mut self) -> Value {
        self.chain("||", Self::and, true)
    }

    fn and(&mut self) -> Value {
        self.chain("&&", Self::comparison, false)
    }

    /// `a op b op …`, giving the operand that decided: the first whose truth is `decides`, or the last.
    fn chain(&mut self, op: &str, operand: fn(&mut Self) -> Value, decides: bool) -> Value {
        let mut value = operand(self);
        while self.peek() == Some(op) {
            self.next();
            let right = operand(self);
            if value.truthy() != decides {
                value = right;
            }
        }
        value
    }

    fn comparison(&mut self) -> Value {
        let left = self.unary();
        match self.peek() {
            Some(op @ ("==" | "!=")) => {
                let equal = op == "==";
                self.next();
                let right = self.unary();
                let same = left.text().eq_ignore_ascii_case(&right.text());
                Value::Bool(same == equal)
            }
            _ => left,
        }
    }

    fn unary(&mut self) -> Value {
        if self.peek() == Some("!") {
            self.next();
            return Value::Bool(!self.unary().truthy());
        }
        self.primary()
    }

    fn primary(&mut self) -> Value {
        let token = self.next();
        if token == "(" {
            let value = self.or();
            self.expect(")");
            return value;
        }
        if let Some(lit) = token.strip_prefix('\'') {
            return Value::Str(lit.to_string());
        }
        match token.as_str() {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            "null" => return Value::Null,
            _ => {}
        }
        if self.peek() == Some("(") {
            self.next();
            let mut args = vec![self.or()];
            while self.peek() == Some(",") {
                self.next();
                args.push(self.or());
            }
            self.expect(")");
            let [a, b] = [&args[0], &args[1]].map(|v| v.text().to_ascii_lowercase());
            return Value::Bool(match token.as_str() {
                "startsWith" => a.starts_with(&b),
                "endsWith" => a.ends_with(&b),
                "contains" => a.contains(&b),
                _ => panic!("unsupported function {token}"),
            });
        }
        match token.as_str() {
            "github.event_name" => Value::Str(self.event.name.to_string()),
            "github.ref" => Value::Str(self.event.git_ref.to_string()),
            other if other.starts_with("github.") => Value::Null,
            other => panic!("unsupported context {other:?}: teach the evaluator"),
        }
    }
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
                doc: Yaml::parse(&p.display().to_string(), &text),
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
// (c) Tag builds neither restore the cache nor compile through it; pull requests only read it.

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
                let cond = step.get_str("if").unwrap_or("true");
                for (event, _) in &EVENTS {
                    let restores = evaluate(cond, event, true).truthy();
                    if restores == event.is_tag() {
                        let verdict = match restores {
                            true => "restores the cache for",
                            false => "restores nothing for",
                        };
                        errors.push(format!(
                            "{label}: `if: {cond}` {verdict} {}: only tag builds go without",
                            event.what
                        ));
                    }
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
                        "{label}: `--cache {other}` would override the tag and pull-request guards"
                    ));
                    continue;
                }
                None => {}
            }
            // The nearest XTASK_CACHE wins: step, then job, then workflow. Tags build uncached; a pull
            // request is untrusted code: it may read the shared cache, never write it.
            let env = [step.get("env"), job_doc.get("env"), wf_env]
                .into_iter()
                .flatten()
                .find_map(|e| e.get_str("XTASK_CACHE"));
            let Some(env) = env else {
                errors.push(format!(
                    "{label}: no XTASK_CACHE: tags and pull requests would build with `auto`"
                ));
                continue;
            };
            for (event, want) in &EVENTS {
                let mode = evaluate(env, event, false).text();
                if mode != *want {
                    errors.push(format!(
                        "{label}: XTASK_CACHE is {mode:?} for {}, must be {want:?} ({env})",
                        event.what
                    ));
                }
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
// The cache entries: the paths ci_cache.rs names, and the compile layers' key has one shape everywhere,
// so saves and restores meet.

#[path = "../src/ci_cache.rs"]
#[allow(dead_code)]
mod ci_cache;

#[test]
fn cache_steps_share_one_key() {
    let hash = "hashFiles('rust-toolchain.toml', 'Cargo.lock', 'xtask/src/tools.rs', 'sdks/node/package-lock.json')";
    // The target layer is valid only for one runner image, target triple, toolchain, lockfile and set of
    // tool pins. The image is the matrix's label (.github/runners.yml: each live label is one image), so a
    // new image is a new key.
    let prefix =
        format!("build-caches-${{{{ matrix.os }}}}-${{{{ matrix.target }}}}-${{{{ {hash} }}}}-");
    let key = format!("{prefix}${{{{ github.run_id }}}}");
    let mut errors = Vec::new();
    let mut build_restores = 0;
    // Per workflow file: the entries it restores, and those it saves.
    let mut restored: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut saved: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            let Some(uses) = step.get_str("uses") else {
                continue;
            };
            if !action(uses).0.starts_with("actions/cache") {
                continue;
            }
            let label = step_label(&wf.file, job, step);
            let with = step.get("with");
            let input = |k: &str| {
                with.and_then(|w| w.get_str(k))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let path = input("path");
            let entry = (ci_cache::ENTRIES.iter()).find(|e| e.paths.join("\n") == path);
            let Some(entry) = entry else {
                errors.push(format!(
                    "{label}: path {path:?} is no entry of xtask/src/ci_cache.rs"
                ));
                continue;
            };
            let seen = match action(uses).0 == "actions/cache/restore" {
                true => &mut restored,
                false => &mut saved,
            };
            seen.entry(wf.file.clone()).or_default().insert(entry.name);
            if action(uses).0 != "actions/cache/restore" {
                continue;
            }
            if !input("key").starts_with(&format!("{}-", entry.name)) {
                errors.push(format!(
                    "{label}: the key of the {} entry must start with `{}-`, is {:?}",
                    entry.name,
                    entry.name,
                    input("key")
                ));
            }
            // Venvs and wheels are built for one image (its Python, its libc): a new image, a new entry.
            let image = "tools-${{ matrix.os }}-";
            if entry.name == "tools" && !input("key").starts_with(image) {
                errors.push(format!("{label}: the tools key must start with {image:?}"));
            }
            if entry.name != "build" {
                continue;
            }
            build_restores += 1;
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
    // A workflow that restores restores every entry; warm-caches saves every entry.
    let all: BTreeSet<&str> = ci_cache::ENTRIES.iter().map(|e| e.name).collect();
    for (file, names) in restored.iter().chain(saved.iter()) {
        if *names != all {
            errors.push(format!(
                "{file}: its cache steps hold {names:?}, not every entry of ci_cache.rs ({all:?})"
            ));
        }
    }
    if !saved.contains_key("warm-caches.yml") {
        errors.push("warm-caches.yml: saves no entry of ci_cache.rs".into());
    }
    assert!(
        build_restores >= 4,
        "expected a restore of the compile layers in each build workflow, found {build_restores}"
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
            if wf.file == "release.yml" && (job == "publish" || job == "github-release") {
                continue; // release_publishes_from_the_build_workflows_artifacts checks them
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

/// Every build workflow (and the warm job) runs for each platform the SDKs ship, on its own hardware (the
/// runner `.github/runners.yml` names for it), and tells the driver which through `XTASK_TARGET`
/// (`run:` stays `cargo xtask <job>`).
#[test]
fn every_platform_builds_on_its_own_runner() {
    let runners = Runners::load();
    let wanted: Vec<(&str, &str)> = (runners.targets.iter())
        .map(|(target, os)| (os.as_str(), target.as_str()))
        .collect();
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
            assert_eq!(legs, wanted, "{label}: the legs .github/runners.yml names");
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

// ---------------------------------------------------------------------------------------------
// Runner labels: every one a workflow asks for is live on GitHub, as `.github/runners.yml` records it.

/// `.github/runners.yml`: the labels GitHub documents as live (each one image), the moving aliases, the
/// retired labels with their dates, and the runner of each shipped target.
struct Runners {
    checked: String,
    source: String,
    live: Vec<String>,
    moving: Vec<(String, String)>,
    retired: Vec<(String, String)>,
    targets: Vec<(String, String)>,
}

impl Runners {
    fn load() -> Runners {
        let path = root().join(".github/runners.yml");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc = Yaml::parse(".github/runners.yml", &text);
        let pairs = |key: &str| -> Vec<(String, String)> {
            let map = doc
                .get(key)
                .unwrap_or_else(|| panic!("runners.yml: no `{key}:`"));
            (map.entries().iter())
                .map(|(k, v)| (k.clone(), v.str().unwrap_or_default().to_string()))
                .collect()
        };
        let field = |key: &str| {
            doc.get_str(key)
                .unwrap_or_else(|| panic!("runners.yml: no `{key}:`"))
        };
        Runners {
            checked: field("checked").to_string(),
            source: field("source").to_string(),
            live: (doc.get("live").map(Yaml::items).unwrap_or_default().iter())
                .filter_map(|l| l.str().map(str::to_string))
                .collect(),
            moving: pairs("moving"),
            retired: pairs("retired"),
            targets: pairs("targets"),
        }
    }

    /// Why a workflow may not ask for `label`, or None when it may.
    fn refuse(&self, label: &str) -> Option<String> {
        if self.live.iter().any(|l| l == label) {
            return None;
        }
        let lookup = |list: &[(String, String)]| {
            (list.iter())
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.clone())
        };
        Some(match (lookup(&self.retired), lookup(&self.moving)) {
            (Some(date), _) => format!("`{label}` was retired on {date}"),
            (_, Some(image)) => format!(
                "`{label}` follows the newest image (now {image}) under one cache key: name the image"
            ),
            _ => format!(
                "`{label}` is not a live GitHub-hosted label (.github/runners.yml, checked {} at {})",
                self.checked, self.source
            ),
        })
    }
}

/// Every `runs-on` and every matrix `os` of every workflow (the file and job that names it).
fn runner_labels() -> Vec<(String, String)> {
    let mut labels = Vec::new();
    for wf in workflows() {
        for (job, doc) in wf.jobs() {
            let at = format!("{} job `{job}`", wf.file);
            let matrix = doc.get("strategy").and_then(|s| s.get("matrix"));
            let legs = matrix.and_then(|m| m.get("include")).map(Yaml::items);
            let oses = (legs.unwrap_or_default().iter()).filter_map(|leg| leg.get("os"));
            let listed = matrix.and_then(|m| m.get("os")).into_iter();
            for os in oses.chain(listed).chain(doc.get("runs-on")) {
                let values = match os {
                    Yaml::Seq(items) => items.iter().filter_map(Yaml::str).collect(),
                    other => other.str().into_iter().collect::<Vec<_>>(),
                };
                for value in values.into_iter().filter(|v| !v.contains("${{")) {
                    labels.push((value.to_string(), at.clone()));
                }
            }
        }
    }
    labels
}

#[test]
fn every_runner_label_is_live() {
    let runners = Runners::load();
    let labels = runner_labels();
    assert!(
        labels.iter().any(|(l, _)| l.starts_with("macos-")),
        "no Mac label found: the reader misses the matrices ({labels:?})"
    );
    let mut errors: Vec<String> = (labels.iter())
        .filter_map(|(label, at)| Some(format!("{at}: {}", runners.refuse(label)?)))
        .collect();
    for (target, os) in &runners.targets {
        if let Some(why) = runners.refuse(os) {
            errors.push(format!(".github/runners.yml: {target}: {why}"));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn a_retired_or_unknown_label_is_refused_with_the_reason() {
    let runners = Runners::load();
    let cases = [
        ("macos-14", "retired on 2026-11-02"),
        ("macos-latest", "follows the newest image"),
        ("ubuntu-16.04-gpu", "not a live GitHub-hosted label"),
    ];
    for (label, want) in cases {
        let why = runners.refuse(label).unwrap_or_default();
        assert!(why.contains(want), "{label}: {why:?}");
    }
    assert_eq!(runners.refuse("macos-15"), None);
}

/// The docs' platform table names, for each target, the runner that builds it in CI.
#[test]
fn the_platform_table_names_each_targets_runner() {
    let mut pages = vec![root().join("README.md")];
    if let Ok(dir) = fs::read_dir(root().join("docs")) {
        pages.extend(dir.map(|e| e.unwrap().path()));
    }
    let rows: Vec<String> = (pages.iter())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .flat_map(|p| {
            fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.starts_with("| `"))
        .collect();
    for (target, os) in Runners::load().targets {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `{target}` |")));
        let row = row.unwrap_or_else(|| {
            panic!("no platform table row starts with `{target}` in README.md or docs/")
        });
        assert!(
            row.contains(&format!("`{os}`")),
            "the row of {target} does not name its runner `{os}`: {row}"
        );
    }
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
    errors.extend(first_publish_and_github_release(wf, publish));
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

/// The first npm publish needs a token (npm cannot trust a publisher for a package that does not exist):
/// setup-node writes the .npmrc that reads NODE_AUTH_TOKEN, which the publish step takes from a secret.
/// The GitHub Release is its own job after publish, the only one that may write to the repository.
fn first_publish_and_github_release(wf: &Workflow, publish: &Yaml) -> Vec<String> {
    let mut errors = Vec::new();
    let steps = publish.get("steps").map(Yaml::items).unwrap_or_default();
    let node = (steps.iter()).find(|s| {
        s.get_str("uses")
            .is_some_and(|u| action(u).0 == "actions/setup-node")
    });
    if node
        .and_then(|s| s.get("with"))
        .and_then(|w| w.get_str("registry-url"))
        != Some("https://registry.npmjs.org")
    {
        errors.push("release.yml: setup-node needs registry-url: 'https://registry.npmjs.org' (the first npm publish's token)".into());
    }
    let publish_step = (steps.iter()).find(|s| s.get_str("run") == Some("cargo xtask publish"));
    let token = publish_step
        .and_then(|s| s.get("env"))
        .and_then(|e| e.get_str("NODE_AUTH_TOKEN"));
    if token.map(expr).as_deref() != Some("secrets.NPM_TOKEN") {
        errors.push(format!("release.yml: the publish step needs NODE_AUTH_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}, has {token:?}"));
    }
    let runs_at = |pred: &dyn Fn(&Yaml) -> bool| steps.iter().position(pred);
    let upload = runs_at(&|s| {
        s.get_str("uses")
            .is_some_and(|u| action(u).0 == "actions/upload-artifact")
    });
    let publishes = runs_at(&|s| s.get_str("run") == Some("cargo xtask publish"));
    if !(upload.is_some() && upload < publishes) {
        errors.push(
            "release.yml: upload the runtime archives before publish (a failed publish keeps them)"
                .into(),
        );
    }
    let jobs = wf.jobs();
    let Some((_, release)) = jobs.iter().find(|(name, _)| name == "github-release") else {
        errors.push("release.yml: no `github-release` job".into());
        return errors;
    };
    let write = Yaml::Map(vec![("contents".into(), Yaml::Scalar("write".into()))]);
    if release.get("permissions") != Some(&write) {
        errors.push(
            "release.yml: github-release needs exactly `permissions: contents: write`".into(),
        );
    }
    let needs: Vec<&str> = (release
        .get("needs")
        .map(Yaml::items)
        .unwrap_or_default()
        .iter())
    .filter_map(Yaml::str)
    .collect();
    if needs != ["publish"] {
        errors.push(format!(
            "release.yml: github-release must need [publish], needs {needs:?}"
        ));
    }
    let text: String = (release
        .get("steps")
        .map(Yaml::items)
        .unwrap_or_default()
        .iter())
    .filter_map(|s| s.get_str("run").or(s.get_str("uses")))
    .collect();
    if !(text.contains("gh release create") && text.contains("gh release upload")) {
        errors.push("release.yml: github-release makes the release with the runner's gh".into());
    }
    errors
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

/// Node 20 reached end of life in April 2026 (`npm ci` warned that the napi CLI's dependencies want
/// ≥ 22): every setup-node step sets up a Node LTS in support. The oldest Node the addon's `engines`
/// allows is tested too, by e2e with a pinned copy.
#[test]
fn workflows_set_up_a_supported_node_lts() {
    let mut setups = 0;
    for wf in workflows() {
        for (job, _, step) in wf.steps() {
            let Some(uses) = step.get_str("uses") else {
                continue;
            };
            if action(uses).0 != "actions/setup-node" {
                continue;
            }
            setups += 1;
            let version = step
                .get("with")
                .and_then(|with| with.get_str("node-version"));
            assert!(
                matches!(version, Some("22" | "24")),
                "{}: node-version {version:?}",
                step_label(&wf.file, job, step)
            );
        }
    }
    assert!(setups >= 3, "{setups} setup-node steps");
}
