//! Stacktrace links: a frame's file, mapped by a code mapping to the file in
//! its repository (docs/sentry-protocol.md §3.6).
//!
//! Sentry opens `/sentry/stacktrace-link?…&filename=<frame.filename>` in the
//! person's browser, and issuebridge answers with a redirect. The filename
//! is whatever the SDK reported, so it is untrusted: the redirect's scheme
//! and host always come from the mapping, and the frame only ever supplies
//! percent-encoded path segments. Frames that could climb out of the
//! mapping's root (`..`), or that name another scheme, map to nothing.
//!
//! Wasm-safe, so the console can preview a mapping as it is typed.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Characters kept as they are in a path segment: RFC 3986's unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Where a repository is hosted, which decides the shape of a file's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Github,
    Gitlab,
    Bitbucket,
    /// Any other host: a URL template with `{path}`, `{line}` and `{branch}`.
    Template,
}

impl Provider {
    pub const ALL: [Provider; 4] = [Self::Github, Self::Gitlab, Self::Bitbucket, Self::Template];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Bitbucket => "bitbucket",
            Self::Template => "template",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Github => "GitHub",
            Self::Gitlab => "GitLab",
            Self::Bitbucket => "Bitbucket",
            Self::Template => "Other (URL template)",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = MappingError;
    fn from_str(s: &str) -> Result<Self, MappingError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| MappingError(format!("unknown provider {s:?}: github, gitlab, bitbucket or template")))
    }
}

/// Why a mapping was refused; safe to show to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// A code mapping: frames under `stack_root` live under `source_root` of the
/// repository at `repo_url` (or, for [`Provider::Template`], the template),
/// on `branch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeMapping {
    pub id: i64,
    pub project_slug: String,
    pub stack_root: String,
    pub source_root: String,
    pub provider: Provider,
    /// The repository's address, or the template for [`Provider::Template`].
    pub repo_url: String,
    pub branch: String,
}

/// A mapping as typed, before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingForm {
    pub project_slug: String,
    pub stack_root: String,
    pub source_root: String,
    pub provider: String,
    pub repo_url: String,
    pub branch: String,
}

impl MappingForm {
    /// The mapping to store: roots normalised as frames are, the repository
    /// an `https://` (or `http://`) address with a host, the branch plain.
    pub fn parse(&self) -> Result<CodeMapping, MappingError> {
        let project_slug = self.project_slug.trim().to_owned();
        let slug_ok = !project_slug.is_empty()
            && project_slug.len() <= 100
            && project_slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !slug_ok {
            return Err(MappingError("the project must be a Sentry project slug, like \"backend\"".into()));
        }
        let provider: Provider = self.provider.trim().parse()?;
        let root = |raw: &str, what: &str| {
            normalize_path(raw).map_err(|e| MappingError(format!("the {what} {raw:?} cannot be used: {e}")))
        };
        let stack_root = root(&self.stack_root, "stack root")?;
        let source_root = root(&self.source_root, "source root")?;
        let branch = self.branch.trim().to_owned();
        let branch_ok = !branch.is_empty()
            && branch.len() <= 200
            && !branch.split('/').any(|part| part.is_empty() || part == "." || part == "..")
            && !branch.contains(|c: char| c.is_whitespace() || c.is_control() || "?#\\@:~^[".contains(c));
        if !branch_ok {
            return Err(MappingError(format!("{:?} is not a branch name", self.branch.trim())));
        }
        let repo_url = self.repo_url.trim().trim_end_matches('/').to_owned();
        match provider {
            Provider::Template => check_template(&repo_url)?,
            _ => {
                let rest = base_rest(&repo_url)?;
                if rest.contains(['?', '#', '{', '}', '\\']) || !rest.contains('/') {
                    return Err(MappingError(format!(
                        "{repo_url:?} is not a repository address like https://github.com/acme/backend"
                    )));
                }
            }
        }
        Ok(CodeMapping { id: 0, project_slug, stack_root, source_root, provider, repo_url, branch })
    }
}

/// The part of an address after `http(s)://`, with a plain host.
fn base_rest(url: &str) -> Result<&str, MappingError> {
    let refuse = || MappingError(format!("{url:?} must start with https:// and a host"));
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(refuse)?;
    let host = rest.split('/').next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
        && !host.starts_with(['.', '-', ':']);
    if host_ok {
        Ok(rest)
    } else {
        Err(refuse())
    }
}

/// A template's scheme and host are fixed: no placeholder before the first
/// `/` of its path, so no frame can choose where the browser goes.
fn check_template(template: &str) -> Result<(), MappingError> {
    let rest = base_rest(template)?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.contains(['{', '}']) {
        return Err(MappingError("a template's host must be written out, not a placeholder".into()));
    }
    if !path.contains("{path}") {
        return Err(MappingError("a template needs {path} (and may use {line} and {branch})".into()));
    }
    Ok(())
}

