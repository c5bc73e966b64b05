//! Node.js bindings for `boxspec`.

use napi::{Error, Result, Status};
use napi_derive::napi;

/// Error message is exactly `SpecError`'s Display so JS callers see the same text as the CLI.
fn to_js(e: boxspec::SpecError) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

/// Throws if `json` is not a valid box spec.
#[napi]
pub fn validate(json: String) -> Result<()> {
    boxspec::validate(&json).map(|_| ()).map_err(to_js)
}

/// `sha256:<hex>` digest of the normalised spec.
#[napi]
pub fn digest(json: String) -> Result<String> {
    boxspec::digest(&json).map_err(to_js)
}

/// Canonical JSON form of the spec.
#[napi]
pub fn normalize(json: String) -> Result<String> {
    boxspec::normalize(&json).map_err(to_js)
}

/// Version of the bindings (same as the `boxspec` crate).
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
