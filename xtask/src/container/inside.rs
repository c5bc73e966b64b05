//! What a container gets, one rule for `--container` and `--via cibuildwheel` alike: the toolchain and the
//! cache mounted at their host paths, the environment by name (`cache::backend` owns that list), and the
//! shell check that drops a wrapper which cannot run inside (the build goes on uncached).

use std::path::PathBuf;

use crate::cache::{Backend, CacheSetup};
use crate::host::HostEnv;

/// A path the container sees at the same place as the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub path: PathBuf,
    pub read_only: bool,
}

impl Mount {
    pub fn volume_arg(&self) -> String {
        let ro = if self.read_only { ":ro" } else { "" };
        format!("--volume={0}:{0}{ro}", self.path.display())
    }
}

pub fn rw(path: PathBuf) -> Mount {
    Mount {
        path,
        read_only: false,
    }
}

fn ro(path: PathBuf) -> Mount {
    Mount {
        path,
        read_only: true,
    }
}

/// `CARGO_HOME`, the tools (zig linker wrapper), the host's toolchain (read-only: the compiler is part of
/// every key), sccache (only when the host probe passed) and the local cache directory.
pub fn toolchain_and_cache(host: &HostEnv, cache: &CacheSetup, host_toolchain: bool) -> Vec<Mount> {
    let mut mounts = vec![rw(host.cargo_home()), ro(host.tools.dir.clone())];
    if host_toolchain {
        mounts.push(ro(host.rustup_home()));
    }
    if let Some(wrapper) = &cache.wrapper {
        mounts.push(ro(wrapper.clone()));
    }
    if let Backend::Local { dir } = &cache.backend {
        mounts.push(rw(dir.clone()));
    }
    mounts
}

/// The mounts in order, without any that lies inside another (engines refuse or shadow those).
pub fn outermost(wanted: Vec<Mount>) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for mount in wanted {
        if !mounts.iter().any(|m| mount.path.starts_with(&m.path)) {
            mounts.retain(|m| !m.path.starts_with(&mount.path));
            mounts.push(mount);
        }
    }
    mounts
}

/// Shell that succeeds when `wrapper` runs inside; otherwise it says so in one notice and fails.
pub fn wrapper_runs(wrapper: &str) -> String {
    format!(
        r#"{{ "{wrapper}" --version >/dev/null 2>&1 || {{ echo "notice: {wrapper} does not run in this image; building uncached" >&2; false; }}; }}"#
    )
}
