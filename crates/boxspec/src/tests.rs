use super::*;

const SAMPLE: &str = include_str!("../../../examples/box.json");
const SAMPLE_DIGEST: &str = include_str!("../../../examples/box.digest");

#[test]
fn accepts_good_specs() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"image":"alpine"}"#,
            r#"{"image":"alpine","cpus":1,"memory":536870912,"env":{},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"alpine","cpus":64,"memory":"4M"}"#,
            r#"{"image":"alpine","cpus":64,"memory":4194304,"env":{},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"a","memory":"256G"}"#,
            r#"{"image":"a","cpus":1,"memory":274877906944,"env":{},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"a","memory":"1536m"}"#,
            r#"{"image":"a","cpus":1,"memory":1610612736,"env":{},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"a","memory":"2GiB"}"#,
            r#"{"image":"a","cpus":1,"memory":2147483648,"env":{},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"a","memory":8388608}"#,
            r#"{"image":"a","cpus":1,"memory":8388608,"env":{},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"a","env":{"_b":"2","A1":"1"}}"#,
            r#"{"image":"a","cpus":1,"memory":536870912,"env":{"A1":"1","_b":"2"},"mounts":[],"ports":[]}"#,
        ),
        (
            r#"{"image":"a","mounts":[{"source":"s2","target":"/z"},{"source":"s1","target":"/a","readonly":true}]}"#,
            r#"{"image":"a","cpus":1,"memory":536870912,"env":{},"mounts":[{"source":"s1","target":"/a","readonly":true},{"source":"s2","target":"/z","readonly":false}],"ports":[]}"#,
        ),
        (
            // Same host port on different protocols is allowed.
            r#"{"image":"a","ports":[{"host":53,"container":53,"protocol":"udp"},{"host":53,"container":53},{"host":1,"container":65535}]}"#,
            r#"{"image":"a","cpus":1,"memory":536870912,"env":{},"mounts":[],"ports":[{"host":1,"container":65535,"protocol":"tcp"},{"host":53,"container":53,"protocol":"tcp"},{"host":53,"container":53,"protocol":"udp"}]}"#,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(normalize(input).as_deref(), Ok(*want), "input: {input}");
    }
}

