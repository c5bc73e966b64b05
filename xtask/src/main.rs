//! `cargo xtask <job>`: parse flags, probe the host, run the job. Nothing else lives here.

mod bench;
mod build;
mod cache;
mod caller_env;
mod checks;
mod ci_cache;
mod container;
mod context;
mod env_delta;
mod exec;
mod flags;
mod host;
mod jobs;
mod plan;
mod platform;
mod process;
mod release;
mod report;
mod secrets;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors (and 0 for --help).
    let flags = flags::Xtask::parse();
    let host = host::HostEnv::probe(&project_root());
    let (github, secrets) = (host.github_actions(), secrets::secret_values(&host.vars));
    let cx = context::Context {
        global: flags.global,
        host,
    };
    match jobs::run(flags.job, &cx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Annotated here, once: a step that failed and was retried uncached is no error.
            let text = secrets::mask_text(&format!("{err:#}"), &secrets);
            if github {
                println!("::error::{text}");
            }
            eprintln!("error: {text}");
            match err.downcast_ref::<process::Interrupted>() {
                Some(process::Interrupted(signal)) => ExitCode::from(128 + *signal as u8),
                None if err.is::<flags::UsageError>() => ExitCode::from(2),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
