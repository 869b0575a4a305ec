//! `source:`: an image reference or a git repository with a branch, tag or commit.

use super::*;

pub(super) const SOURCE_KEYS: &[&str] = &["image", "git", "branch", "commit"];

impl Reader<'_> {
    pub(super) fn source(&mut self, top: &Mapping) -> Option<Source> {
        let value = Self::get(top, "source")?;
        let mapping = self.mapping(value, "source")?;
        self.known_keys(mapping, "source", SOURCE_KEYS);
        let image = self.string(mapping, "source", "image");
        let git = self.string(mapping, "source", "git");
        let branch = self.string(mapping, "source", "branch");
        let commit = self.string(mapping, "source", "commit");
        match (image, git) {
            (Some(_), Some(_)) => {
                self.error_with_hint(
                    "source",
                    "sets both `image` and `git`",
                    Some("choose one place the code comes from".into()),
                );
                None
            }
            (Some(image), None) => {
                if branch.is_some() || commit.is_some() {
                    let field = if branch.is_some() {
                        "source.branch"
                    } else {
                        "source.commit"
                    };
                    self.error_with_hint(
                        field,
                        "only applies to a `git` source",
                        Some(
                            "remove it, or pin the image by digest (`name@sha256:<digest>`)".into(),
                        ),
                    );
                }
                match image_reference_problem(&image) {
                    Some(problem) => {
                        self.error_with_hint("source.image", format!("{image:?} is not a valid image reference: {problem}"), Some("write a reference such as `ghcr.io/acme/my-api:1.4` or `nginx@sha256:<digest>`".into()));
                        None
                    }
                    None => Some(Source::Image {
                        image,
                        digest: None,
                    }),
                }
            }
            (None, Some(repository)) => {
                let repository = self.git_repository(repository)?;
                let branch = branch.unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
                if let Some(problem) = branch_problem(&branch) {
                    self.error(
                        "source.branch",
                        format!("{branch:?} is not a valid branch name: {problem}"),
                    );
                    return None;
                }
                if let Some(commit) = &commit
                    && !(commit.len() == 40
                        && commit
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
                {
                    self.error_with_hint(
                        "source.commit",
                        format!("{commit:?} is not a full commit id"),
                        Some("write the 40 lowercase hex digits of the commit (`git rev-parse HEAD`), or remove it to deploy the branch's newest commit".into()),
                    );
                    return None;
                }
                Some(Source::Git {
                    repository,
                    branch,
                    commit,
                })
            }
            (None, None) => {
                self.error_with_hint(
                    "source",
                    "names no source",
                    Some(
                        "set `image: <reference>`, or `git: <https url>` with an optional `branch`"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    pub(super) fn git_repository(&mut self, url: String) -> Option<String> {
        let field = "source.git";
        let Some(rest) = url.strip_prefix("https://") else {
            self.error_with_hint(field, format!("{url:?} is not an https URL"), Some("Fabrik deploys public repositories over https, such as `https://github.com/acme/my-api`".into()));
            return None;
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.contains('@') {
            // Credentials in a URL would end up in Coolify, the state and the logs.
            self.error_with_hint(
                field,
                "must not contain credentials",
                Some("use a public repository; private repositories are not supported yet".into()),
            );
            return None;
        }
        let path = rest[host.len()..].trim_matches('/');
        if host.is_empty()
            || path.is_empty()
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.error(
                field,
                format!("{url:?} is not a repository URL (expected https://<host>/<owner>/<repo>)"),
            );
            return None;
        }
        Some(url)
    }
}

/// A container image reference Coolify can deploy: `name[:tag]` or `name@sha256:<hex>`.
///
/// The name follows `DOCKER_IMAGE_NAME_PATTERN` (coollabsio/coolify
/// app/Support/ValidationPatterns.php): lowercase, an optional `host[:port]/`, components
/// joined by `.`, `_`, `__` or dashes; the tag `dockerImageTagRules()`; a digest is
/// sha256 with 64 hex digits (`DockerImageParser`). Coolify stores a digest as name
/// `repo@sha256` and tag `<hex>`, so a tag and a digest together cannot be deployed.
pub(super) fn image_reference_problem(image: &str) -> Option<&'static str> {
    static NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\A(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\z",
        )
        .expect("valid pattern")
    });
    static TAG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\z").expect("valid pattern")
    });
    if image.len() > 255 {
        return Some("longer than 255 characters");
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains whitespace");
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some("the digest must be `sha256:` and 64 hex digits");
        }
    }
    // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        if digest.is_some() {
            return Some("Coolify deploys a tag or a digest, not both: keep `@sha256:<digest>`");
        }
        if !TAG.is_match(tag) {
            return Some("the tag must be 1 to 128 letters, digits, `_`, `.` or `-`");
        }
        // Coolify reads a 64-hex tag as a digest when it creates the app
        // (`DockerImageParser`) but stores it as a tag when it updates it
        // (`update_by_uuid`): the two would differ at every apply.
        if tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(
                "a tag of 64 hex digits is taken for a digest by Coolify on create and for a tag on update: write it `name@sha256:<digest>`",
            );
        }
    }
    if !NAME.is_match(name) {
        return Some(
            "the name must be lowercase letters and digits, joined by `.`, `_` or `-` and separated by `/`, after an optional `registry[:port]/`",
        );
    }
    None
}

/// The subset of git's ref-name rules that catches typos and injection.
pub(super) fn branch_problem(branch: &str) -> Option<&'static str> {
    if branch.starts_with('-') || branch.starts_with('/') || branch.ends_with('/') {
        return Some("must not start with `-` or start or end with `/`");
    }
    if branch.contains("..") || branch.ends_with(".lock") || branch.contains("@{") {
        return Some("must not contain `..` or `@{` or end with `.lock`");
    }
    if branch
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
    {
        return Some("must not contain spaces or any of ~^:?*[\\");
    }
    None
}
