//! Load, validate and normalise sandbox "box" specs, and give them a stable digest.
//!
//! Validation walks a `serde_json::Value` by hand (rather than `#[derive(Deserialize)]`)
//! so that every error can name the exact field path, e.g. `mounts[1].target`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const MIN_CPUS: i64 = 1;
pub const MAX_CPUS: i64 = 64;
pub const MIN_MEMORY: u64 = 4 * MIB;
pub const MAX_MEMORY: u64 = 256 * GIB;
pub const DEFAULT_CPUS: u32 = 1;
/// Default when `memory` is absent.
pub const DEFAULT_MEMORY: u64 = 512 * MIB;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// A validated, normalised spec. Field order here is the canonical JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub image: String,
    pub cpus: u32,
    /// Bytes.
    pub memory: u64,
    pub env: BTreeMap<String, String>,
    /// Sorted by `target`.
    pub mounts: Vec<Mount>,
    /// Sorted by (host, protocol, container).
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Port {
    pub host: u16,
    pub container: u16,
    pub protocol: Protocol,
}

/// A validation failure: where (`path`, empty for whole-document problems) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    path: String,
    reason: String,
}

impl SpecError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    fn from_json(e: serde_json::Error) -> Self {
        // serde_json appends " at line L column C"; move the location to the front instead.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&suffix).unwrap_or(&full);
        SpecError::new(
            "",
            format!(
                "invalid JSON at line {} column {}: {msg}",
                e.line(),
                e.column()
            ),
        )
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for SpecError {}

/// Parse and validate a spec, returning it normalised.
pub fn validate(json: &str) -> Result<Spec, SpecError> {
    let value: Value = serde_json::from_str(json).map_err(SpecError::from_json)?;
    let Value::Object(obj) = value else {
        return Err(SpecError::new(
            "",
            format!("spec must be a JSON object, got {}", kind(&value)),
        ));
    };
    parse_spec(&obj)
}

/// The canonical JSON form: compact, defaults filled, memory in bytes, collections sorted.
pub fn normalize(json: &str) -> Result<String, SpecError> {
    Ok(validate(json)?.canonical_json())
}

/// `sha256:<hex>` of the canonical JSON.
pub fn digest(json: &str) -> Result<String, SpecError> {
    Ok(validate(json)?.digest())
}

impl Spec {
    pub fn canonical_json(&self) -> String {
        // Cannot fail: only strings, integers, bools, Vecs and BTreeMaps.
        serde_json::to_string(self).expect("Spec serialises")
    }

