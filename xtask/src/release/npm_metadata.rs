//! The npm packages' metadata beyond name and version: what napi-rs copies from the main package.json
//! into every platform package, and the `repository` npm's provenance checks against the repository the
//! workflow runs in (a package without it, or with another, is refused: E422).

use serde_json::{Value, json};

use super::preflight::normal_repo;

/// The fields napi-rs's `create-npm-dirs` copies into each platform package.
pub const COPIED: [&str; 9] = [
    "keywords",
    "author",
    "authors",
    "homepage",
    "license",
    "engines",
    "publishConfig",
    "repository",
    "bugs",
];

/// `from`'s copied fields set on `to` (those `from` has).
pub fn copy_fields(from: &Value, to: &mut Value) {
    for field in COPIED {
        if let (Some(value), Some(map)) = (from.get(field), to.as_object_mut()) {
            map.insert(field.to_string(), value.clone());
        }
    }
}

/// The repository a release job runs in: `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY` on GitHub.
pub fn github_repository(
    github: bool,
    server: Option<&str>,
    repository: Option<&str>,
) -> Option<String> {
    match (github, server, repository) {
        (true, Some(server), Some(repo)) => {
            Some(format!("{}/{repo}", server.trim_end_matches('/')))
        }
        _ => None,
    }
}

/// The SDK's package.json with `repository` (and `homepage`, `bugs` where missing) from the repository
/// the release runs in, when it names none; an error when it names another.
pub fn with_repository(sdk: &Value, running_in: Option<&str>) -> Result<Value, String> {
    let Some(repo) = running_in else {
        return Ok(sdk.clone());
    };
    let mut pkg = sdk.clone();
    let named = match &sdk["repository"] {
        Value::String(url) => Some(url.as_str()),
        other => other["url"].as_str(),
    };
    if let Some(url) = named {
        return match normal_repo(url) == normal_repo(repo) {
            true => Ok(pkg),
            false => Err(format!(
                "sdks/node/package.json names the repository {url}, but the release runs in {repo}: \
                 npm would refuse the provenance (E422); fix `repository`"
            )),
        };
    }
    if let Some(map) = pkg.as_object_mut() {
        map.insert(
            "repository".into(),
            json!({"type": "git", "url": format!("git+{repo}.git")}),
        );
        map.entry("homepage")
            .or_insert_with(|| json!(format!("{repo}#readme")));
        map.entry("bugs")
            .or_insert_with(|| json!({"url": format!("{repo}/issues")}));
    }
    Ok(pkg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_comes_from_where_the_release_runs() {
        let repo = "https://github.com/acme/boxspec";
        let sdk = json!({"name": "boxspec", "license": "MIT"});
        assert_eq!(with_repository(&sdk, None).unwrap(), sdk);
        let filled = with_repository(&sdk, Some(repo)).unwrap();
        assert_eq!(
            filled["repository"]["url"],
            "git+https://github.com/acme/boxspec.git"
        );
        assert_eq!(
            filled["bugs"]["url"],
            "https://github.com/acme/boxspec/issues"
        );
        let own =
            json!({"repository": {"type": "git", "url": "https://github.com/acme/boxspec.git"}});
        assert_eq!(with_repository(&own, Some(repo)).unwrap(), own);
        let other = json!({"repository": "https://github.com/else/boxspec"});
        assert!(
            with_repository(&other, Some(repo))
                .unwrap_err()
                .contains("E422")
        );
        assert_eq!(
            github_repository(true, Some("https://github.com/"), Some("acme/boxspec")).as_deref(),
            Some(repo)
        );
        assert_eq!(
            github_repository(false, Some("https://github.com"), Some("a/b")),
            None
        );
    }

    #[test]
    fn platform_packages_get_what_napi_rs_copies() {
        let main = json!({"name": "boxspec", "license": "MIT", "keywords": ["box"],
            "repository": {"url": "git+https://x/y.git"}, "scripts": {"build": "napi"}});
        let mut pkg = json!({"name": "boxspec-linux-x64-gnu"});
        copy_fields(&main, &mut pkg);
        assert_eq!(pkg["keywords"], json!(["box"]));
        assert_eq!(pkg["repository"]["url"], "git+https://x/y.git");
        assert!(pkg.get("scripts").is_none() && pkg.get("author").is_none());
    }
}
