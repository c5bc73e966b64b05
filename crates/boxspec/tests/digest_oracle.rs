//! An independent oracle for the spec digest.
//!
//! `examples/box.digest` was produced by this crate, so comparing against it alone proves only
//! that the code agrees with itself. Here a few lines of Python (standard library only)
//! re-implement the canonical form from the rules in `src/lib.rs`, and its digest must match
//! both the committed file and `boxspec::digest`:
//!
//! - fields in the order image, cpus, memory, env, mounts, ports; defaults cpus 1,
//!   memory 512 MiB, env {}, mounts [], ports [], readonly false, protocol "tcp";
//! - memory as integer bytes: a string is `<digits><unit>`, unit (any case) one of
//!   "", B, or K/M/G/T optionally followed by B, I or IB, all binary (1024-based);
//! - env keys sorted; mounts sorted by target; ports sorted by (host, protocol, container);
//!   each mount as {source, target, readonly}, each port as {host, container, protocol};
//! - compact JSON (no whitespace), non-ASCII written as UTF-8, only `"`, `\` and control
//!   characters escaped; the digest is `sha256:` + lowercase hex of those UTF-8 bytes.
//!
//! The oracle normalises valid specs only: validation is the library's job and is not repeated.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

const EXAMPLE: &str = include_str!("../../../examples/box.json");
const EXAMPLE_DIGEST: &str = include_str!("../../../examples/box.digest");

/// Reads a spec on stdin; prints its canonical JSON, then its digest, one per line.
const ORACLE: &str = r#"
import hashlib, json, sys

spec = json.loads(sys.stdin.buffer.read())
units = {"": 1, "B": 1}
for power, letter in enumerate("KMGT", 1):
    for tail in ("", "B", "I", "IB"):
        units[letter + tail] = 1024**power
memory = spec.get("memory", 512 * 1024**2)
if isinstance(memory, str):
    n = len(memory) - len(memory.lstrip("0123456789"))
    memory = int(memory[:n]) * units[memory[n:].upper()]
mounts = [{"source": m["source"], "target": m["target"], "readonly": m.get("readonly", False)}
          for m in spec.get("mounts", [])]
ports = [{"host": p["host"], "container": p["container"], "protocol": p.get("protocol", "tcp")}
         for p in spec.get("ports", [])]
canonical = {
    "image": spec["image"],
    "cpus": spec.get("cpus", 1),
    "memory": memory,
    "env": dict(sorted(spec.get("env", {}).items())),
    "mounts": sorted(mounts, key=lambda m: m["target"]),
    "ports": sorted(ports, key=lambda p: (p["host"], p["protocol"], p["container"])),
}
text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
sys.stdout.buffer.write(text + b"\nsha256:" + hashlib.sha256(text).hexdigest().encode() + b"\n")
"#;

/// The Python oracle's (canonical JSON, digest) for `spec`.
fn oracle(spec: &str) -> (String, String) {
    let mut child = Command::new("python3")
        .args(["-I", "-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be on PATH to run the digest oracle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "python oracle failed ({}) for {spec}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (canonical, digest) = stdout
        .strip_suffix('\n')
        .and_then(|s| s.split_once('\n'))
        .unwrap_or_else(|| panic!("unexpected oracle output {stdout:?}"));
    (canonical.to_string(), digest.to_string())
}

/// Asserts that Python and the library agree on `spec`; returns the digest.
fn assert_agrees(spec: &str) -> String {
    let (py_canonical, py_digest) = oracle(spec);
    let rust_digest = boxspec::digest(spec).unwrap_or_else(|e| panic!("{e}: {spec}"));
    assert_eq!(
        rust_digest,
        py_digest,
        "digest differs for {spec}\n  rust canonical:   {}\n  python canonical: {py_canonical}",
        boxspec::normalize(spec).unwrap()
    );
    rust_digest
}

#[test]
fn example_digest_matches_python_oracle() {
    let committed = EXAMPLE_DIGEST.trim_end();
    assert_eq!(
        oracle(EXAMPLE).1,
        committed,
        "oracle vs examples/box.digest"
    );
    assert_eq!(
        assert_agrees(EXAMPLE),
        committed,
        "library vs examples/box.digest"
    );
}

#[test]
fn reordered_example_with_spelled_out_defaults_has_the_same_digest() {
    // examples/box.json with every object's keys and every list in another order, memory in
    // another spelling, and the defaults (readonly false, protocol tcp) written out.
    let spec = r#"{
        "ports": [
            {"protocol": "udp", "container": 53, "host": 5353},
            {"container": 8080, "protocol": "tcp", "host": 8080}
        ],
        "mounts": [
            {"readonly": true, "target": "/etc/app", "source": "./config"},
            {"target": "/var/lib/app", "readonly": false, "source": "./data"}
        ],
        "env": {"APP_PORT": "8080", "RUST_LOG": "info", "DATABASE_URL": "postgres://app@db:5432/app"},
        "memory": "2gib",
        "cpus": 2,
        "image": "ghcr.io/example/webapp:1.4.2"
    }"#;
    assert_eq!(assert_agrees(spec), EXAMPLE_DIGEST.trim_end());
}

#[test]
fn other_specs_agree_with_python_oracle() {
    let specs = [
        // Every default.
        r#"{"image":"alpine"}"#,
        // Memory as bytes; same host port on both protocols; unsorted everything.
        r#"{"image":"a","cpus":64,"memory":8388608,
            "env":{"_z":"1","A1":"2","a":"3"},
            "mounts":[{"source":"s","target":"/z"},{"source":"t","target":"/a/b"},{"source":"u","target":"/a"}],
            "ports":[{"host":53,"container":53,"protocol":"udp"},{"host":53,"container":5353},{"host":1,"container":65535}]}"#,
        // Strings that need escaping, non-ASCII and unit spellings.
        r#"{"image":"registry.example/ünï:cödé","memory":"1536M",
            "env":{"Q":"say \"hi\"\\ \/ tab\t nl\n ctl\u0001 del\u007f","U":"caf\u00e9 \u2028 \ud83d\ude00 日本"},
            "mounts":[{"source":"./dätä ☃","target":"/mnt/ø","readonly":true}]}"#,
        r#"{"image":"a","memory":"4096kib"}"#,
        r#"{"image":"a","memory":"256Gb"}"#,
    ];
    let digests: BTreeSet<String> = specs.iter().map(|s| assert_agrees(s)).collect();
    assert_eq!(
        digests.len(),
        specs.len(),
        "distinct specs, distinct digests"
    );
}