/// A frame's filename as a repository-relative path: prefixes SDKs add
/// (`webpack:///`, `app:///`, `file://`, a URL's scheme and host, a Windows
/// drive) dropped, `\` read as `/`, `.` and empty segments dropped.
/// Refused: `..` segments and any other scheme.
pub fn normalize_path(raw: &str) -> Result<String, &'static str> {
    let mut path = raw.trim().replace('\\', "/");
    if path.contains(|c: char| c.is_control()) {
        return Err("it holds control characters");
    }
    if let Some((scheme, rest)) = path.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        path = match scheme.as_str() {
            // webpack://<library name>/./src/x.js keeps its path after the name.
            "webpack" if !rest.starts_with('/') => rest.split_once('/').map_or("", |(_, p)| p).to_owned(),
            "webpack" | "app" | "file" => rest.to_owned(),
            "http" | "https" => rest.split_once('/').map_or("", |(_, p)| p).to_owned(),
            _ => return Err("it names a scheme other than webpack, app, file or http(s)"),
        };
    } else if path.contains(':') && !path.starts_with('/') && path.find(':') != Some(1) {
        // `javascript:…`, `data:…`; a Windows drive (`C:`) is kept below.
        if path.split('/').next().is_some_and(|first| first.contains(':')) {
            return Err("it names a scheme");
        }
    }
    // A Windows drive letter.
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        path = path[2..].to_owned();
    }
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err("it climbs out of its folder (..)"),
            s => segments.push(s),
        }
    }
    // Query strings and fragments of URL-shaped frames are not part of the file.
    let mut joined = segments.join("/");
    if let Some(cut) = joined.find(['?', '#']) {
        joined.truncate(cut);
        joined = joined.trim_end_matches('/').to_owned();
    }
    Ok(joined)
}

/// Whether `root` is `path` or one of its folders (segment by segment, so
/// `src/app` does not hold `src/application.py`). The empty root holds all.
fn holds(root: &str, path: &str) -> bool {
    root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// The mapping of `project` with the longest stack root that holds the
/// frame, and the frame's path in the repository.
pub fn best_mapping<'m>(
    mappings: &'m [CodeMapping],
    project: Option<&str>,
    filename: &str,
) -> Option<(&'m CodeMapping, String)> {
    let path = normalize_path(filename).ok().filter(|p| !p.is_empty())?;
    let mapping = mappings
        .iter()
        .filter(|m| project.is_none_or(|p| m.project_slug == p))
        .filter(|m| holds(&m.stack_root, &path))
        .max_by_key(|m| (m.stack_root.len(), -m.id))?;
    let rest = path[mapping.stack_root.len()..].trim_start_matches('/');
    let repo_path = [mapping.source_root.as_str(), rest].iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>();
    Some((mapping, repo_path.join("/")))
}

