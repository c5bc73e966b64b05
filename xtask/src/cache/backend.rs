//! Which backend the environment asks for, and the variables that belong to the cache: this file is the
//! one owner of `RUSTC_WRAPPER`, `SCCACHE_*` and of what goes into a container by name.

use std::path::{Path, PathBuf};

use crate::env_delta::EnvDelta;
use crate::host::HostEnv;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Redis,
    Memcached,
    S3,
    Gcs,
    Azure,
    Webdav,
    Oss,
    /// The GitHub Actions cache service.
    Gha,
}

impl RemoteKind {
    pub fn name(self) -> &'static str {
        match self {
            RemoteKind::Redis => "redis",
            RemoteKind::Memcached => "memcached",
            RemoteKind::S3 => "s3",
            RemoteKind::Gcs => "gcs",
            RemoteKind::Azure => "azure",
            RemoteKind::Webdav => "webdav",
            RemoteKind::Oss => "oss",
            RemoteKind::Gha => "gha",
        }
    }
}

/// Remote backends sccache reads from its environment: we detect them and pass them through.
const REMOTE_BACKENDS: &[(RemoteKind, &[&str])] = &[
    (
        RemoteKind::Redis,
        &[
            "SCCACHE_REDIS_ENDPOINT",
            "SCCACHE_REDIS_CLUSTER_ENDPOINTS",
            "SCCACHE_REDIS",
        ],
    ),
    (
        RemoteKind::Memcached,
        &["SCCACHE_MEMCACHED_ENDPOINT", "SCCACHE_MEMCACHED"],
    ),
    (RemoteKind::S3, &["SCCACHE_BUCKET"]),
    (RemoteKind::Gcs, &["SCCACHE_GCS_BUCKET"]),
    (RemoteKind::Azure, &["SCCACHE_AZURE_CONNECTION_STRING"]),
    (RemoteKind::Webdav, &["SCCACHE_WEBDAV_ENDPOINT"]),
    (RemoteKind::Oss, &["SCCACHE_OSS_BUCKET"]),
];
const GHA_VARS: &[&str] = &[
    "ACTIONS_RESULTS_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_CACHE_SERVICE_V2",
];

/// Where a cargo wrapper can be inherited from, in the order cargo reads them.
pub const WRAPPER_VARS: [&str; 2] = ["RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Disabled,
    Local {
        dir: PathBuf,
    },
    /// `health` is where the watch asks the backend, while a build runs, whether it still answers.
    Remote {
        kind: RemoteKind,
        health: Option<Endpoint>,
    },
}

impl Backend {
    pub fn describe(&self) -> String {
        match self {
            Backend::Local { dir } => format!("local disk {}", dir.display()),
            _ => self.kind().to_string(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Disabled => "none",
            Backend::Local { .. } => "local",
            Backend::Remote { kind, .. } => kind.name(),
        }
    }
}

/// A backend's address and the protocol to ask it in: an application-level question, because a frozen
/// server still accepts TCP connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`
    pub addr: String,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `PING`
    Redis,
    /// `version`
    Memcached,
    /// `HEAD /`
    Http,
    /// A TLS ClientHello: any answer, even an alert, means the server is alive.
    Tls,
}

/// The backend asked for by the environment, with a notice for half-configured ones.
pub fn requested_backend(host: &HostEnv) -> (Backend, Vec<String>) {
    let set = |v: &str| host.var(v).is_some_and(|x| !x.is_empty());
    for (kind, vars) in REMOTE_BACKENDS {
        if let Some(var) = vars.iter().find(|v| set(v)) {
            let health = endpoint(*kind, host.var(var).unwrap(), host);
            let kind = *kind;
            return (Backend::Remote { kind, health }, Vec::new());
        }
    }
    let gha_enabled = host
        .var("SCCACHE_GHA_ENABLED")
        .is_some_and(|v| matches!(v, "on" | "true" | "1"));
    let missing: Vec<&str> = GHA_VARS.iter().copied().filter(|v| !set(v)).collect();
    if gha_enabled && missing.is_empty() {
        let url = host.var("ACTIONS_RESULTS_URL").unwrap_or_default();
        let gha = Backend::Remote {
            kind: RemoteKind::Gha,
            health: url_endpoint(url, true),
        };
        return (gha, Vec::new());
    }
    // Only when that backend was asked for: runners and act expose the variables to every step.
    let notices = match gha_enabled {
        true => vec![format!(
            "GitHub Actions cache not used: {} missing; using local disk",
            missing.join(", ")
        )],
        false => Vec::new(),
    };
    let dir = local_dir(host);
    (Backend::Local { dir }, notices)
}

