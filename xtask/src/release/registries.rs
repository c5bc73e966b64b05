//! The registries publish uploads to, as the tools themselves resolve them: twine's upload URL from
//! its own settings (`TWINE_REPOSITORY_URL`, `TWINE_REPOSITORY` and ~/.pypirc; `preflight_ask.rs` asks
//! twine), npm's registry from npm's config (`.npmrc`, `NPM_CONFIG_USERCONFIG`, `npm_config_registry`),
//! and the PyPI simple index publish asks what is out.

/// Upload URLs of PyPI and TestPyPI, and their indexes: the two that support trusted publishing and
/// attestations.
const INDEXES: &[(&str, &str)] = &[
    ("https://upload.pypi.org/", "https://pypi.org/simple/"),
    ("https://test.pypi.org/", "https://test.pypi.org/simple/"),
];

/// Where the uploads go and where publish asks first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries {
    pub pypi_upload: String,
    pub pypi_index: String,
    pub npm: String,
}

/// Whether uploads to `upload` go to PyPI itself (or TestPyPI).
pub fn is_pypi(upload: &str) -> bool {
    INDEXES.iter().any(|(prefix, _)| upload.starts_with(prefix))
}

/// The simple index publish asks what is out: PyPI's (or TestPyPI's) for their upload URLs, else
/// `XTASK_PYPI_INDEX`, else `<upload URL>/simple/` (pypiserver's, Nexus's, Artifactory's and GitLab's
/// layout), which must then answer itself. (Not pip's `PIP_INDEX_URL`: that also decides where the
/// driver installs its own tools from.) The bool: derived, rather than known or given.
pub fn pypi_index(upload: &str, asked: Option<&str>) -> (String, bool) {
    if let Some((_, index)) = INDEXES
        .iter()
        .find(|(prefix, _)| upload.starts_with(prefix))
    {
        return (index.to_string(), false);
    }
    match asked.filter(|i| !i.is_empty()) {
        Some(index) => (index.to_string(), false),
        None => (format!("{}/simple/", upload.trim_end_matches('/')), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_asked_first_follows_twines_upload_url() {
        let cases = [
            (
                "https://upload.pypi.org/legacy/",
                None,
                ("https://pypi.org/simple/", false),
            ),
            (
                "https://test.pypi.org/legacy/",
                None,
                ("https://test.pypi.org/simple/", false),
            ),
            (
                "https://upload.pypi.org/legacy/",
                Some("http://x/"),
                ("https://pypi.org/simple/", false),
            ),
            (
                "http://127.0.0.1:8080/",
                Some("http://127.0.0.1:8080/idx/"),
                ("http://127.0.0.1:8080/idx/", false),
            ),
            (
                "http://127.0.0.1:8080/",
                None,
                ("http://127.0.0.1:8080/simple/", true),
            ),
            (
                "https://nexus.example/repository/pypi-hosted",
                None,
                ("https://nexus.example/repository/pypi-hosted/simple/", true),
            ),
        ];
        for (upload, asked, (index, derived)) in cases {
            assert_eq!(
                pypi_index(upload, asked),
                (index.to_string(), derived),
                "{upload}"
            );
        }
        assert!(is_pypi("https://upload.pypi.org/legacy/") && !is_pypi("http://127.0.0.1:1/"));
    }
}
