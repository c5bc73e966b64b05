//! Distributed compilation with sccache-dist: asked for as sccache users ask (a client config file with
//! `[dist] scheduler_url`, read from `SCCACHE_CONF` or sccache's default path), or with `--dist URL` and
//! `XTASK_DIST_TOKEN` (the driver then writes such a file for the run). Checked before anything is
//! built: a URL that is not one, a missing or malformed token, a file sccache cannot parse are usage
//! errors. `dist_probe` then decides whether the scheduler really serves compiles.

use std::fs;
use std::path::{Path, PathBuf};

use crate::flags::UsageError;
use crate::host::HostEnv;

/// Where the request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// `--dist URL` / `XTASK_DIST_SCHEDULER`, with `XTASK_DIST_TOKEN`.
    Flag,
    /// `[dist] scheduler_url` in sccache's client config file.
    Config,
}

/// A distributed setup asked for, before anything is known about the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistRequest {
    pub asked: Asked,
    /// The user's sccache config file, if one exists (its other settings are kept).
    pub user_conf: Option<PathBuf>,
    /// The scheduler, as `http(s)://host[:port]/`.
    pub scheduler: String,
    /// The client token, when the driver can read it (a `token` auth).
    pub token: Option<String>,
}

impl DistRequest {
    /// How the notices name the setting.
    pub fn setting(&self) -> String {
        match (self.asked, &self.user_conf) {
            (Asked::Flag, _) => "--dist".into(),
            (Asked::Config, Some(path)) => format!("[dist] scheduler_url in {}", path.display()),
            (Asked::Config, None) => "[dist] scheduler_url".into(),
        }
    }
}

/// The config file sccache reads: `SCCACHE_CONF`, else its default path (`~/.config/sccache/config` on
/// Linux, `~/Library/Application Support/Mozilla.sccache/config` on macOS).
pub fn user_conf_path(host: &HostEnv) -> Option<PathBuf> {
    if let Some(conf) = host.var("SCCACHE_CONF").filter(|c| !c.is_empty()) {
        return Some(PathBuf::from(conf));
    }
    let home = PathBuf::from(host.var("HOME").filter(|h| !h.is_empty())?);
    Some(match cfg!(target_os = "macos") {
        true => home.join("Library/Application Support/Mozilla.sccache/config"),
        false => match host.var("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
            Some(xdg) => Path::new(xdg).join("sccache/config"),
            None => home.join(".config/sccache/config"),
        },
    })
}

/// The distributed setup asked for, if any: `flag` is `--dist`'s value, `conf` the config file's path
/// and text (when it exists).
pub fn requested(
    flag: Option<&str>,
    token: Option<&str>,
    conf: Option<(&Path, &str)>,
) -> Result<Option<DistRequest>, UsageError> {
    let user_conf = conf.map(|(path, _)| path.to_path_buf());
    if let Some(url) = flag.filter(|u| !u.is_empty()) {
        return from_flag(url, token, user_conf).map(Some);
    }
    from_conf(conf, user_conf)
}

/// `--dist URL` with `XTASK_DIST_TOKEN`.
fn from_flag(
    url: &str,
    token: Option<&str>,
    user_conf: Option<PathBuf>,
) -> Result<DistRequest, UsageError> {
    let scheduler = scheduler_url(url).map_err(|why| {
        UsageError(format!(
            "--dist {url:?} (XTASK_DIST_SCHEDULER) is not a scheduler URL: {why}"
        ))
    })?;
    let token = match token.filter(|t| !t.is_empty()) {
        None => {
            return Err(UsageError(
                "--dist needs XTASK_DIST_TOKEN: the token of the scheduler's [client_auth]".into(),
            ));
        }
        Some(t) => t,
    };
    if let Err(why) = header_value(token) {
        return Err(UsageError(format!(
            "XTASK_DIST_TOKEN is not a valid token: {why}"
        )));
    }
    let token = Some(token.to_string());
    Ok(DistRequest {
        asked: Asked::Flag,
        user_conf,
        scheduler,
        token,
    })
}

/// `[dist] scheduler_url` in sccache's config file, if the file sets it.
fn from_conf(
    conf: Option<(&Path, &str)>,
    user_conf: Option<PathBuf>,
) -> Result<Option<DistRequest>, UsageError> {
    let Some((path, text)) = conf else {
        return Ok(None);
    };
    let Some(url) = value_in(text, "dist", "scheduler_url") else {
        return Ok(None);
    };
    let scheduler = scheduler_url(&url).map_err(|why| {
        UsageError(format!(
            "[dist] scheduler_url {url:?} in {} is not a scheduler URL: {why}",
            path.display()
        ))
    })?;
    let token = token_in(text);
    if let Some(t) = &token
        && let Err(why) = header_value(t)
    {
        return Err(UsageError(format!(
            "[dist.auth] token in {} is not a valid token: {why}",
            path.display()
        )));
    }
    Ok(Some(DistRequest {
        asked: Asked::Config,
        user_conf,
        scheduler,
        token,
    }))
}

