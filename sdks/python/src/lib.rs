//! Python bindings for `boxspec`.
//!
//! This crate's lib is also named `boxspec` (the Python module name), so the core
//! crate is always addressed as `::boxspec`.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    boxspec,
    SpecError,
    PyValueError,
    "Invalid box spec. str() is `<path>: <reason>`; also has `path` and `reason` attributes."
);

/// str() matches the Rust Display; path/reason are set as instance attributes.
fn to_py(py: Python<'_>, e: ::boxspec::SpecError) -> PyErr {
    let err = SpecError::new_err(e.to_string());
    let value = err.value(py);
    if let Err(set_err) = value
        .setattr("path", e.path())
        .and_then(|()| value.setattr("reason", e.reason()))
    {
        return set_err;
    }
    err
}

/// Raise `SpecError` if `json` is not a valid box spec.
#[pyfunction]
fn validate(py: Python<'_>, json: &str) -> PyResult<()> {
    ::boxspec::validate(json)
        .map(|_| ())
        .map_err(|e| to_py(py, e))
}

/// `sha256:<hex>` digest of the normalised spec.
#[pyfunction]
fn digest(py: Python<'_>, json: &str) -> PyResult<String> {
    ::boxspec::digest(json).map_err(|e| to_py(py, e))
}

/// Canonical JSON form of the spec.
#[pyfunction]
fn normalize(py: Python<'_>, json: &str) -> PyResult<String> {
    ::boxspec::normalize(json).map_err(|e| to_py(py, e))
}

// Named via attribute: a fn called `boxspec` would shadow the `boxspec` crate.
#[pymodule(name = "boxspec")]
fn boxspec_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SpecError", m.py().get_type::<SpecError>())?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(digest, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    Ok(())
}
