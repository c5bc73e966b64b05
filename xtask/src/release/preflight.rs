//! publish's preflight, the judging half: from what each registry answered (`preflight_ask.rs` asks),
//! what is out already and what stops the release before any upload. Each problem names the registry,
//! the package and the setting to fix. Pure: table-tested without a registry.

use std::collections::BTreeSet;

use serde_json::Value;

use super::registries::is_pypi;

/// Where the job runs, as far as trusted publishing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ci {
    /// `GITHUB_ACTIONS=true`.
    pub github: bool,
    /// The job may ask for an OIDC token: `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN` are set, which
    /// GitHub does only for a job with `permissions: id-token: write`.
    pub oidc: bool,
}

/// The line a problem ends with when trusted publishing lacks its token.
const ID_TOKEN: &str = "give the publishing job `permissions: id-token: write` (release.yml's `publish` \
                        job has it; a copy of the job must too)";

/// What twine's settings resolved to, before any network question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiWhere {
    pub upload: String,
    /// Where twine's password comes from: `env` (TWINE_PASSWORD), `pypirc`, or none (keyring or
    /// trusted publishing).
    pub password: Option<String>,
}

/// What the PyPI side answered (`pypi_preflight.py ask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PypiAnswer {
    /// The files of the version on the index, and whether the credentials were accepted.
    Answered {
        out: Vec<String>,
        credentials: Result<Login, String>,
    },
    /// The index or twine's settings could not say.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    /// twine got its token through trusted publishing (so uploads may carry attestations).
    pub trusted: bool,
}

impl PypiAnswer {
    pub fn parse(json: &Value) -> PypiAnswer {
        if let Some(why) = json["error"].as_str() {
            return PypiAnswer::Failed(why.to_string());
        }
        let c = &json["credentials"];
        let credentials = match c["ok"].as_bool() {
            Some(true) => Ok(Login {
                user: c["user"].as_str().unwrap_or("").to_string(),
                trusted: c["trusted"].as_bool().unwrap_or(false),
            }),
            _ => Err(c["why"].as_str().unwrap_or("no answer").to_string()),
        };
        let out = (json["out"].as_array().into_iter().flatten())
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        PypiAnswer::Answered { out, credentials }
    }
}

/// The PyPI side's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PypiVerdict {
    pub out: BTreeSet<String>,
    pub problems: Vec<String>,
    /// Uploads go through trusted publishing: attestations are signed and sent with each file.
    pub trusted: bool,
}

pub fn judge_pypi(ci: Ci, place: &PypiWhere, answer: &PypiAnswer) -> PypiVerdict {
    let upload = &place.upload;
    let mut verdict = PypiVerdict::default();
    // twine tries trusted publishing on PyPI when no password is set anywhere.
    let trusted_intended = ci.github && place.password.is_none() && is_pypi(upload);
    if trusted_intended && !ci.oidc {
        verdict.problems.push(format!(
            "PyPI {upload}: no TWINE_PASSWORD, so twine would use trusted publishing, but this job has \
             no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set): {ID_TOKEN}, or set TWINE_PASSWORD \
             to a PyPI API token"
        ));
        return verdict;
    }
    let (out, credentials) = match answer {
        PypiAnswer::Failed(why) => {
            verdict.problems.push(format!(
                "PyPI {upload}: cannot say what is out or whether the credentials work: {why} (twine's \
                 settings: TWINE_REPOSITORY_URL, TWINE_REPOSITORY and ~/.pypirc; the index asked: \
                 XTASK_PYPI_INDEX)"
            ));
            return verdict;
        }
        PypiAnswer::Answered { out, credentials } => (out, credentials),
    };
    verdict.out = out.iter().cloned().collect();
    match credentials {
        Ok(login) => verdict.trusted = login.trusted,
        Err(why) => verdict.problems.push(format!(
            "PyPI {upload}: the credentials do not work ({why}): {}",
            fix_pypi_credentials(ci, place)
        )),
    }
    verdict
}

fn fix_pypi_credentials(ci: Ci, place: &PypiWhere) -> String {
    match place.password.as_deref() {
        Some("env") => "check TWINE_USERNAME and TWINE_PASSWORD (a PyPI API token goes with \
                        TWINE_USERNAME=__token__)"
            .into(),
        Some(_) => "check the username and password of the repository's section in ~/.pypirc \
                    (TWINE_REPOSITORY names it)"
            .into(),
        None if ci.github && is_pypi(&place.upload) => "trusted publishing was refused: add a \
            trusted publisher on PyPI naming this repository, the workflow release.yml and the \
            environment release (docs/releasing.md), or set TWINE_PASSWORD to an API token"
            .into(),
        None => "set TWINE_USERNAME and TWINE_PASSWORD, or a section in ~/.pypirc named by \
                 TWINE_REPOSITORY"
            .into(),
    }
}

