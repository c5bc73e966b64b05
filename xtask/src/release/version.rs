//! The release's one version: what Cargo.toml, pyproject.toml, the Node SDK's package.json, the tag and
//! every built addon's package.json say must agree.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::read_json;
use crate::host::HostEnv;

/// The one version every source names, or what disagrees. `sources`: (where, what it says).
pub fn one_version(sources: &[(String, Option<String>)]) -> Result<String, String> {
    let said: Vec<String> = (sources.iter())
        .map(|(src, v)| format!("{src}: {}", v.as_deref().unwrap_or("no version")))
        .collect();
    let first = sources.first().and_then(|(_, v)| v.clone());
    match first {
        Some(v)
            if sources
                .iter()
                .all(|(_, w)| w.as_deref() == Some(v.as_str())) =>
        {
            Ok(v)
        }
        _ => Err(format!(
            "the release has no single version: {}",
            said.join("; ")
        )),
    }
}

/// A `v`-prefixed tag's version.
pub fn tag_version(tag: &str) -> Option<String> {
    let v = tag.strip_prefix('v')?;
    (!v.is_empty()).then(|| v.to_string())
}

/// `version = "…"` in pyproject.toml's `[project]` table.
pub fn pyproject_version(text: &str) -> Option<String> {
    let project = text.split("\n[project]").nth(1)?;
    let table = project.split("\n[").next()?;
    let line = (table.lines()).find(|l| l.split('=').next().map(str::trim) == Some("version"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// pyproject.toml may write a prerelease as PEP 440 does (`0.2.0rc1` for Cargo's `0.2.0-rc.1`): the
/// same version, said as Cargo says it.
fn same_in_pep440(said: Option<String>, cargo: &str) -> Option<String> {
    match said {
        Some(v) if v != cargo && super::names::pep440(&v) == super::names::pep440(cargo) => {
            Some(cargo.to_string())
        }
        other => other,
    }
}

/// The version of the release in `artifacts` (`files`: every file there), agreed by every source.
pub fn release_version(
    host: &HostEnv,
    sdk_package: &Value,
    tag: Option<&str>,
    artifacts: &Path,
    files: &[String],
) -> Result<String> {
    let pyproject = std::fs::read_to_string(host.root.join("sdks/python/pyproject.toml"))?;
    let mut sources = vec![
        ("Cargo.toml".to_string(), Some(host.version.clone())),
        (
            "sdks/python/pyproject.toml".to_string(),
            same_in_pep440(pyproject_version(&pyproject), &host.version),
        ),
        (
            "sdks/node/package.json".to_string(),
            sdk_package["version"].as_str().map(str::to_string),
        ),
    ];
    if let Some(tag) = tag {
        sources.push((format!("tag {tag}"), tag_version(tag)));
    }
    // The addons' package.json files were copied from the SDK at build time: they say what was built.
    for file in files.iter().filter(|f| f.ends_with("/package.json")) {
        let built = read_json(&artifacts.join(file))?;
        sources.push((file.clone(), built["version"].as_str().map(str::to_string)));
    }
    one_version(&sources).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::artifacts::tests::V;

    #[test]
    fn one_version_everywhere() {
        let s = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            (pairs.iter())
                .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
                .collect()
        };
        assert_eq!(
            one_version(&s(&[("Cargo.toml", Some(V)), ("tag v0.1.0", Some(V))])),
            Ok(V.to_string())
        );
        let err = one_version(&s(&[
            ("Cargo.toml", Some(V)),
            ("tag v0.2.0", Some("0.2.0")),
        ]))
        .unwrap_err();
        assert!(
            err.contains("Cargo.toml: 0.1.0; tag v0.2.0: 0.2.0"),
            "{err}"
        );
        let err = one_version(&s(&[("Cargo.toml", Some(V)), ("tag 0.1.0", None)])).unwrap_err();
        assert!(err.contains("tag 0.1.0: no version"), "{err}");
        assert_eq!(tag_version("v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(tag_version("1.2.3"), None);
        let pyproject = "[build-system]\nrequires = [\"maturin\"]\n\n[project]\nname = \"boxspec\"\nversion = \"0.3.0\"\n\n[tool.x]\nversion = \"9\"\n";
        assert_eq!(pyproject_version(pyproject).as_deref(), Some("0.3.0"));
    }

    #[test]
    fn pyproject_may_say_a_prerelease_as_pep_440_does() {
        let said = |v: &str| Some(v.to_string());
        assert_eq!(
            same_in_pep440(said("0.2.0rc1"), "0.2.0-rc.1"),
            said("0.2.0-rc.1")
        );
        assert_eq!(
            same_in_pep440(said("0.2.0rc2"), "0.2.0-rc.1"),
            said("0.2.0rc2")
        );
        assert_eq!(same_in_pep440(None, "0.1.0"), None);
    }
}
