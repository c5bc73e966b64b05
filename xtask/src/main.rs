//! `cargo xtask <job>`: parse flags, probe the host, run the job. Nothing else lives here.

mod cache;
mod caller_env;
mod checks;
mod container;
mod env_delta;
mod exec;
mod flags;
mod host;
mod jobs;
mod plan;
mod platform;
mod process;
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
    match jobs::run(flags.job, flags.global, host) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            match err.is::<flags::UsageError>() {
                true => ExitCode::from(2),
                false => ExitCode::FAILURE,
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