/// `SCCACHE_DIR`, else a stable per-user directory (the one CI persists).
pub fn local_dir(host: &HostEnv) -> PathBuf {
    match host.var("SCCACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => host.user_cache_dir().join("sccache"),
    }
}

/// The environment compile steps get. `RUSTC_WRAPPER` is always set, to the wrapper or to empty,
/// so a stale wrapper from the caller's environment cannot leak into cargo.
pub fn compile_env(wrapper: Option<&Path>, backend: &Backend) -> EnvDelta {
    let mut env = EnvDelta::new();
    let wrapper_value = wrapper.map(|p| p.display().to_string()).unwrap_or_default();
    env.set("RUSTC_WRAPPER", wrapper_value)
        .unset("CARGO_BUILD_RUSTC_WRAPPER");
    match backend {
        Backend::Disabled => {}
        Backend::Local { dir } => {
            env.set("CARGO_INCREMENTAL", "0")
                .set("SCCACHE_DIR", dir.display().to_string());
            // A fallen-back build must not reach the remote backend through a restarted server.
            for var in REMOTE_BACKENDS.iter().flat_map(|(_, vars)| vars.iter()) {
                env.unset(var);
            }
            env.unset("SCCACHE_GHA_ENABLED");
        }
        Backend::Remote { kind, .. } => {
            env.set("CARGO_INCREMENTAL", "0");
            if *kind == RemoteKind::Gha {
                env.set("SCCACHE_GHA_ENABLED", "on");
            }
        }
    }
    env
}

/// What makes sccache read the cache and never write it (every backend of sccache 0.16 has the switch;
/// an unknown value would silently mean read-write, so the value is exactly `READ_ONLY`).
pub fn read_only_env(backend: &Backend) -> EnvDelta {
    let mut env = EnvDelta::new();
    let kind = match backend {
        Backend::Disabled => return env,
        Backend::Local { .. } => "LOCAL".to_string(),
        Backend::Remote { kind, .. } => kind.name().to_ascii_uppercase(),
    };
    env.set(&format!("SCCACHE_{kind}_RW_MODE"), "READ_ONLY");
    env
}

/// The first non-empty wrapper the caller's environment sets, as (variable, value).
pub fn inherited_wrapper(host: &HostEnv) -> Option<(&'static str, String)> {
    WRAPPER_VARS.into_iter().find_map(|name| {
        host.var(name)
            .filter(|v| !v.is_empty())
            .map(|v| (name, v.to_string()))
    })
}

/// Host variables a container receives, by name only: the cache backend, cargo's and rustc's settings,
/// GitHub's cache. (Build scripts that probe the compiler see RUSTC_BOOTSTRAP: without it inside, host
/// and container compile units differ and miss each other's cache entries.)
const PASSED_PREFIXES: &[&str] = &["SCCACHE_", "CARGO_"];
const PASSED_NAMES: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_BOOTSTRAP",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_CACHE_SERVICE_V2",
    "ACTIONS_CACHE_URL",
];
/// Not the package variables of the driver's own `cargo run`: cargo sets them anew for every crate.
const NOT_PASSED_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_MANIFEST_"];
/// Passed only with the host's toolchain: they select the very same compiler inside.
pub const HOST_TOOLCHAIN_NAMES: &[&str] = &["CARGO", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"];
/// Given with their values, not by name: the cache decision's own settings, shown in the plan.
pub const PASSED_WITH_VALUE: &[&str] = &["RUSTC_WRAPPER", "CARGO_INCREMENTAL"];

/// The credentials a backend's client reads outside `SCCACHE_*`: they go in only with that backend.
fn credential_prefixes(backend: &Backend) -> &'static [&'static str] {
    match backend {
        Backend::Remote { kind, .. } => match kind {
            RemoteKind::S3 => &["AWS_"],
            RemoteKind::Oss => &["ALIBABA_CLOUD_"],
            RemoteKind::Gcs => &["GOOGLE_APPLICATION_CREDENTIALS"],
            _ => &[],
        },
        _ => &[],
    }
}

/// Whether a host variable goes into a container (by name).
pub fn passed_by_name(name: &str, host_toolchain: bool, backend: &Backend) -> bool {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    (starts(PASSED_PREFIXES) && !starts(NOT_PASSED_PREFIXES))
        || PASSED_NAMES.contains(&name)
        || starts(credential_prefixes(backend))
        || (host_toolchain && HOST_TOOLCHAIN_NAMES.contains(&name))
}

