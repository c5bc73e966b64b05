//! Secret values never reach the output: names that look secret and URL passwords are masked, in plans
//! (`--dry-run`) and in everything a child prints. Masking is for what a person reads: checks see the real
//! text. Identifiers (an access key ID, a key prefix) are not secrets and are shown as they are.

use std::collections::BTreeMap;

/// Values of variables with these words in their names are never printed.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "CONNECTION_STRING",
];

pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // A key prefix (`SCCACHE_S3_KEY_PREFIX`) names a folder and a key ID (`AWS_ACCESS_KEY_ID`) names a
    // key, neither is one (GitHub does not mask them either): masking them hid common words.
    if upper.ends_with("KEY_PREFIX") || upper.ends_with("KEY_ID") {
        return false;
    }
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// The printable form of an environment value: secrets become `***`, and so does the password of a
/// `scheme://user:password@host` URL.
pub fn mask_value(name: &str, value: &str) -> String {
    if is_secret_name(name) && !value.is_empty() {
        return "***".to_string();
    }
    match url_password(value) {
        Some(pw) => value.replacen(pw, "***", 1),
        None => value.to_string(),
    }
}

/// The password part of `scheme://[user]:password@host...`, if any.
pub fn url_password(value: &str) -> Option<&str> {
    let rest = &value[value.find("://")? + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let pw = &userinfo[userinfo.find(':')? + 1..];
    (!pw.is_empty()).then_some(pw)
}

/// Every secret value in the environment: whole values of secret-named variables, and URL passwords.
pub fn secret_values(vars: &BTreeMap<String, String>) -> Vec<String> {
    let mut secrets: Vec<String> = vars
        .iter()
        .filter_map(|(name, value)| match is_secret_name(name) {
            true => Some(value.as_str()),
            false => url_password(value),
        })
        .filter(|v| v.len() >= 4)
        .map(str::to_string)
        .collect();
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

pub fn mask_text(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        let cases = [
            ("ACTIONS_RUNTIME_TOKEN", "abc", "***"),
            ("AWS_SECRET_ACCESS_KEY", "abc", "***"),
            (
                "SCCACHE_REDIS_ENDPOINT",
                "redis://:hunter2@10.0.0.1:6379",
                "redis://:***@10.0.0.1:6379",
            ),
            (
                "SCCACHE_REDIS_ENDPOINT",
                "redis://bob:pw@h/0",
                "redis://bob:***@h/0",
            ),
            (
                "SCCACHE_REDIS_ENDPOINT",
                "redis://127.0.0.1:6379",
                "redis://127.0.0.1:6379",
            ),
            ("SCCACHE_WEBDAV_ENDPOINT", "https://h/p@x", "https://h/p@x"),
            ("RUSTC_WRAPPER", "", ""),
            ("SCCACHE_WEBDAV_KEY_PREFIX", "sccache", "sccache"),
            ("SCCACHE_WEBDAV_PASSWORD", "pw-1", "***"),
            ("AWS_ACCESS_KEY_ID", "bars", "bars"),
            ("SCCACHE_WEBDAV_USERNAME", "bars", "bars"),
        ];
        for (name, value, want) in cases {
            assert_eq!(mask_value(name, value), want, "{name}={value}");
        }
    }

    #[test]
    fn secrets_from_the_environment_are_masked_in_any_text() {
        let vars = [
            ("SCCACHE_REDIS_ENDPOINT", "redis://:hunter2@h:1"),
            ("ACTIONS_RUNTIME_TOKEN", "tok-123"),
            ("HOME", "/home/u"),
        ];
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let secrets = secret_values(&vars);
        assert_eq!(secrets, ["tok-123", "hunter2"]);
        let text = "error: connect redis://:hunter2@h:1 with tok-123 in /home/u";
        assert_eq!(
            mask_text(text, &secrets),
            "error: connect redis://:***@h:1 with *** in /home/u"
        );
    }
}