    pub fn digest(&self) -> String {
        let hash = Sha256::digest(self.canonical_json().as_bytes());
        format!("sha256:{}", hex::encode(hash))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn reject_unknown(obj: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), SpecError> {
    // Map iteration is sorted, so the reported field is deterministic.
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(SpecError::new(
            join(prefix, k),
            format!("unknown field (expected one of: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

fn expect_string<'a>(v: &'a Value, path: &str) -> Result<&'a str, SpecError> {
    v.as_str()
        .ok_or_else(|| SpecError::new(path, format!("must be a string, got {}", kind(v))))
}

/// An integer in `[min, max]`, with the offending value in the error.
fn expect_int_in(v: &Value, path: &str, min: i64, max: i64) -> Result<i64, SpecError> {
    let range_err = |got: &dyn fmt::Display| {
        SpecError::new(path, format!("must be between {min} and {max}, got {got}"))
    };
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if (min..=max).contains(&i) {
                    Ok(i)
                } else {
                    Err(range_err(&i))
                }
            } else if let Some(u) = n.as_u64() {
                Err(range_err(&u))
            } else {
                Err(SpecError::new(path, format!("must be an integer, got {n}")))
            }
        }
        _ => Err(SpecError::new(
            path,
            format!("must be an integer, got {}", kind(v)),
        )),
    }
}

fn parse_spec(obj: &Map<String, Value>) -> Result<Spec, SpecError> {
    reject_unknown(
        obj,
        "",
        &["image", "cpus", "memory", "env", "mounts", "ports"],
    )?;

    let image = match obj.get("image") {
        None => return Err(SpecError::new("image", "is required")),
        Some(v) => parse_image(v)?,
    };
    let cpus = match obj.get("cpus") {
        None => DEFAULT_CPUS,
        Some(v) => expect_int_in(v, "cpus", MIN_CPUS, MAX_CPUS)? as u32,
    };
    let memory = match obj.get("memory") {
        None => DEFAULT_MEMORY,
        Some(v) => parse_memory(v)?,
    };
    let env = match obj.get("env") {
        None => BTreeMap::new(),
        Some(v) => parse_env(v)?,
    };
    let mounts = match obj.get("mounts") {
        None => Vec::new(),
        Some(v) => parse_mounts(v)?,
    };
    let ports = match obj.get("ports") {
        None => Vec::new(),
        Some(v) => parse_ports(v)?,
    };
    Ok(Spec {
        image,
        cpus,
        memory,
        env,
        mounts,
        ports,
    })
}

fn parse_image(v: &Value) -> Result<String, SpecError> {
    let s = expect_string(v, "image")?;
    if s.is_empty() {
        return Err(SpecError::new("image", "must not be empty"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(SpecError::new("image", "must not contain whitespace"));
    }
    Ok(s.to_string())
}

fn parse_memory(v: &Value) -> Result<u64, SpecError> {
    let bytes = match v {
        Value::Number(n) => match n.as_u64() {
            Some(b) => b,
            None => {
                return Err(SpecError::new(
                    "memory",
                    format!("must be a non-negative integer number of bytes, got {n}"),
                ));
            }
        },
        Value::String(s) => parse_size(s).ok_or_else(|| {
            SpecError::new(
                "memory",
                format!(
                    "invalid size {s:?} (expected bytes or a number with suffix K, M, G or T, e.g. \"512M\")"
                ),
            )
        })?,
        _ => {
            return Err(SpecError::new(
                "memory",
                format!("must be a string or an integer, got {}", kind(v)),
            ));
        }
    };
    if !(MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
        return Err(SpecError::new(
            "memory",
            format!(
                "must be between 4M ({MIN_MEMORY} bytes) and 256G ({MAX_MEMORY} bytes), got {bytes} bytes"
            ),
        ));
    }
    Ok(bytes)
}

/// `"<digits>[K|M|G|T]"` (binary units, case-insensitive suffix, optional `i`/`iB`/`B`).
fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KI" | "KIB" => KIB,
        "M" | "MB" | "MI" | "MIB" => MIB,
        "G" | "GB" | "GI" | "GIB" => GIB,
        "T" | "TB" | "TI" | "TIB" => TIB,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_env(v: &Value) -> Result<BTreeMap<String, String>, SpecError> {
    let Value::Object(obj) = v else {
        return Err(SpecError::new(
            "env",
            format!("must be an object, got {}", kind(v)),
        ));
    };
    let mut env = BTreeMap::new();
    for (k, val) in obj {
        // JSON-quoted so odd keys (dots, spaces, empty) stay readable in the path.
        let path = format!("env[{}]", Value::String(k.clone()));
        if !is_env_name(k) {
            return Err(SpecError::new(
                path,
                "invalid variable name (must match [A-Za-z_][A-Za-z0-9_]*)",
            ));
        }
        env.insert(k.clone(), expect_string(val, &path)?.to_string());
    }
    Ok(env)
}

fn expect_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, SpecError> {
    v.as_array()
        .ok_or_else(|| SpecError::new(path, format!("must be an array, got {}", kind(v))))
}

fn expect_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SpecError> {
    v.as_object()
        .ok_or_else(|| SpecError::new(path, format!("must be an object, got {}", kind(v))))
}

fn parse_mounts(v: &Value) -> Result<Vec<Mount>, SpecError> {
    let items = expect_array(v, "mounts")?;
    let mut mounts: Vec<Mount> = Vec::with_capacity(items.len());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("mounts[{i}]");
        let obj = expect_object(item, &p)?;
        reject_unknown(obj, &p, &["source", "target", "readonly"])?;

        let source = required_string(obj, &p, "source")?;
        if source.is_empty() {
            return Err(SpecError::new(join(&p, "source"), "must not be empty"));
        }
        let target = required_string(obj, &p, "target")?;
        if !target.starts_with('/') {
            return Err(SpecError::new(
                join(&p, "target"),
                "must be an absolute path",
            ));
        }
        let readonly = match obj.get("readonly") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(SpecError::new(
                    join(&p, "readonly"),
                    format!("must be a boolean, got {}", kind(other)),
                ));
            }
        };
        if let Some(first) = seen.insert(target.to_string(), i) {
            return Err(SpecError::new(
                join(&p, "target"),
                format!("duplicate target {target:?} (also used by mounts[{first}])"),
            ));
        }
        mounts.push(Mount {
            source: source.to_string(),
            target: target.to_string(),
            readonly,
        });
    }
    mounts.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(mounts)
}

fn required_string<'a>(
    obj: &'a Map<String, Value>,
    prefix: &str,
    field: &str,
) -> Result<&'a str, SpecError> {
    let path = join(prefix, field);
    match obj.get(field) {
        None => Err(SpecError::new(path, "is required")),
        Some(v) => expect_string(v, &path),
    }
}

fn parse_ports(v: &Value) -> Result<Vec<Port>, SpecError> {
    let items = expect_array(v, "ports")?;
    let mut ports: Vec<Port> = Vec::with_capacity(items.len());
    let mut seen: BTreeMap<(u16, Protocol), usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("ports[{i}]");
        let obj = expect_object(item, &p)?;
        reject_unknown(obj, &p, &["host", "container", "protocol"])?;

        let port = |field: &str| -> Result<u16, SpecError> {
            let path = join(&p, field);
            match obj.get(field) {
                None => Err(SpecError::new(path, "is required")),
                Some(v) => Ok(expect_int_in(v, &path, 1, 65535)? as u16),
            }
        };
        let host = port("host")?;
        let container = port("container")?;
        let protocol = match obj.get("protocol") {
            None => Protocol::Tcp,
            Some(v) => match expect_string(v, &join(&p, "protocol"))? {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                other => {
                    return Err(SpecError::new(
                        join(&p, "protocol"),
                        format!("must be \"tcp\" or \"udp\", got {other:?}"),
                    ));
                }
            },
        };
        if let Some(first) = seen.insert((host, protocol), i) {
            return Err(SpecError::new(
                join(&p, "host"),
                format!("duplicate host port {host}/{protocol} (also used by ports[{first}])"),
            ));
        }
        ports.push(Port {
            host,
            container,
            protocol,
        });
    }
    ports.sort_by_key(|p| (p.host, p.protocol, p.container));
    Ok(ports)
}

#[cfg(test)]
mod tests;