/// The names a container step receives: the host's passed variables, minus what the step removes, plus
/// what it sets.
pub fn container_env_names(
    host: &HostEnv,
    step_env: &EnvDelta,
    host_toolchain: bool,
    backend: &Backend,
) -> Vec<String> {
    let mut names: Vec<String> = (host.vars.keys())
        .filter(|k| passed_by_name(k, host_toolchain, backend))
        .cloned()
        .collect();
    for (name, value) in step_env.iter() {
        names.retain(|n| n != name);
        if value.is_some() {
            names.push(name.to_string());
        }
    }
    if !host_toolchain {
        names.retain(|n| !HOST_TOOLCHAIN_NAMES.contains(&n.as_str()));
    }
    names.sort();
    names.dedup();
    names
}

/// Where the watch asks the backend, from the variable that selected it (and its companions).
fn endpoint(kind: RemoteKind, value: &str, host: &HostEnv) -> Option<Endpoint> {
    let tls_default = host.var("SCCACHE_S3_USE_SSL").is_none_or(|v| v != "false");
    match kind {
        // Cluster endpoints are a comma-separated list: the first one answers for the cluster.
        RemoteKind::Redis => {
            let first = value.split(',').next()?;
            let tls = first.starts_with("rediss://");
            let addr = authority(first, "6379")?;
            let protocol = if tls { Protocol::Tls } else { Protocol::Redis };
            Some(Endpoint { addr, protocol })
        }
        RemoteKind::Memcached => authority(value, "11211").map(|addr| Endpoint {
            addr,
            protocol: Protocol::Memcached,
        }),
        RemoteKind::S3 => match host.var("SCCACHE_ENDPOINT").filter(|e| !e.is_empty()) {
            Some(url) => url_endpoint(url, tls_default),
            None => {
                let region = host.var("SCCACHE_REGION").unwrap_or("us-east-1");
                url_endpoint(&format!("s3.{region}.amazonaws.com"), true)
            }
        },
        RemoteKind::Gcs => url_endpoint("storage.googleapis.com", true),
        RemoteKind::Azure => {
            let field = |name: &str| {
                (value.split(';')).find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            };
            match (field("BlobEndpoint"), field("AccountName")) {
                (Some(url), _) => url_endpoint(url, true),
                (None, Some(account)) => {
                    url_endpoint(&format!("{account}.blob.core.windows.net"), true)
                }
                _ => None,
            }
        }
        RemoteKind::Webdav => url_endpoint(value, true),
        RemoteKind::Oss => url_endpoint(host.var("SCCACHE_OSS_ENDPOINT").unwrap_or(""), true),
        RemoteKind::Gha => url_endpoint(value, true),
    }
}

/// An HTTP(S) endpoint from a URL or a bare host; `tls` decides for a bare host.
fn url_endpoint(url: &str, tls: bool) -> Option<Endpoint> {
    let tls = match url.split_once("://") {
        Some((scheme, _)) => scheme == "https",
        None => tls,
    };
    let (port, protocol) = if tls {
        ("443", Protocol::Tls)
    } else {
        ("80", Protocol::Http)
    };
    authority(url, port).map(|addr| Endpoint { addr, protocol })
}

