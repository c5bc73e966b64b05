//! doctor: the whole cache decision and the tools, for people (`doctor`) and machines (`doctor --json`).

use anyhow::Result;
use serde_json::json;
use xshell::{Shell, cmd};

use crate::build::BuildJob;
use crate::cache::{self, Backend, CacheSetup, watch};
use crate::context::Context;
use crate::flags::{CacheMode, Doctor, Global};
use crate::host::HostEnv;
use crate::plan::Step;
use crate::{secrets, tools};

impl Doctor {
    pub fn run(self, cx: &Context) -> Result<()> {
        report(&cx.global, &cx.host, self.json)
    }
}

fn report(global: &Global, host: &HostEnv, as_json: bool) -> Result<()> {
    // Under `require` a failed decision is the answer to show, not a reason to stop.
    let decision = cache::decide(global, CacheMode::Auto, host, global.dry_run);
    let versions = tool_versions(host);
    let secrets = secrets::secret_values(&host.vars);
    let text = match as_json {
        true => serde_json::to_string_pretty(&to_json(host, &decision, &versions))?,
        false => to_text(host, &decision, &versions),
    };
    println!("{}", secrets::mask_text(&text, &secrets));
    decision.map(|_| ())
}

fn tool_versions(host: &HostEnv) -> Vec<(&'static str, String)> {
    let sh = Shell::new().ok();
    let read = |program: Option<&std::path::Path>, arg: &str| -> String {
        match (program, &sh) {
            (Some(p), Some(sh)) => cmd!(sh, "{p} {arg}")
                .quiet()
                .ignore_stderr()
                .read()
                .unwrap_or_else(|e| format!("error: {e}")),
            _ => "not found".into(),
        }
    };
    let cargo = host.find_on_path("cargo");
    let maturin = host.tools.bin("maturin");
    vec![
        ("cargo", read(cargo.as_deref(), "--version")),
        ("python3", read(host.python3.as_deref(), "--version")),
        ("node", read(host.node.as_deref(), "--version")),
        (
            "maturin",
            read(maturin.exists().then_some(maturin.as_path()), "--version"),
        ),
        (
            "napi (pin)",
            format!("@napi-rs/cli {}", tools::NAPI_CLI_VERSION),
        ),
        // Only whether a client is there: `--container` checks that the engine really runs a container.
        (
            "docker",
            read(host.find_on_path("docker").as_deref(), "--version"),
        ),
        (
            "podman",
            read(host.find_on_path("podman").as_deref(), "--version"),
        ),
    ]
}

fn to_text(host: &HostEnv, decision: &Result<CacheSetup>, versions: &[(&str, String)]) -> String {
    let mut out = format!("workspace   {}\n", host.root.display());
    out += &format!(
        "tools dir   {} ({})\n",
        host.tools.dir.display(),
        if host.tools_state.ready() {
            "ready"
        } else {
            "will be installed"
        }
    );
    for (name, version) in versions {
        out += &format!("{name:<11} {version}\n");
    }
    out += &environment_lines(host, decision);
    match decision {
        Err(err) => out += &format!("cache       FAILED: {err:#}\n"),
        Ok(setup) => {
            out += &format!("mode        {}\n", setup.mode_label());
            for c in &setup.candidates {
                let verdict = match &c.verdict {
                    Ok(v) if Some(&c.path) == setup.wrapper.as_ref() => {
                        format!("sccache {v}, chosen")
                    }
                    Ok(v) => format!("sccache {v}, not needed"),
                    Err(why) => format!("refused: {why}"),
                };
                out += &format!(
                    "candidate   {:<26} {} — {verdict}\n",
                    c.source.label(),
                    c.path.display()
                );
            }
            out += &format!("backend     {}\n", setup.backend.describe());
            if let Some((addr, answer)) = reachability(host) {
                let answer =
                    answer.map_or("does not answer".into(), |ms| format!("answers in {ms} ms"));
                out += &format!("endpoint    {addr} {answer}\n");
            }
            let probe = match &setup.probe {
                Some(Ok(ms)) => format!("server started and answered in {ms} ms"),
                Some(Err(why)) => format!("failed: {why}"),
                None => "not run".into(),
            };
            out += &format!("probe       {probe}\n");
            for notice in &setup.notices {
                out += &format!("notice      {notice}\n");
            }
            out += &setup.summary();
        }
    }
    out
}

/// Where this runs, and which of the caller's `CARGO_*` variables every cache key hashes (names only:
/// a registry token is one of them): another machine shares entries only if they agree.
fn environment_lines(host: &HostEnv, decision: &Result<CacheSetup>) -> String {
    let ci = match host.github_actions() {
        true => "GitHub Actions",
        false => host.var("CI").unwrap_or("no"),
    };
    let keys = match key_variables(host, decision).as_deref() {
        None => return format!("CI          {ci}\n"),
        Some([]) => "no CARGO_* variable of yours".to_string(),
        Some(keys) => format!("also hash {}", keys.join(", ")),
    };
    format!("CI          {ci}\nkeys        {keys}\n")
}

/// `compile::key_variables` for what a build for this machine compiles with (the runtime job's compile
/// step), once the cache is decided.
fn key_variables<'a>(host: &'a HostEnv, decision: &Result<CacheSetup>) -> Option<Vec<&'a str>> {
    let (Ok(setup), Some(platform)) = (decision, host.platform) else {
        return None;
    };
    let steps = BuildJob::Runtime.plan(host, setup, platform);
    let cmd = steps.iter().find_map(Step::compile_cmd)?;
    Some(crate::build::compile::key_variables(host, &cmd.env))
}

/// Where the watch asks the requested remote backend, and how long it took to answer (`None`: no
/// answer). Shown even when the decision fell back: that is when it matters.
fn reachability(host: &HostEnv) -> Option<(String, Option<u64>)> {
    let Backend::Remote {
        health: Some(endpoint),
        ..
    } = cache::backend::requested_backend(host).0
    else {
        return None;
    };
    let start = std::time::Instant::now();
    let answered = watch::answers(&endpoint);
    let ms = start.elapsed().as_millis() as u64;
    Some((endpoint.addr, answered.then_some(ms)))
}

fn to_json(
    host: &HostEnv,
    decision: &Result<CacheSetup>,
    versions: &[(&str, String)],
) -> serde_json::Value {
    let tools: serde_json::Map<String, serde_json::Value> = versions
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let cache = match decision {
        Err(err) => json!({ "error": format!("{err:#}") }),
        Ok(s) => json!({
            "mode": s.mode.as_str(),
            "fell_back": s.fell_back,
            "wrapper": s.wrapper,
            "backend": s.backend.kind(),
            "backend_detail": s.backend.describe(),
            "endpoint": reachability(host).map(|(addr, ms)| json!({ "address": addr, "answer_ms": ms })),
            "port": s.port,
            "port_moved": s.port_moved,
            "probe_ms": s.probe.as_ref().and_then(|p| p.as_ref().ok()),
            "probe_error": s.probe.as_ref().and_then(|p| p.as_ref().err()),
            "decision_ms": s.decision_ms,
            "notices": s.notices,
            "candidates": s.candidates.iter().map(|c| json!({
                "source": c.source.label(),
                "path": c.path,
                "version": c.verdict.as_ref().ok(),
                "refused": c.verdict.as_ref().err(),
            })).collect::<Vec<_>>(),
        }),
    };
    json!({
        "workspace": host.root,
        "tools_dir": host.tools.dir,
        "tools_ready": host.tools_state.ready(),
        "github_actions": host.github_actions(),
        "key_variables": key_variables(host, decision),
        "tools": tools,
        "cache": cache,
    })
}