/// One npm package as the registry knows it (`npm view NAME --json`); `None` for a name it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmKnown {
    pub versions: Vec<String>,
    /// Its maintainers' names, where the registry says (npmjs does; verdaccio 6 does not).
    pub maintainers: Vec<String>,
}

impl NpmKnown {
    pub fn parse(json: &Value) -> NpmKnown {
        // One version comes as a string, more as a list.
        let versions = match &json["versions"] {
            Value::String(v) => vec![v.clone()],
            list => (list.as_array().into_iter().flatten())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        };
        let maintainers = (json["maintainers"].as_array().into_iter().flatten())
            .filter_map(|m| match m {
                Value::String(s) => s.split(" <").next().map(str::to_string),
                other => other["name"].as_str().map(str::to_string),
            })
            .collect();
        NpmKnown {
            versions,
            maintainers,
        }
    }
}

/// The npm side's answers: who `npm whoami` says we are, and each package of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmAnswer {
    pub registry: String,
    pub whoami: Result<String, String>,
    /// (name, what the registry knows, or why it could not say)
    pub packages: Vec<(String, Result<Option<NpmKnown>, String>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NpmVerdict {
    /// Names of the packages whose version is out.
    pub out: BTreeSet<String>,
    pub problems: Vec<String>,
}

pub fn judge_npm(ci: Ci, answer: &NpmAnswer, version: &str) -> NpmVerdict {
    let r = &answer.registry;
    let mut verdict = NpmVerdict::default();
    // npm ≥ 11.5 publishes through OIDC on GitHub when the job may ask for a token; with no token of
    // its own, that is the only way.
    let trusted = answer.whoami.is_err() && ci.github;
    if let Err(why) = &answer.whoami {
        let fix = match (ci.github, ci.oidc) {
            (true, true) => None,
            (true, false) => Some(format!(
                "set NODE_AUTH_TOKEN from a secret (setup-node's `registry-url` writes the .npmrc \
                 that reads it), or {ID_TOKEN} for npm trusted publishing"
            )),
            (false, _) => Some(format!(
                "set NODE_AUTH_TOKEN for an .npmrc line `//HOST/:_authToken=${{NODE_AUTH_TOKEN}}`, \
                 or run `npm login --registry {r}`"
            )),
        };
        if let Some(fix) = fix {
            verdict.problems.push(format!(
                "npm {r}: not logged in (`npm whoami` says: {why}): {fix}"
            ));
            return verdict;
        }
    }
    for (name, known) in &answer.packages {
        match known {
            Err(why) => verdict.problems.push(format!(
                "npm {r}: cannot say whether {name} {version} is out: {why}"
            )),
            Ok(None) if trusted => verdict.problems.push(format!(
                "npm {r}: {name} is not on the registry yet, and npm's trusted publishing cannot \
                 create a package: publish the first version with a token (an NPM_TOKEN secret as \
                 NODE_AUTH_TOKEN; docs/releasing.md, \"The first publish\")"
            )),
            Ok(None) => {}
            Ok(Some(known)) if known.versions.iter().any(|v| v == version) => {
                verdict.out.insert(name.clone());
            }
            Ok(Some(known)) => {
                if let Ok(user) = &answer.whoami
                    && !known.maintainers.is_empty()
                    && !known.maintainers.contains(user)
                {
                    verdict.problems.push(format!(
                        "npm {r}: {name} is maintained by {}, and `npm whoami` is {user}: publish \
                         with a maintainer's token, or have one run `npm owner add {user} {name}`",
                        known.maintainers.join(", ")
                    ));
                }
            }
        }
    }
    verdict
}

/// npm's provenance (NPM_CONFIG_PROVENANCE=true, and every trusted publish) is refused (E422) for a
/// package whose `repository.url` is not the repository the workflow runs in.
pub fn provenance_problems(
    packages: &[(String, Value)],
    provenance: bool,
    github_repo: Option<&str>,
) -> Vec<String> {
    if !provenance {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (name, json) in packages {
        let url = match &json["repository"] {
            Value::String(s) => Some(s.as_str()),
            r => r["url"].as_str(),
        };
        match (url, github_repo) {
            (None, _) => problems.push(format!(
                "npm: {name} has no repository.url, and provenance (NPM_CONFIG_PROVENANCE or trusted \
                 publishing) needs one: set `repository` in sdks/node/package.json (release copies it \
                 into every package)"
            )),
            (Some(url), Some(repo)) if normal_repo(url) != normal_repo(repo) => {
                problems.push(format!(
                    "npm: {name}'s repository.url is {url}, but the workflow runs in {repo}: npm \
                     refuses the provenance (E422); fix `repository` in sdks/node/package.json"
                ))
            }
            _ => {}
        }
    }
    problems
}

/// A repository URL without the `git+` prefix, `.git` suffix and trailing slash.
pub fn normal_repo(url: &str) -> String {
    let url = url.trim().trim_start_matches("git+").trim_end_matches('/');
    url.trim_end_matches(".git").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LAPTOP: Ci = Ci {
        github: false,
        oidc: false,
    };
    const GITHUB: Ci = Ci {
        github: true,
        oidc: true,
    };
    const GITHUB_NO_TOKEN: Ci = Ci {
        github: true,
        oidc: false,
    };

    fn place(upload: &str, password: Option<&str>) -> PypiWhere {
        PypiWhere {
            upload: upload.into(),
            password: password.map(str::to_string),
        }
    }

    fn answered(out: &[&str], credentials: Result<bool, &str>) -> PypiAnswer {
        PypiAnswer::Answered {
            out: out.iter().map(|s| s.to_string()).collect(),
            credentials: credentials
                .map(|trusted| Login {
                    user: "__token__".into(),
                    trusted,
                })
                .map_err(str::to_string),
        }
    }

    /// Each PyPI case: what is out, the problem's words (none: no problem), whether attestations go.
    /// No problem when none is expected, else exactly one, naming its registry first and saying `words`.
    fn assert_problem(i: usize, problems: &[String], expected: Option<&str>, registry: &str) {
        match expected {
            None => assert!(problems.is_empty(), "case {i}: {problems:?}"),
            Some(words) => {
                assert_eq!(problems.len(), 1, "case {i}: {problems:?}");
                assert!(problems[0].contains(words), "case {i}: {}", problems[0]);
                assert!(
                    problems[0].starts_with(registry),
                    "case {i}: {}",
                    problems[0]
                );
            }
        }
    }

    #[test]
    fn the_pypi_side_names_what_to_fix() {
        let pypi = "https://upload.pypi.org/legacy/";
        let local = "http://127.0.0.1:1/";
        let refused = Err("HTTP 403 Forbidden");
        let cases: Vec<(Ci, PypiWhere, PypiAnswer, Option<&str>, bool)> = vec![
            (
                LAPTOP,
                place(local, Some("env")),
                answered(&[], Ok(false)),
                None,
                false,
            ),
            (
                LAPTOP,
                place(local, Some("env")),
                answered(&[], refused),
                Some("check TWINE_USERNAME and TWINE_PASSWORD"),
                false,
            ),
            (
                LAPTOP,
                place(local, Some("pypirc")),
                answered(&[], refused),
                Some("~/.pypirc"),
                false,
            ),
            (
                LAPTOP,
                place(pypi, None),
                answered(&[], Err("Credential not found for password.")),
                Some("set TWINE_USERNAME and TWINE_PASSWORD"),
                false,
            ),
            (
                GITHUB,
                place(pypi, None),
                answered(&[], Ok(true)),
                None,
                true,
            ),
            (
                GITHUB,
                place(pypi, None),
                answered(&[], Err("trusted publishing failed: invalid-publisher")),
                Some("add a trusted publisher on PyPI"),
                false,
            ),
            (
                GITHUB_NO_TOKEN,
                place(pypi, None),
                answered(&[], Ok(true)),
                Some("`permissions: id-token: write`"),
                false,
            ),
            // A token on GitHub: no OIDC needed, no attestations.
            (
                GITHUB_NO_TOKEN,
                place(pypi, Some("env")),
                answered(&[], Ok(false)),
                None,
                false,
            ),
            (
                LAPTOP,
                place(local, Some("env")),
                PypiAnswer::Failed("http://127.0.0.1:1/simple/ does not answer".into()),
                Some("cannot say what is out"),
                false,
            ),
        ];
        for (i, (ci, place, answer, problem, trusted)) in cases.into_iter().enumerate() {
            let verdict = judge_pypi(ci, &place, &answer);
            assert_problem(i, &verdict.problems, problem, "PyPI ");
            assert_eq!(verdict.trusted, trusted, "case {i}");
        }
        let verdict = judge_pypi(
            LAPTOP,
            &place(local, Some("env")),
            &answered(&["a.whl"], Ok(false)),
        );
        assert_eq!(verdict.out, BTreeSet::from(["a.whl".to_string()]));
    }

    fn npm(
        whoami: Result<&str, &str>,
        packages: Vec<(&str, Result<Option<NpmKnown>, String>)>,
    ) -> NpmAnswer {
        NpmAnswer {
            registry: "http://127.0.0.1:2/".into(),
            whoami: whoami.map(str::to_string).map_err(str::to_string),
            packages: packages
                .into_iter()
                .map(|(n, k)| (n.to_string(), k))
                .collect(),
        }
    }

    fn known(versions: &[&str], maintainers: &[&str]) -> Result<Option<NpmKnown>, String> {
        Ok(Some(NpmKnown {
            versions: versions.iter().map(|s| s.to_string()).collect(),
            maintainers: maintainers.iter().map(|s| s.to_string()).collect(),
        }))
    }

    #[test]
    fn the_npm_side_names_what_to_fix() {
        let need_auth = Err("ENEEDAUTH need auth");
        // (ci, answer, out, problem words)
        let cases: Vec<(Ci, NpmAnswer, &[&str], Option<&str>)> = vec![
            (
                LAPTOP,
                npm(Ok("ci"), vec![("boxspec", Ok(None))]),
                &[],
                None,
            ),
            (
                LAPTOP,
                npm(need_auth, vec![("boxspec", Ok(None))]),
                &[],
                Some("not logged in (`npm whoami` says: ENEEDAUTH need auth): set NODE_AUTH_TOKEN"),
            ),
            (
                GITHUB_NO_TOKEN,
                npm(need_auth, vec![("boxspec", Ok(None))]),
                &[],
                Some("id-token: write"),
            ),
            // Trusted publishing: fine for a package that exists, impossible for a new one.
            (
                GITHUB,
                npm(need_auth, vec![("boxspec", known(&["0.0.9"], &["ci"]))]),
                &[],
                None,
            ),
            (
                GITHUB,
                npm(need_auth, vec![("boxspec", Ok(None))]),
                &[],
                Some(
                    "boxspec is not on the registry yet, and npm's trusted publishing cannot create a package",
                ),
            ),
            (
                LAPTOP,
                npm(
                    Ok("ci"),
                    vec![("boxspec", known(&["0.0.9"], &["ci", "ana"]))],
                ),
                &[],
                None,
            ),
            (
                LAPTOP,
                npm(
                    Ok("eve"),
                    vec![("boxspec", known(&["0.0.9"], &["ci", "ana"]))],
                ),
                &[],
                Some("boxspec is maintained by ci, ana, and `npm whoami` is eve"),
            ),
            // A registry that names no maintainers (verdaccio) lets any user through to npm's answer.
            (
                LAPTOP,
                npm(Ok("eve"), vec![("boxspec", known(&["0.0.9"], &[]))]),
                &[],
                None,
            ),
            (
                LAPTOP,
                npm(
                    Ok("ci"),
                    vec![
                        ("boxspec-linux-x64-gnu", known(&["0.1.0"], &[])),
                        ("boxspec", Ok(None)),
                    ],
                ),
                &["boxspec-linux-x64-gnu"],
                None,
            ),
            (
                LAPTOP,
                npm(Ok("ci"), vec![("boxspec", Err("ECONNREFUSED".into()))]),
                &[],
                Some("cannot say whether boxspec 0.1.0 is out: ECONNREFUSED"),
            ),
        ];
        for (i, (ci, answer, out, problem)) in cases.into_iter().enumerate() {
            let verdict = judge_npm(ci, &answer, "0.1.0");
            let want: BTreeSet<String> = out.iter().map(|s| s.to_string()).collect();
            assert_eq!(verdict.out, want, "case {i}");
            assert_problem(i, &verdict.problems, problem, "npm http://127.0.0.1:2/");
        }
    }

    #[test]
    fn npm_view_is_read_as_npm_prints_it() {
        let one =
            NpmKnown::parse(&json!({"versions": "0.1.0", "maintainers": ["ci <ci@example.org>"]}));
        assert_eq!(one.versions, ["0.1.0"]);
        assert_eq!(one.maintainers, ["ci"]);
        let many = NpmKnown::parse(
            &json!({"versions": ["0.1.0", "0.2.0"], "maintainers": [{"name": "ana", "email": "a@b"}]}),
        );
        assert_eq!(many.versions, ["0.1.0", "0.2.0"]);
        assert_eq!(many.maintainers, ["ana"]);
    }

    #[test]
    fn provenance_needs_the_workflows_repository() {
        let repo = "https://github.com/acme/boxspec";
        let pkg =
            |repository: Value| vec![("boxspec".to_string(), json!({ "repository": repository }))];
        assert!(provenance_problems(&pkg(Value::Null), false, None).is_empty());
        let none = provenance_problems(&pkg(Value::Null), true, Some(repo));
        assert!(
            none[0].contains("boxspec has no repository.url"),
            "{none:?}"
        );
        let same = json!({"type": "git", "url": "git+https://github.com/acme/boxspec.git"});
        assert!(provenance_problems(&pkg(same), true, Some(repo)).is_empty());
        let other = provenance_problems(
            &pkg(json!("https://github.com/else/boxspec")),
            true,
            Some(repo),
        );
        assert!(other[0].contains("E422"), "{other:?}");
    }
}
