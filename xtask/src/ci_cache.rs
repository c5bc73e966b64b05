//! The cache entries CI keeps between runs, by how often they change: warm-caches saves them, build jobs
//! restore them, tags restore nothing. The workflows' cache steps name exactly these paths (a test
//! checks), and bench-cache's runner scenario restores exactly these.

use std::path::{Path, PathBuf};

pub struct Entry {
    /// The workflows' step id and key prefix.
    pub name: &'static str,
    /// As the workflows write them: `~/` is the runner's HOME, the rest is relative to the checkout.
    pub paths: &'static [&'static str],
}

pub const ENTRIES: [Entry; 3] = [
    // The pinned tools (venvs, wheelhouse, linker wrappers, the wheel smoke venv): keyed on the OS,
    // the architecture, the Python version and the tool pins.
    Entry {
        name: "tools",
        paths: &["~/.cache/boxspec-xtask/tools"],
    },
    // cargo's registry, the index and the `.crate` files (cargo unpacks what a build needs): Cargo.lock.
    Entry {
        name: "crates",
        paths: &["~/.cargo/registry/index", "~/.cargo/registry/cache"],
    },
    // The compile layers: sccache's units, the target layer (warm-caches prunes it) and node_modules:
    // the triple, toolchain, lockfiles and pins, and a run id (each warm run saves anew).
    Entry {
        name: "build",
        paths: &["~/.cache/sccache", "target", "sdks/node/node_modules"],
    },
];

/// Where `path` (as `ENTRIES` writes it) is for a runner with this HOME and checkout.
pub fn resolve(path: &str, home: &Path, checkout: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => checkout.join(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_home_or_checkout() {
        let (home, checkout) = (Path::new("/home/runner"), Path::new("/w/boxspec"));
        let cases = [
            ("~/.cache/sccache", "/home/runner/.cache/sccache"),
            ("target", "/w/boxspec/target"),
            (
                "sdks/node/node_modules",
                "/w/boxspec/sdks/node/node_modules",
            ),
        ];
        for (path, want) in cases {
            assert_eq!(resolve(path, home, checkout), PathBuf::from(want));
        }
    }
}
