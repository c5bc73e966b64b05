//! Variables of the caller's environment that would change what a measured or tested build does: the cache
//! configuration, the driver's own settings, GitHub's variables, an inherited wrapper, a target directory
//! and incremental builds. bench-cache and the integration tests (which include this file) remove them.

pub fn changes_the_build(name: &str) -> bool {
    ["SCCACHE_", "XTASK_", "GITHUB_", "ACTIONS_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name.contains("RUSTC_WRAPPER")
        || name == "CARGO_TARGET_DIR"
        || name == "CARGO_INCREMENTAL"
}
