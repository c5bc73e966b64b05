//! The npm packages, napi-rs's layout: one package per platform with `os`/`cpu`/`libc`, holding the
//! addon alone, and the main package with the loader, whose `optionalDependencies` pin them.

use serde_json::{Value, json};

use super::names::{LICENSE, LOADER, addon_name, npm_package};
use super::npm_metadata::copy_fields;
use super::{Pieces, Release, json_file};
use crate::plan::{Action, Step};
use crate::platform::Platform;

/// The main package's name, as the SDK's package.json says.
pub fn main_name(sdk: &Value) -> &str {
    sdk["name"].as_str().unwrap_or("boxspec")
}

/// napi-rs's package for one platform: the addon alone, installable only where it loads.
pub fn platform_package(main: &Value, platform: Platform, version: &str) -> Value {
    let (os, cpu, libc) = platform.npm_fields();
    let name = main_name(main);
    let addon = addon_name(platform);
    let mut pkg = json!({
        "name": npm_package(name, platform),
        "version": version,
        "description": format!("The {} addon of {name}", platform.triple),
        "os": [os],
        "cpu": [cpu],
        "main": addon,
        "files": [addon],
    });
    copy_fields(main, &mut pkg);
    if let Some(libc) = libc {
        pkg["libc"] = json!([libc]);
    }
    pkg
}

/// The main package: the SDK's package.json at the release version, its loader only, and every
/// platform package as an optional dependency (npm installs the one whose os/cpu/libc fit).
pub fn main_package(sdk: &Value, platforms: &[Platform], version: &str) -> Value {
    let mut pkg = sdk.clone();
    let name = main_name(sdk).to_string();
    if let Some(map) = pkg.as_object_mut() {
        map.remove("devDependencies");
        map.remove("scripts");
        map.insert("version".into(), json!(version));
        map.insert("files".into(), json!(LOADER));
        let optional: serde_json::Map<String, Value> = (platforms.iter())
            .map(|p| (npm_package(&name, *p), json!(version)))
            .collect();
        map.insert("optionalDependencies".into(), Value::Object(optional));
    }
    pkg
}

/// One target's package: its package.json and the addon.
pub fn platform_steps(r: &Release, p: &Pieces) -> [Step; 2] {
    let t = p.platform.triple;
    let package = (r.out.join("npm")).join(npm_package(main_name(&r.sdk_package), p.platform));
    [
        Step::new(
            format!("npm package for {t}"),
            json_file(
                package.join("package.json"),
                &platform_package(&r.sdk_package, p.platform, &r.version),
            ),
        ),
        Step::new(
            format!("npm package for {t}: the addon"),
            Action::CopyInto {
                // npm packs a LICENSE whatever `files` says.
                files: vec![r.artifacts.join(&p.addon), r.host.root.join(LICENSE)],
                dir: package,
            },
        ),
    ]
}

/// The main package: the first target's loader (all are the same) and its package.json.
pub fn main_steps(r: &Release) -> Vec<Step> {
    let main = r.out.join("npm").join(main_name(&r.sdk_package));
    let mut steps = Vec::new();
    if let Some(first) = r.pieces.first() {
        steps.push(Step::new(
            "npm main package: the loader",
            Action::CopyInto {
                files: (LOADER.iter())
                    .map(|f| r.artifacts.join(first.beside_addon(f)))
                    .chain([r.host.root.join(LICENSE)])
                    .collect(),
                dir: main.clone(),
            },
        ));
    }
    steps.push(Step::new(
        "npm main package",
        json_file(
            main.join("package.json"),
            &main_package(&r.sdk_package, &r.platforms, &r.version),
        ),
    ));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PLATFORMS;
    use crate::release::artifacts::tests::V;
    use std::path::Path;

    #[test]
    fn npm_packages_say_where_they_install() {
        let sdk = json!({
            "name": "boxspec", "version": V, "license": "MIT", "main": "index.js",
            "engines": {"node": ">= 18"}, "scripts": {"build": "napi build"},
            "devDependencies": {"@napi-rs/cli": "3"}, "napi": {"binaryName": "boxspec"}
        });
        // (platform, name, os, cpu, libc)
        let cases = [
            (
                PLATFORMS[0],
                "boxspec-linux-x64-gnu",
                "linux",
                "x64",
                Some("glibc"),
            ),
            (
                PLATFORMS[1],
                "boxspec-linux-arm64-gnu",
                "linux",
                "arm64",
                Some("glibc"),
            ),
            (PLATFORMS[2], "boxspec-darwin-x64", "darwin", "x64", None),
            (
                PLATFORMS[3],
                "boxspec-darwin-arm64",
                "darwin",
                "arm64",
                None,
            ),
        ];
        for (platform, name, os, cpu, libc) in cases {
            let pkg = platform_package(&sdk, platform, "1.0.0");
            assert_eq!(pkg["name"], name);
            assert_eq!(pkg["version"], "1.0.0");
            assert_eq!(pkg["os"], json!([os]));
            assert_eq!(pkg["cpu"], json!([cpu]));
            assert_eq!(pkg["libc"], libc.map_or(Value::Null, |l| json!([l])));
            assert_eq!(pkg["main"], addon_name(platform));
            assert_eq!(pkg["files"], json!([addon_name(platform)]));
        }
        let main = main_package(&sdk, &PLATFORMS, "1.0.0");
        assert_eq!(main["version"], "1.0.0");
        assert_eq!(main["optionalDependencies"].as_object().unwrap().len(), 4);
        assert_eq!(
            main["optionalDependencies"]["boxspec-darwin-arm64"],
            "1.0.0"
        );
        assert!(main.get("devDependencies").is_none() && main.get("scripts").is_none());
        assert_eq!(main["files"], json!(["index.js", "index.d.ts"]));
    }

    #[test]
    fn the_napi_targets_are_the_shipped_platforms() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sdk = crate::release::read_json(&root.join("sdks/node/package.json")).unwrap();
        let triples: Vec<&str> = PLATFORMS.iter().map(|p| p.triple).collect();
        assert_eq!(sdk["napi"]["targets"], json!(triples));
    }
}
