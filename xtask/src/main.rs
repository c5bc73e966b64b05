//! `cargo xtask <job>`: parse flags, probe the host, run the job. Nothing else lives here.

mod bounded;
mod cache;
mod container;
mod exec;
mod flags;
mod host;
mod jobs;
mod plan;
mod report;
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
            match err.is::<UsageError>() {
                true => ExitCode::from(2),
                false => ExitCode::FAILURE,
            }
        }
    }
}

/// A combination of flags clap cannot reject by itself; exits with 2 like clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
