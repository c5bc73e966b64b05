//! `boxspec` command-line tool. Args are hand-parsed to keep the dependency tree to `boxspec` alone.

use std::process::ExitCode;

const USAGE: &str = "\
usage: boxspec <command> FILE

commands:
  validate FILE   check FILE is a valid box spec (prints `ok: FILE`)
  digest FILE     print the spec's sha256 digest
  normalize FILE  print the spec's canonical JSON

options:
  -h, --help      print this help
  -V, --version   print the version
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["-h" | "--help"] => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["-V" | "--version"] => {
            println!("boxspec {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        [cmd @ ("validate" | "digest" | "normalize"), file] => run(cmd, file),
        _ => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: &str, file: &str) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {file}: cannot read file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cmd {
        "validate" => boxspec::validate(&text).map(|_| format!("ok: {file}")),
        "digest" => boxspec::digest(&text),
        _ => boxspec::normalize(&text),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {file}: {e}");
            ExitCode::FAILURE
        }
    }
}