/// `host:port` of a `scheme://user:pw@host:port/path`-style endpoint (or a bare `host[:port]`).
fn authority(endpoint: &str, default_port: &str) -> Option<String> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    Some(match hostport.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => hostport.to_string(),
        _ => format!("{hostport}:{default_port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(setup: &EnvDelta, name: &str) -> Option<Option<String>> {
        setup.get(name).map(|v| v.map(str::to_string))
    }

    #[test]
    fn backend_table() {
        // (environment, backend kind, health address, notice expected)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>, bool);
        let cases: &[Case] = &[
            (&[("HOME", "/h")], "local", None, false),
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_REDIS_ENDPOINT", "redis://:pw@10.0.0.9"),
                ],
                "redis",
                Some("Redis 10.0.0.9:6379"),
                false,
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_REDIS_ENDPOINT", "redis://127.0.0.1:7001/0"),
                ],
                "redis",
                Some("Redis 127.0.0.1:7001"),
                false,
            ),
            (
                &[("HOME", "/h"), ("SCCACHE_BUCKET", "b")],
                "s3",
                Some("Tls s3.us-east-1.amazonaws.com:443"),
                false,
            ),
            (
                &[("HOME", "/h"), ("SCCACHE_WEBDAV_ENDPOINT", "https://dav")],
                "webdav",
                Some("Tls dav:443"),
                false,
            ),
            (
                &[("HOME", "/h"), ("SCCACHE_GCS_BUCKET", "b")],
                "gcs",
                Some("Tls storage.googleapis.com:443"),
                false,
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_GHA_ENABLED", "on"),
                    ("ACTIONS_RESULTS_URL", "u"),
                    ("ACTIONS_RUNTIME_TOKEN", "t"),
                    ("ACTIONS_CACHE_SERVICE_V2", "on"),
                ],
                "gha",
                Some("Tls u:443"),
                false,
            ),
            (
                &[
                    ("SCCACHE_BUCKET", "b"),
                    ("SCCACHE_ENDPOINT", "http://127.0.0.1:9000"),
                    ("SCCACHE_S3_USE_SSL", "false"),
                ],
                "s3",
                Some("Http 127.0.0.1:9000"),
                false,
            ),
            (
                &[
                    ("SCCACHE_BUCKET", "b"),
                    ("SCCACHE_ENDPOINT", "minio.lan:9000"),
                ],
                "s3",
                Some("Tls minio.lan:9000"),
                false,
            ),
            (
                &[("SCCACHE_REDIS_ENDPOINT", "rediss://u:pw@cache.lan")],
                "redis",
                Some("Tls cache.lan:6379"),
                false,
            ),
            (
                &[("SCCACHE_MEMCACHED_ENDPOINT", "tcp://mc.lan")],
                "memcached",
                Some("Memcached mc.lan:11211"),
                false,
            ),
            (
                &[(
                    "SCCACHE_AZURE_CONNECTION_STRING",
                    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k",
                )],
                "azure",
                Some("Tls acct.blob.core.windows.net:443"),
                false,
            ),
            (
                &[("SCCACHE_WEBDAV_ENDPOINT", "http://127.0.0.1:8080/cache")],
                "webdav",
                Some("Http 127.0.0.1:8080"),
                false,
            ),
            // Asked for, partly present: local disk, and a notice naming what is missing.
            (
                &[
                    ("HOME", "/h"),
                    ("SCCACHE_GHA_ENABLED", "on"),
                    ("ACTIONS_RESULTS_URL", "u"),
                ],
                "local",
                None,
                true,
            ),
            // What a runner or act exposes to every step, without asking for that backend: no notice.
            (
                &[
                    ("HOME", "/h"),
                    ("ACTIONS_RUNTIME_TOKEN", "t"),
                    ("ACTIONS_RESULTS_URL", "u"),
                ],
                "local",
                None,
                false,
            ),
        ];
        for (vars, kind, health, noticed) in cases {
            let (backend, notices) = requested_backend(&HostEnv::fixture(vars));
            assert_eq!(backend.kind(), *kind, "{vars:?}");
            if let Backend::Remote { health: h, .. } = &backend {
                let h = h.as_ref().map(|e| format!("{:?} {}", e.protocol, e.addr));
                assert_eq!(h.as_deref(), *health, "{vars:?}");
            }
            assert_eq!(!notices.is_empty(), *noticed, "{vars:?}: {notices:?}");
        }
        let (_, notices) = requested_backend(&HostEnv::fixture(&[
            ("SCCACHE_GHA_ENABLED", "on"),
            ("ACTIONS_RESULTS_URL", "u"),
        ]));
        assert!(
            notices[0].contains("ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2 missing"),
            "{notices:?}"
        );
    }

    #[test]
    fn compile_env_table() {
        let wrapper = Path::new("/t/venv/bin/sccache");
        let local = Backend::Local {
            dir: "/h/.cache/sccache".into(),
        };
        let redis = Backend::Remote {
            kind: RemoteKind::Redis,
            health: None,
        };
        // (wrapper, backend, RUSTC_WRAPPER, CARGO_INCREMENTAL, SCCACHE_DIR, SCCACHE_REDIS_ENDPOINT)
        let cases = [
            (None, &Backend::Disabled, Some(Some("")), None, None, None),
            (
                Some(wrapper),
                &local,
                Some(Some("/t/venv/bin/sccache")),
                Some(Some("0")),
                Some(Some("/h/.cache/sccache")),
                Some(None),
            ),
            (
                Some(wrapper),
                &redis,
                Some(Some("/t/venv/bin/sccache")),
                Some(Some("0")),
                None,
                None,
            ),
        ];
        for (wrapper, backend, rustc_wrapper, incremental, dir, redis_var) in cases {
            let env = compile_env(wrapper, backend);
            let owned = |o: Option<Option<&str>>| o.map(|v| v.map(str::to_string));
            assert_eq!(
                env_of(&env, "RUSTC_WRAPPER"),
                owned(rustc_wrapper),
                "{backend:?}"
            );
            assert_eq!(
                env_of(&env, "CARGO_INCREMENTAL"),
                owned(incremental),
                "{backend:?}"
            );
            assert_eq!(env_of(&env, "SCCACHE_DIR"), owned(dir), "{backend:?}");
            assert_eq!(
                env_of(&env, "SCCACHE_REDIS_ENDPOINT"),
                owned(redis_var),
                "{backend:?}"
            );
            assert_eq!(env_of(&env, "CARGO_BUILD_RUSTC_WRAPPER"), Some(None));
        }
    }
}