/// The client token of a `token` auth in the file, if the driver can read it.
pub fn token_in(text: &str) -> Option<String> {
    value_in(text, "dist.auth", "token").or_else(|| inline_token(text))
}

/// sccache's own rule (`parse_http_url`): http or https, a host, no path; a bare `host:port` means http.
pub fn scheduler_url(url: &str) -> Result<String, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters".into());
    }
    let rest = match url.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some((scheme, _)) => return Err(format!("the scheme is {scheme}, not http or https")),
        None if url.parse::<std::net::SocketAddr>().is_ok() => return Ok(format!("http://{url}/")),
        None => return Err("it has no http:// or https:// scheme".into()),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() || authority.contains('@') {
        return Err("it names no host".into());
    }
    if !matches!(path, "" | "/") {
        return Err(format!("sccache takes no path ({path})"));
    }
    let port = authority.rsplit_once(':').map(|(_, p)| p);
    if port.is_some_and(|p| !p.is_empty() && p.parse::<u16>().is_err() && !p.ends_with(']')) {
        return Err("its port is not a number".into());
    }
    Ok(format!("{}{authority}/", &url[..url.len() - rest.len()]))
}

/// A token travels as `Authorization: Bearer <token>`: visible ASCII only. The reason never shows it.
pub fn header_value(token: &str) -> Result<(), String> {
    if token.trim() != token {
        return Err("it starts or ends with whitespace".into());
    }
    match token.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        Some(c) if c.is_control() => Err("it contains a control character (a line break?)".into()),
        Some(_) => Err("it contains a character that is not printable ASCII".into()),
        None => Ok(()),
    }
}

/// The string value of `key` in table `[table]` (TOML's common layout; sccache parses the file for real).
fn value_in(text: &str, table: &str, key: &str) -> Option<String> {
    string_value(&value_line(text, table, key)?)
}

/// `auth = { type = "token", token = "…" }` under `[dist]`.
fn inline_token(text: &str) -> Option<String> {
    let auth = value_line(text, "dist", "auth")?;
    let mut fields = auth
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',');
    let field = fields.find(|f| f.split_once('=').is_some_and(|(k, _)| k.trim() == "token"))?;
    string_value(field.split_once('=')?.1)
}

/// The raw value of `key` in table `[table]`.
fn value_line(text: &str, table: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = table_name(line) {
            current = name;
        } else if current == table
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.to_string());
        }
    }
    None
}

fn table_name(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?.trim_start_matches('[');
    let inner = &inner[..inner.find(']')?];
    Some(inner.trim().to_string())
}

fn string_value(v: &str) -> Option<String> {
    let v = v.trim();
    let v = v.split(" #").next().unwrap_or(v).trim();
    let quoted = |q: char| v.strip_prefix(q)?.strip_suffix(q).map(str::to_string);
    quoted('"').or_else(|| quoted('\''))
}