fn encode_path(path: &str) -> String {
    path.split('/').map(|segment| utf8_percent_encode(segment, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

/// A line number as Sentry's browser sends it: empty, or a positive integer.
pub fn line_number(raw: Option<&str>) -> Option<u32> {
    raw.and_then(|l| l.trim().parse::<u32>().ok()).filter(|&l| l > 0)
}

impl CodeMapping {
    /// The address of a file of the repository at a line.
    pub fn file_url(&self, repo_path: &str, line: Option<u32>) -> String {
        let path = encode_path(repo_path);
        let branch = encode_path(&self.branch);
        let base = self.repo_url.trim_end_matches('/');
        match self.provider {
            Provider::Github => {
                format!("{base}/blob/{branch}/{path}{}", line.map_or(String::new(), |l| format!("#L{l}")))
            }
            Provider::Gitlab => {
                format!("{base}/-/blob/{branch}/{path}{}", line.map_or(String::new(), |l| format!("#L{l}")))
            }
            Provider::Bitbucket => {
                format!("{base}/src/{branch}/{path}{}", line.map_or(String::new(), |l| format!("#lines-{l}")))
            }
            Provider::Template => base
                .replace("{path}", &path)
                .replace("{branch}", &branch)
                .replace("{line}", &line.map_or(String::new(), |l| l.to_string())),
        }
    }

    /// The scheme and host every link of this mapping goes to.
    pub fn origin(&self) -> &str {
        let after_scheme = self.repo_url.find("://").map_or(0, |i| i + 3);
        let end = self.repo_url[after_scheme..].find('/').map_or(self.repo_url.len(), |i| after_scheme + i);
        &self.repo_url[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(id: i64, stack_root: &str, source_root: &str, provider: Provider, repo: &str) -> CodeMapping {
        CodeMapping {
            id,
            project_slug: "backend".into(),
            stack_root: stack_root.into(),
            source_root: source_root.into(),
            provider,
            repo_url: repo.into(),
            branch: "main".into(),
        }
    }

    #[test]
    fn frames_are_normalised_as_sdks_write_them() {
        for (raw, expected) in [
            ("./src/app.js", "src/app.js"),
            ("webpack:///./src/app.js", "src/app.js"),
            ("webpack://my-lib/./src/app.js", "src/app.js"),
            ("app:///src/app.js", "src/app.js"),
            ("https://cdn.example.com/static/js/app.js?v=3", "static/js/app.js"),
            ("/home/app/src//app.py", "home/app/src/app.py"),
            ("C:\\work\\src\\app.py", "work/src/app.py"),
            ("file:///srv/app.py", "srv/app.py"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(expected), "{raw}");
        }
        for bad in
            ["../etc/passwd", "src/../../x.py", "javascript:alert(1)", "data:text/html,x", "ftp://h/x", "a\u{0}b"]
        {
            assert!(normalize_path(bad).is_err(), "{bad:?} should map to nothing");
        }
    }

    #[test]
    fn the_longest_stack_root_wins_on_whole_segments() {
        let mappings = [
            mapping(1, "", "", Provider::Github, "https://github.com/acme/all"),
            mapping(2, "src", "backend/src", Provider::Github, "https://github.com/acme/monorepo"),
            mapping(3, "src/app", "app", Provider::Gitlab, "https://gitlab.com/acme/app"),
        ];
        let (m, path) = best_mapping(&mappings, Some("backend"), "./src/app/views.py").unwrap();
        assert_eq!((m.id, path.as_str()), (3, "app/views.py"));
        let (m, path) = best_mapping(&mappings, Some("backend"), "src/application.py").unwrap();
        assert_eq!((m.id, path.as_str()), (2, "backend/src/application.py"));
        let (m, _) = best_mapping(&mappings, Some("backend"), "lib/x.py").unwrap();
        assert_eq!(m.id, 1);
        assert!(best_mapping(&mappings, Some("frontend"), "src/x.py").is_none(), "another project's mappings");
        assert!(best_mapping(&mappings, Some("backend"), "").is_none());
        assert!(best_mapping(&mappings, Some("backend"), "../x.py").is_none());
    }

    #[test]
    fn each_provider_links_to_the_file_and_line() {
        let at = |provider, repo: &str| mapping(1, "", "", provider, repo).file_url("src/a b.py", Some(12));
        assert_eq!(
            at(Provider::Github, "https://github.com/acme/api"),
            "https://github.com/acme/api/blob/main/src/a%20b.py#L12"
        );
        assert_eq!(
            at(Provider::Gitlab, "https://gitlab.com/acme/api"),
            "https://gitlab.com/acme/api/-/blob/main/src/a%20b.py#L12"
        );
        assert_eq!(
            at(Provider::Bitbucket, "https://bitbucket.org/acme/api"),
            "https://bitbucket.org/acme/api/src/main/src/a%20b.py#lines-12"
        );
        assert_eq!(
            at(Provider::Template, "https://code.example.com/{branch}/{path}?line={line}"),
            "https://code.example.com/main/src/a%20b.py?line=12"
        );
        let github = mapping(1, "", "", Provider::Github, "https://github.com/acme/api");
        assert_eq!(github.file_url("x.py", None), "https://github.com/acme/api/blob/main/x.py");
        assert_eq!(github.origin(), "https://github.com");
    }

    #[test]
    fn no_frame_can_change_the_host() {
        let github = mapping(1, "", "", Provider::Github, "https://github.com/acme/api");
        for evil in ["//evil.example/x", "\\\\evil.example\\x", "@evil.example/x", "https://evil.example/x", "x?@evil#"]
        {
            let (m, path) = best_mapping(std::slice::from_ref(&github), None, evil).unwrap();
            let url = m.file_url(&path, None);
            assert!(url.starts_with("https://github.com/acme/api/blob/main/"), "{evil:?} gave {url}");
            assert!(!url[8..].contains("//") && !url.contains('@'), "{evil:?} gave {url}");
        }
    }

    #[test]
    fn forms_are_checked_with_messages_a_person_can_act_on() {
        let form = MappingForm {
            project_slug: "backend".into(),
            stack_root: "./src/".into(),
            source_root: "services/api/src".into(),
            provider: "github".into(),
            repo_url: "https://github.com/acme/monorepo/".into(),
            branch: "main".into(),
        };
        let mapping = form.parse().unwrap();
        assert_eq!(
            (mapping.stack_root.as_str(), mapping.repo_url.as_str()),
            ("src", "https://github.com/acme/monorepo")
        );
        for (change, field) in [
            (MappingForm { project_slug: "Back End".into(), ..form.clone() }, "project"),
            (MappingForm { provider: "svn".into(), ..form.clone() }, "provider"),
            (MappingForm { repo_url: "javascript:alert(1)".into(), ..form.clone() }, "https"),
            (MappingForm { repo_url: "https://github.com".into(), ..form.clone() }, "repository"),
            (MappingForm { branch: "../main".into(), ..form.clone() }, "branch"),
            (MappingForm { stack_root: "../x".into(), ..form.clone() }, "stack root"),
            (MappingForm { provider: "template".into(), repo_url: "https://{path}".into(), ..form.clone() }, "host"),
            (
                MappingForm { provider: "template".into(), repo_url: "https://h.example/x".into(), ..form.clone() },
                "{path}",
            ),
        ] {
            let err = change.parse().unwrap_err().to_string();
            assert!(err.contains(field), "{err:?} should mention {field}");
        }
    }
}
