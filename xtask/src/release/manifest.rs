//! `release.json`: what `release` laid out, in the order `publish` uploads it. One type, written by
//! release (last, so a release that did not finish has none) and read by publish.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::names::{MANIFEST, archive_name, npm_package, sdist_name, wheel_name};
use crate::flags::UsageError;
use crate::platform::Platform;

/// Paths relative to the release directory. (Fields in the order the file has always had them.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// npm package directories, in upload order: the platform packages first, since the main
    /// package's optional dependencies must resolve once it is out.
    pub npm: Vec<String>,
    /// Files for twine: the wheels, then the sdist.
    pub python: Vec<String>,
    /// The runtime archives and their SHA256SUMS.
    pub runtime: Vec<String>,
    pub targets: Vec<String>,
    pub version: String,
}

impl Manifest {
    /// Where each piece of a release of `platforms` goes; `npm_name` is the main package's name.
    pub fn new(version: &str, platforms: &[Platform], npm_name: &str) -> Manifest {
        let each = |f: &dyn Fn(Platform) -> String, last: String| -> Vec<String> {
            platforms.iter().map(|p| f(*p)).chain([last]).collect()
        };
        Manifest {
            npm: each(
                &|p| format!("npm/{}", npm_package(npm_name, p)),
                format!("npm/{npm_name}"),
            ),
            python: each(
                &|p| format!("python/{}", wheel_name(version, p)),
                format!("python/{}", sdist_name(version)),
            ),
            runtime: each(
                &|p| format!("runtime/{}", archive_name(version, p)),
                "runtime/SHA256SUMS".into(),
            ),
            targets: platforms.iter().map(|p| p.triple.to_string()).collect(),
            version: version.to_string(),
        }
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The manifest in `release`, or a usage error when there is none.
    pub fn read(release: &Path) -> Result<Manifest> {
        let path = release.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            UsageError(format!(
                "{} is missing: run `cargo xtask release` first (a release that did not finish has none)",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Os, PLATFORMS};

    #[test]
    fn the_manifest_lists_what_publish_uploads_in_order() {
        let linux: Vec<Platform> = (PLATFORMS.into_iter())
            .filter(|p| p.os == Os::Linux)
            .collect();
        let m = Manifest::new("0.1.0", &linux, "boxspec");
        assert_eq!(
            m.targets,
            ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
        );
        assert_eq!(
            m.npm,
            [
                "npm/boxspec-linux-x64-gnu",
                "npm/boxspec-linux-arm64-gnu",
                "npm/boxspec"
            ]
        );
        assert_eq!(m.python.len(), 3);
        assert_eq!(m.python[2], "python/boxspec-0.1.0.tar.gz");
    }

    /// What release writes, publish reads back; the keys are the file's, sorted as it always had them.
    #[test]
    fn what_release_writes_publish_reads() {
        let m = Manifest::new("0.1.0", &PLATFORMS, "boxspec");
        let text = m.to_text();
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["npm", "python", "runtime", "targets", "version"]);
        assert!(text.starts_with("{\n  \"npm\": [\n"), "{text}");
    }
}