#[test]
fn rejects_bad_specs() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"[]"#, "", "spec must be a JSON object, got an array"),
        (r#"{}"#, "image", "is required"),
        (r#"{"image":""}"#, "image", "must not be empty"),
        (r#"{"image":"a b"}"#, "image", "must not contain whitespace"),
        (r#"{"image":7}"#, "image", "must be a string, got a number"),
        (
            r#"{"image":"a","extra":1}"#,
            "extra",
            "unknown field (expected one of: image, cpus, memory, env, mounts, ports)",
        ),
        (
            r#"{"image":"a","cpus":0}"#,
            "cpus",
            "must be between 1 and 64, got 0",
        ),
        (
            r#"{"image":"a","cpus":65}"#,
            "cpus",
            "must be between 1 and 64, got 65",
        ),
        (
            r#"{"image":"a","cpus":-3}"#,
            "cpus",
            "must be between 1 and 64, got -3",
        ),
        (
            r#"{"image":"a","cpus":1.5}"#,
            "cpus",
            "must be an integer, got 1.5",
        ),
        (
            r#"{"image":"a","cpus":"2"}"#,
            "cpus",
            "must be an integer, got a string",
        ),
        (
            r#"{"image":"a","memory":"3M"}"#,
            "memory",
            "must be between 4M (4194304 bytes) and 256G (274877906944 bytes), got 3145728 bytes",
        ),
        (
            r#"{"image":"a","memory":"257G"}"#,
            "memory",
            "must be between 4M (4194304 bytes) and 256G (274877906944 bytes), got 275951648768 bytes",
        ),
        (
            r#"{"image":"a","memory":"12X"}"#,
            "memory",
            "invalid size \"12X\" (expected bytes or a number with suffix K, M, G or T, e.g. \"512M\")",
        ),
        (
            r#"{"image":"a","memory":"G"}"#,
            "memory",
            "invalid size \"G\" (expected bytes or a number with suffix K, M, G or T, e.g. \"512M\")",
        ),
        (
            r#"{"image":"a","memory":-1}"#,
            "memory",
            "must be a non-negative integer number of bytes, got -1",
        ),
        (
            r#"{"image":"a","memory":true}"#,
            "memory",
            "must be a string or an integer, got a boolean",
        ),
        (
            r#"{"image":"a","env":[]}"#,
            "env",
            "must be an object, got an array",
        ),
        (
            r#"{"image":"a","env":{"1A":"x"}}"#,
            "env[\"1A\"]",
            "invalid variable name (must match [A-Za-z_][A-Za-z0-9_]*)",
        ),
        (
            r#"{"image":"a","env":{"A-B":"x"}}"#,
            "env[\"A-B\"]",
            "invalid variable name (must match [A-Za-z_][A-Za-z0-9_]*)",
        ),
        (
            r#"{"image":"a","env":{"A":1}}"#,
            "env[\"A\"]",
            "must be a string, got a number",
        ),
        (
            r#"{"image":"a","mounts":{}}"#,
            "mounts",
            "must be an array, got an object",
        ),
        (
            r#"{"image":"a","mounts":[{"source":"s","target":"/a"},{"source":"s","target":"rel"}]}"#,
            "mounts[1].target",
            "must be an absolute path",
        ),
        (
            r#"{"image":"a","mounts":[{"target":"/a"}]}"#,
            "mounts[0].source",
            "is required",
        ),
        (
            r#"{"image":"a","mounts":[{"source":"","target":"/a"}]}"#,
            "mounts[0].source",
            "must not be empty",
        ),
        (
            r#"{"image":"a","mounts":[{"source":"s","target":"/a","readonly":"yes"}]}"#,
            "mounts[0].readonly",
            "must be a boolean, got a string",
        ),
        (
            r#"{"image":"a","mounts":[{"source":"s","target":"/a","rw":true}]}"#,
            "mounts[0].rw",
            "unknown field (expected one of: source, target, readonly)",
        ),
        (
            r#"{"image":"a","mounts":[{"source":"s","target":"/a"},{"source":"t","target":"/b"},{"source":"u","target":"/a"}]}"#,
            "mounts[2].target",
            "duplicate target \"/a\" (also used by mounts[0])",
        ),
        (
            r#"{"image":"a","ports":[{"host":0,"container":80}]}"#,
            "ports[0].host",
            "must be between 1 and 65535, got 0",
        ),
        (
            r#"{"image":"a","ports":[{"host":80,"container":65536}]}"#,
            "ports[0].container",
            "must be between 1 and 65535, got 65536",
        ),
        (
            r#"{"image":"a","ports":[{"host":80}]}"#,
            "ports[0].container",
            "is required",
        ),
        (
            r#"{"image":"a","ports":[{"host":80,"container":80,"protocol":"sctp"}]}"#,
            "ports[0].protocol",
            "must be \"tcp\" or \"udp\", got \"sctp\"",
        ),
        (
            r#"{"image":"a","ports":[{"host":80,"container":80},{"host":80,"container":81,"protocol":"tcp"}]}"#,
            "ports[1].host",
            "duplicate host port 80/tcp (also used by ports[0])",
        ),
        (
            r#"{"image":"a","ports":[7]}"#,
            "ports[0]",
            "must be an object, got a number",
        ),
    ];
    for (input, path, reason) in cases {
        let err = validate(input).expect_err(input);
        assert_eq!(
            (err.path(), err.reason()),
            (*path, *reason),
            "input: {input}"
        );
        let shown = err.to_string();
        if path.is_empty() {
            assert_eq!(shown, *reason);
        } else {
            assert_eq!(shown, format!("{path}: {reason}"));
        }
    }
}

#[test]
fn invalid_json_reports_location() {
    let err = validate("{\n  \"image\": \"a\",\n    ]").unwrap_err();
    assert_eq!(err.path(), "");
    assert!(
        err.to_string()
            .starts_with("invalid JSON at line 3 column 5: "),
        "{err}"
    );
    assert!(!err.to_string().ends_with("column 5"), "{err}");
}

#[test]
fn digest_ignores_key_order_and_spelled_out_defaults() {
    let terse = r#"{"image":"alpine","memory":"1G","env":{"B":"2","A":"1"},
        "mounts":[{"source":"x","target":"/x"}],"ports":[{"host":80,"container":8080}]}"#;
    let verbose = r#"{"ports":[{"protocol":"tcp","container":8080,"host":80}],
        "mounts":[{"readonly":false,"target":"/x","source":"x"}],
        "env":{"A":"1","B":"2"},"memory":1073741824,"cpus":1,"image":"alpine"}"#;
    let d = digest(terse).unwrap();
    assert_eq!(d, digest(verbose).unwrap());
    assert_eq!(normalize(terse).unwrap(), normalize(verbose).unwrap());
    assert!(d.starts_with("sha256:"));
    let hex = &d["sha256:".len()..];
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));

    // Any real change must change the digest.
    assert_ne!(d, digest(&terse.replace("alpine", "alpine2")).unwrap());
}

#[test]
fn normalize_is_idempotent() {
    let once = normalize(SAMPLE).unwrap();
    assert_eq!(normalize(&once).unwrap(), once);
}

#[test]
fn committed_example_digest_matches() {
    assert_eq!(digest(SAMPLE).unwrap(), SAMPLE_DIGEST.trim_end());
    assert!(SAMPLE_DIGEST.ends_with('\n') && SAMPLE_DIGEST.lines().count() == 1);
}
