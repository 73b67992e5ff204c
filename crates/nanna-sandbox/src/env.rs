//! [`EnvPolicy`]: the environment a command inherits, scrubbed of secrets.

use std::ffi::{OsStr, OsString};

/// Words that mark a variable as a secret when its name contains one (case-insensitive).
/// The list (`KEY`, `SECRET`, `TOKEN`, `PASSWORD`) plus two common spellings of the
/// same idea (`PASSWD`, `CREDENTIAL`, e.g. `GOOGLE_APPLICATION_CREDENTIALS`).
const SECRET_WORDS: [&str; 6] = ["KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// Nanna's own settings (`NANNA_API_KEY`, `NANNA_URL`...) are never passed on.
const OWN_PREFIX: &str = "NANNA_";

/// Which variables a command inherits. By default every variable except Nanna's own
/// (`NANNA_*`) and those whose name contains `KEY`, `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`
/// or `CREDENTIAL`. `include` patterns keep a variable the defaults would drop; `exclude`
/// patterns drop more, and win over `include`. A pattern is a name, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvPolicy {
    include: Vec<String>,
    exclude: Vec<String>,
}

/// A pattern that is not a variable name or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a variable name pattern; use a name such as GITHUB_TOKEN or a prefix such as AWS_*"
)]
pub struct InvalidPattern(pub String);

impl EnvPolicy {
    /// A policy with extra `include` and `exclude` patterns.
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, InvalidPattern> {
        for pattern in include.iter().chain(&exclude) {
            let name = pattern.strip_suffix('*').unwrap_or(pattern);
            let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && (!name.is_empty() || pattern == "*");
            if !valid {
                return Err(InvalidPattern(pattern.clone()));
            }
        }
        Ok(Self { include, exclude })
    }

    /// Whether a variable called `name` is passed to commands.
    pub fn allows(&self, name: &OsStr) -> bool {
        let name = name.to_string_lossy();
        if self.exclude.iter().any(|p| matches(p, &name)) {
            return false;
        }
        if self.include.iter().any(|p| matches(p, &name)) {
            return true;
        }
        let upper = name.to_ascii_uppercase();
        !upper.starts_with(OWN_PREFIX) && !SECRET_WORDS.iter().any(|w| upper.contains(w))
    }

    /// The variables of `vars` that commands inherit.
    pub fn scrub(
        &self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Vec<(OsString, OsString)> {
        vars.into_iter().filter(|(k, _)| self.allows(k)).collect()
    }
}

/// Whether `pattern` (a name or a `PREFIX*`) matches `name`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(policy: &EnvPolicy, vars: &[&str]) -> Vec<String> {
        let vars = vars
            .iter()
            .map(|k| (OsString::from(k), OsString::from("v")));
        policy
            .scrub(vars)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn secrets_and_nanna_settings_are_dropped_by_default() {
        let kept = names(
            &EnvPolicy::default(),
            &[
                "PATH",
                "HOME",
                "GIT_AUTHOR_NAME",
                "NANNA_URL",
                "NANNA_API_KEY",
                "OPENAI_API_KEY",
                "GITHUB_TOKEN",
                "aws_secret_access_key",
                "PGPASSWORD",
                "GOOGLE_APPLICATION_CREDENTIALS",
                "LANG",
            ],
        );
        assert_eq!(kept, ["PATH", "HOME", "GIT_AUTHOR_NAME", "LANG"]);
    }

    #[test]
    fn include_keeps_and_exclude_drops_and_wins() {
        let policy = EnvPolicy::new(
            vec!["GITHUB_TOKEN".into(), "AWS_*".into()],
            vec!["AWS_SECRET_ACCESS_KEY".into(), "HTTP_*".into()],
        )
        .unwrap();
        let kept = names(
            &policy,
            &[
                "GITHUB_TOKEN",
                "AWS_REGION",
                "AWS_SESSION_TOKEN",
                "AWS_SECRET_ACCESS_KEY",
                "HTTP_PROXY",
                "NPM_TOKEN",
                "PATH",
            ],
        );
        assert_eq!(
            kept,
            ["GITHUB_TOKEN", "AWS_REGION", "AWS_SESSION_TOKEN", "PATH"]
        );
    }

    #[test]
    fn patterns_must_be_names_or_prefixes() {
        for bad in ["A B", "1ABC", "A*B", "", "$X"] {
            let err = EnvPolicy::new(vec![bad.into()], vec![]).unwrap_err();
            assert!(err.to_string().contains("AWS_*"), "{err}");
        }
        assert!(EnvPolicy::new(vec!["*".into()], vec!["_X*".into()]).is_ok());
    }
}