/// The file without its `[dist]` tables: what sccache reads when this run compiles locally.
pub fn without_dist(text: &str) -> String {
    let mut keep = true;
    let mut out = String::new();
    for line in text.lines() {
        if let Some(name) = table_name(line.trim()) {
            keep = name != "dist" && !name.starts_with("dist.");
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The file with the driver's own `[dist]` (from `--dist`): token auth, the client's own toolchain.
pub fn with_dist(text: &str, scheduler: &str, token: &str) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{}\n[dist]\nscheduler_url = \"{}\"\ntoolchains = []\n\n[dist.auth]\ntype = \"token\"\ntoken = \"{}\"\n",
        without_dist(text),
        escape(scheduler),
        escape(token)
    )
}

/// Writes a config for this run, readable by its user only (it may hold the token).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let _ = fs::remove_file(path);
    let mut file = (fs::OpenOptions::new().write(true).create_new(true))
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_urls_as_sccache_reads_them() {
        let cases = [
            ("http://127.0.0.1:10600", Ok("http://127.0.0.1:10600/")),
            (
                "https://sccache.example.com/",
                Ok("https://sccache.example.com/"),
            ),
            ("127.0.0.1:10600", Ok("http://127.0.0.1:10600/")),
            ("ftp://host", Err("the scheme is ftp, not http or https")),
            ("http://host/api", Err("sccache takes no path (/api)")),
            ("scheduler", Err("it has no http:// or https:// scheme")),
            ("http://", Err("it names no host")),
            ("http://host:port", Err("its port is not a number")),
            (
                "http://a b",
                Err("it contains spaces or control characters"),
            ),
        ];
        for (url, want) in cases {
            let want = want.map(str::to_string).map_err(str::to_string);
            assert_eq!(scheduler_url(url), want, "{url}");
        }
    }

    fn ask(
        flag: Option<&str>,
        token: Option<&str>,
        conf: Option<&str>,
    ) -> Result<Option<DistRequest>, String> {
        let path = Path::new("/home/u/.config/sccache/config");
        requested(flag, token, conf.map(|text| (path, text))).map_err(|e| e.0)
    }

    /// The table of what is asked and what it means; usage errors name the setting, never the token.
    #[test]
    fn what_is_asked() {
        let conf = "[cache.disk]\ndir = \"/c\"\n\n[dist]\nscheduler_url = \"http://10.0.0.1:10600\"\ntoolchains = []\n[dist.auth]\ntype = \"token\"\ntoken = \"s3cret\"\n";
        let got = ask(None, None, Some(conf)).unwrap().unwrap();
        assert_eq!(
            (got.asked, got.scheduler.as_str()),
            (Asked::Config, "http://10.0.0.1:10600/")
        );
        assert_eq!(got.token.as_deref(), Some("s3cret"));
        let inline =
            "[dist]\nscheduler_url = 'http://h:1'\nauth = { type = \"token\", token = \"t0k\" }\n";
        assert_eq!(
            ask(None, None, Some(inline))
                .unwrap()
                .unwrap()
                .token
                .as_deref(),
            Some("t0k")
        );
        assert_eq!(
            ask(None, None, Some("[cache.disk]\ndir = \"/c\"\n")),
            Ok(None)
        );
        assert_eq!(ask(None, Some("tok"), None), Ok(None));
        let flag = ask(Some("http://h:10600"), Some("tok"), Some(conf))
            .unwrap()
            .unwrap();
        assert_eq!(
            (flag.asked, flag.token.as_deref()),
            (Asked::Flag, Some("tok"))
        );
        let errors = [
            (
                ask(Some("h"), Some("tok"), None),
                "--dist \"h\" (XTASK_DIST_SCHEDULER) is not a scheduler URL",
            ),
            (
                ask(Some("http://h:1"), None, None),
                "--dist needs XTASK_DIST_TOKEN",
            ),
            (
                ask(Some("http://h:1"), Some("a\nb"), None),
                "XTASK_DIST_TOKEN is not a valid token: it contains a control character",
            ),
            (
                ask(None, None, Some("[dist]\nscheduler_url = \"x\"\n")),
                "[dist] scheduler_url \"x\" in /home/u/.config/sccache/config",
            ),
            (
                ask(
                    None,
                    None,
                    Some("[dist]\nscheduler_url = \"http://h:1\"\n[dist.auth]\ntoken = \"é\"\n"),
                ),
                "[dist.auth] token in /home/u/.config/sccache/config is not a valid token",
            ),
        ];
        for (got, needle) in errors {
            let err = got.unwrap_err();
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains("a\nb") && !err.contains('é'), "{err}");
        }
    }

    #[test]
    fn the_local_config_keeps_all_but_dist() {
        let conf = "server_startup_timeout_ms = 5000\n[dist]\nscheduler_url = \"http://h:1\"\n[[dist.toolchains]]\ntype = \"no_dist\"\ncompiler_executable = \"/x\"\n[cache.disk]\ndir = \"/c\"\n";
        assert_eq!(
            without_dist(conf),
            "server_startup_timeout_ms = 5000\n[cache.disk]\ndir = \"/c\"\n"
        );
        let ours = with_dist(conf, "http://h:2/", "a\"b");
        assert!(
            ours.contains("scheduler_url = \"http://h:2/\"") && ours.contains("token = \"a\\\"b\""),
            "{ours}"
        );
        assert!(
            !ours.contains("http://h:1") && ours.contains("[cache.disk]"),
            "{ours}"
        );
    }

    #[test]
    fn the_config_path_is_sccaches() {
        let host = HostEnv::fixture(&[("HOME", "/home/u"), ("SCCACHE_CONF", "/etc/sc.conf")]);
        assert_eq!(user_conf_path(&host), Some(PathBuf::from("/etc/sc.conf")));
        let host = HostEnv::fixture(&[("HOME", "/home/u")]);
        if !cfg!(target_os = "macos") {
            assert_eq!(
                user_conf_path(&host),
                Some(PathBuf::from("/home/u/.config/sccache/config"))
            );
        }
    }
}
