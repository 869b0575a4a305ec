//! A branch or tag of a public git repository to its commit, from the smart-HTTP ref
//! advertisement (`GET <repo>.git/info/refs?service=git-upload-pack`): what
//! `git ls-remote` reads, without a git binary, a clone or credentials.
//!
//! No `Git-Protocol` header is sent, so the server answers protocol v0 (or v1: the same
//! after a `version 1` line): `# service=git-upload-pack`, a flush packet, then one
//! pkt-line per ref (capabilities after a NUL on the first), then a flush packet.

use std::collections::BTreeMap;

use super::SourceError;

/// Largest advertisement read. Every ref is listed, so a repository with very many of
/// them (GitHub lists pull-request refs) can exceed it; an app's repository does not.
pub const MAX_ADVERTISEMENT: usize = 4 << 20;
/// The content type of a smart-HTTP advertisement (a "dumb" server answers `text/plain`).
pub const ADVERTISEMENT_TYPE: &str = "application/x-git-upload-pack-advertisement";
/// Largest pkt-line git allows, its 4-byte length included.
const MAX_PACKET: usize = 65520;
/// Branches named when a ref is not found.
const BRANCHES_SHOWN: usize = 10;

/// Whether `text` is a full commit id: a spec that pins one needs no lookup.
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<base>.git/info/refs?service=git-upload-pack` for a repository URL with or without
/// `.git`; the problem, in words, if it is not a public https repository URL.
pub fn info_refs_url(repository: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(repository).map_err(|e| format!("it is not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err("it is not an https URL".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it carries credentials; Fabrik resolves public repositories only".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it names no host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a repository URL has no query or fragment".to_owned());
    }
    let path = url.path().trim_end_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    if path.is_empty() {
        return Err("it names no repository after the host".to_owned());
    }
    let path = format!("{path}.git/info/refs");
    url.set_path(&path);
    url.set_query(Some("service=git-upload-pack"));
    Ok(url)
}

/// Why an advertisement could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertisementError {
    #[error("the answer is empty")]
    Empty,
    #[error("a packet length `{0}` is not 4 hex digits")]
    BadLength(String),
    #[error("a packet length of {0} is not valid")]
    InvalidLength(usize),
    #[error("the answer is cut inside a packet (truncated)")]
    Truncated,
    #[error("the answer ends before the flush packet that closes the ref list (truncated)")]
    Unterminated,
    #[error("the first packet is `{0}`, not `# service=git-upload-pack`")]
    WrongService(String),
    #[error("the service line is not followed by a flush packet")]
    NoFlushAfterService,
    #[error("the server answered `{0}`, a git protocol Fabrik does not read")]
    Version(String),
    #[error("ref line {line} is not `<40 hex> <name>`: {problem}")]
    BadRef { line: usize, problem: &'static str },
    #[error("a special packet {0:04x} in the ref list")]
    Special(usize),
}

/// One pkt-line.
#[derive(Debug, PartialEq, Eq)]
enum Packet<'a> {
    /// `0000`: the end of a section.
    Flush,
    /// `0001`, `0002`: protocol v2's delimiter and response end.
    Special(usize),
    Data(&'a [u8]),
}

/// Splits the next pkt-line off the front of `rest`; `None` at the end of the bytes.
fn next_packet<'a>(rest: &mut &'a [u8]) -> Option<Result<Packet<'a>, AdvertisementError>> {
    let bytes: &'a [u8] = rest;
    if bytes.is_empty() {
        return None;
    }
    let Some(header) = bytes.get(..4) else {
        return Some(Err(AdvertisementError::Truncated));
    };
    let length = std::str::from_utf8(header)
        .ok()
        .filter(|text| text.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|text| usize::from_str_radix(text, 16).ok());
    let Some(length) = length else {
        return Some(Err(AdvertisementError::BadLength(
            header.escape_ascii().to_string(),
        )));
    };
    let (packet, size) = match length {
        0 => (Packet::Flush, 4),
        1 | 2 => (Packet::Special(length), 4),
        3 => return Some(Err(AdvertisementError::InvalidLength(length))),
        n if n > MAX_PACKET => return Some(Err(AdvertisementError::InvalidLength(n))),
        n => match bytes.get(4..n) {
            Some(payload) => (Packet::Data(payload), n),
            None => return Some(Err(AdvertisementError::Truncated)),
        },
    };
    *rest = bytes.get(size..).unwrap_or_default();
    Some(Ok(packet))
}

fn without_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// The refs a repository advertises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertisement {
    /// Ref name → the object it names (for an annotated tag, the tag object).
    refs: BTreeMap<String, String>,
    /// Annotated tag → the commit it points at (its `^{}` line).
    peeled: BTreeMap<String, String>,
    /// The default branch, from the `symref=HEAD:refs/heads/<name>` capability.
    head: Option<String>,
}

impl Advertisement {
    /// Reads an `info/refs` answer. A server that starts with the refs, without the
    /// service line, is read too; anything cut short or out of shape is an error, never
    /// a partial list (a branch missing from a truncated list is not "not found").
    pub fn parse(body: &[u8]) -> Result<Self, AdvertisementError> {
        let mut rest = body;
        let first = next_packet(&mut rest).ok_or(AdvertisementError::Empty)??;
        let mut pending = None;
        match first {
            Packet::Data(line) if line.starts_with(b"# service=") => {
                if without_newline(line) != b"# service=git-upload-pack" {
                    return Err(AdvertisementError::WrongService(
                        without_newline(line).escape_ascii().to_string(),
                    ));
                }
                match next_packet(&mut rest) {
                    Some(Ok(Packet::Flush)) => {}
                    Some(Err(error)) => return Err(error),
                    _ => return Err(AdvertisementError::NoFlushAfterService),
                }
            }
            other => pending = Some(other),
        }
        let mut advertisement = Self::default();
        let mut number = 0;
        loop {
            let packet = match pending.take() {
                Some(packet) => packet,
                None => next_packet(&mut rest).ok_or(AdvertisementError::Unterminated)??,
            };
            match packet {
                Packet::Flush => return Ok(advertisement),
                Packet::Special(kind) => return Err(AdvertisementError::Special(kind)),
                Packet::Data(line) => {
                    number += 1;
                    advertisement.add(number, without_newline(line))?;
                }
            }
        }
    }

    /// One ref line (`number` counts from 1).
    fn add(&mut self, number: usize, line: &[u8]) -> Result<(), AdvertisementError> {
        let bad = |problem: &'static str| AdvertisementError::BadRef {
            line: number,
            problem,
        };
        if number == 1
            && let Some(version) = line.strip_prefix(b"version ")
        {
            return if version == b"1" {
                Ok(())
            } else {
                Err(AdvertisementError::Version(line.escape_ascii().to_string()))
            };
        }
        let (reference, capabilities) = match line.iter().position(|b| *b == 0) {
            Some(nul) => (&line[..nul], line.get(nul + 1..)),
            None => (line, None),
        };
        let reference = std::str::from_utf8(reference).map_err(|_| bad("it is not UTF-8"))?;
        let (id, name) = reference
            .split_once(' ')
            .ok_or_else(|| bad("no space between the id and the name"))?;
        if !is_commit(id) {
            return Err(bad("the object id is not 40 hex digits"));
        }
        // Git's own rules (`check-ref-format`) allow no space, control character or
        // `~^:?*[\\` in a name; names are printed (the branches a missing one lists),
        // so a server's answer must not carry anything a terminal would obey.
        if name.is_empty() || !is_ref_name(name) {
            // (an empty name is no name git allows either)
            return Err(bad("the ref name has characters git does not allow"));
        }
        if let Some(capabilities) = capabilities {
            self.head = default_branch(capabilities);
        }
        // An empty repository advertises only its capabilities, on this line.
        if name == "capabilities^{}" {
            return Ok(());
        }
        let id = id.to_ascii_lowercase();
        match name.strip_suffix("^{}") {
            Some(tag) => self.peeled.insert(tag.to_owned(), id),
            None => self.refs.insert(name.to_owned(), id),
        };
        Ok(())
    }

    /// The commit `reference` names: the branch of that name, else the tag (the commit
    /// an annotated tag points at, not the tag object), else a full ref name as written.
    pub fn commit_of(&self, reference: &str) -> Option<&str> {
        if let Some(id) = self.refs.get(&format!("refs/heads/{reference}")) {
            return Some(id);
        }
        self.target(&format!("refs/tags/{reference}")).or_else(|| {
            reference
                .starts_with("refs/")
                .then(|| self.target(reference))
                .flatten()
        })
    }

    fn target(&self, name: &str) -> Option<&str> {
        let id = self.refs.get(name)?;
        Some(self.peeled.get(name).unwrap_or(id))
    }

    /// The branch names, the default branch first.
    pub fn branches(&self) -> Vec<&str> {
        let head = self.head.as_deref();
        let mut branches: Vec<&str> = self
            .refs
            .keys()
            .filter_map(|name| name.strip_prefix("refs/heads/"))
            .filter(|name| Some(*name) != head)
            .collect();
        if let Some(head) = head
            && self.refs.contains_key(&format!("refs/heads/{head}"))
        {
            branches.insert(0, head);
        }
        branches
    }

    /// The default branch the server advertised, if any.
    pub fn default_branch(&self) -> Option<&str> {
        self.head.as_deref()
    }
}

/// `symref=HEAD:refs/heads/<name>` among space-separated capabilities.
fn default_branch(capabilities: &[u8]) -> Option<String> {
    std::str::from_utf8(capabilities)
        .ok()?
        .split_ascii_whitespace()
        .find_map(|capability| capability.strip_prefix("symref=HEAD:refs/heads/"))
        .filter(|name| is_ref_name(name))
        .map(str::to_owned)
}

/// A name git itself would accept for a ref (`git check-ref-format`'s character rules;
/// the `^{}` suffix of a peeled tag is allowed): no control character, space, `~`, `^`,
/// `:`, `?`, `*`, `[` or `\\`, no `..`.
fn is_ref_name(name: &str) -> bool {
    let name = name.strip_suffix("^{}").unwrap_or(name);
    !name.contains("..")
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
}

/// The commit `reference` names in the repository whose `info/refs` is at `url`
/// (`repository` is the URL as shown in messages, without credentials).
pub(crate) async fn commit(
    http: &reqwest::Client,
    url: &url::Url,
    repository: &str,
    reference: &str,
) -> Result<String, SourceError> {
    let what = format!("repository `{repository}`");
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| super::request_failed(&what, &e))?;
    let status = response.status().as_u16();
    match status {
        200..=299 => {}
        // GitHub answers 401 for a repository that does not exist or is private.
        401 | 403 | 404 => {
            return Err(SourceError::RepositoryNotFound {
                repository: repository.to_owned(),
                status,
            });
        }
        _ => return Err(SourceError::Status { what, status }),
    }
    let smart = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().starts_with(ADVERTISEMENT_TYPE));
    let body = super::bounded_body(response, MAX_ADVERTISEMENT, &what).await?;
    let advertisement = Advertisement::parse(&body).map_err(|problem| SourceError::Malformed {
        repository: repository.to_owned(),
        problem: if smart {
            format!("its ref advertisement is malformed: {problem}")
        } else {
            format!(
                "it does not answer as a smart git HTTP server (`info/refs` with content type {ADVERTISEMENT_TYPE}): {problem}"
            )
        },
    })?;
    match advertisement.commit_of(reference) {
        Some(id) => Ok(id.to_owned()),
        None => {
            let branches = advertisement.branches();
            Err(SourceError::RefNotFound {
                repository: repository.to_owned(),
                reference: reference.to_owned(),
                more: branches.len().saturating_sub(BRANCHES_SHOWN),
                branches: branches
                    .into_iter()
                    .take(BRANCHES_SHOWN)
                    .map(str::to_owned)
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_git_would_refuse_are_refused() {
        assert!(is_ref_name("refs/heads/main") && is_ref_name("refs/tags/v1^{}"));
        for hostile in [
            "refs/heads/a\nnext: run this",
            "refs/heads/\u{1b}[31mred",
            "refs/heads/a..b",
            "refs/heads/a:b",
        ] {
            assert!(!is_ref_name(hostile), "{hostile:?}");
        }
        let line = |name: &str| {
            let text = format!("{} {name}\n", "a".repeat(40));
            format!("{:04x}{text}", text.len() + 4)
        };
        let body = format!("{}0000", line("refs/heads/ok\u{7}bell"));
        assert!(Advertisement::parse(body.as_bytes()).is_err());
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const TAG_OBJECT: &str = "3333333333333333333333333333333333333333";
    const TAGGED: &str = "4444444444444444444444444444444444444444";
    const LIGHT: &str = "5555555555555555555555555555555555555555";

    /// One pkt-line around `payload`.
    fn pkt(payload: &str) -> String {
        format!("{:04x}{payload}", payload.len() + 4)
    }

    fn advertisement(lines: &[String]) -> Vec<u8> {
        let mut body = pkt("# service=git-upload-pack\n") + "0000";
        for line in lines {
            body.push_str(&pkt(line));
        }
        body.push_str("0000");
        body.into_bytes()
    }

    fn github_like() -> Vec<u8> {
        advertisement(&[
            format!(
                "{A} HEAD\0multi_ack thin-pack side-band side-band-64k ofs-delta shallow symref=HEAD:refs/heads/main agent=git/github-1a2b\n"
            ),
            format!("{B} refs/heads/dev\n"),
            format!("{A} refs/heads/main\n"),
            format!("{A} refs/pull/1/head\n"),
            format!("{TAG_OBJECT} refs/tags/v1.0\n"),
            format!("{TAGGED} refs/tags/v1.0^{{}}\n"),
            format!("{LIGHT} refs/tags/light\n"),
        ])
    }

    #[test]
    fn branches_and_tags_resolve_to_commits() {
        let refs = Advertisement::parse(&github_like()).expect("valid");
        assert_eq!(refs.commit_of("main"), Some(A));
        assert_eq!(refs.commit_of("dev"), Some(B));
        // An annotated tag: the commit, not the tag object.
        assert_eq!(refs.commit_of("v1.0"), Some(TAGGED));
        assert_eq!(refs.commit_of("light"), Some(LIGHT));
        assert_eq!(refs.commit_of("refs/pull/1/head"), Some(A));
        assert_eq!(refs.commit_of("missing"), None);
        assert_eq!(refs.commit_of("1/head"), None);
        assert_eq!(refs.default_branch(), Some("main"));
        assert_eq!(refs.branches(), vec!["main", "dev"]);
    }

    #[test]
    fn a_branch_wins_over_a_tag_of_the_same_name() {
        let refs = Advertisement::parse(&advertisement(&[
            format!("{A} refs/heads/release\0agent=x\n"),
            format!("{TAG_OBJECT} refs/tags/release\n"),
            format!("{TAGGED} refs/tags/release^{{}}\n"),
        ]))
        .expect("valid");
        assert_eq!(refs.commit_of("release"), Some(A));
    }

    #[test]
    fn protocol_v1_and_missing_newlines_are_read() {
        let refs = Advertisement::parse(&advertisement(&[
            "version 1\n".to_owned(),
            format!("{A} refs/heads/main\0report-status"),
            format!("{B} refs/heads/feature/x"),
        ]))
        .expect("valid");
        assert_eq!(refs.commit_of("feature/x"), Some(B));
        assert_eq!(refs.default_branch(), None);
    }

    #[test]
    fn an_advertisement_without_the_service_line_is_read() {
        let body = pkt(&format!("{A} refs/heads/main\0caps\n")) + "0000";
        let refs = Advertisement::parse(body.as_bytes()).expect("valid");
        assert_eq!(refs.commit_of("main"), Some(A));
    }

    #[test]
    fn an_empty_repository_has_no_refs() {
        let zero = "0".repeat(40);
        let refs = Advertisement::parse(&advertisement(&[format!(
            "{zero} capabilities^{{}}\0multi_ack agent=git/2\n"
        )]))
        .expect("valid");
        assert_eq!(refs.commit_of("main"), None);
        assert!(refs.branches().is_empty());
    }

    #[test]
    fn malformed_and_truncated_answers_are_errors() {
        let valid = github_like();
        // Cut anywhere before the closing flush: never a partial list.
        for cut in [1, 3, 10, 30, 34, valid.len() - 20, valid.len() - 4] {
            let error = Advertisement::parse(&valid[..cut]).expect_err("cut");
            assert!(
                matches!(
                    error,
                    AdvertisementError::Truncated
                        | AdvertisementError::Unterminated
                        | AdvertisementError::NoFlushAfterService
                ),
                "cut at {cut}: {error}"
            );
        }
        assert_eq!(Advertisement::parse(b""), Err(AdvertisementError::Empty));
        assert_eq!(
            Advertisement::parse(b"00zz# service=git-upload-pack\n0000"),
            Err(AdvertisementError::BadLength("00zz".to_owned()))
        );
        assert_eq!(
            Advertisement::parse(b"0003"),
            Err(AdvertisementError::InvalidLength(3))
        );
        assert_eq!(
            Advertisement::parse(b"ffff"),
            Err(AdvertisementError::InvalidLength(0xffff))
        );
        // A length longer than what follows.
        let long = format!("0100{A} refs/heads/main\n");
        assert_eq!(
            Advertisement::parse(long.as_bytes()),
            Err(AdvertisementError::Truncated)
        );
        let html = b"<!DOCTYPE html><html>";
        assert!(matches!(
            Advertisement::parse(html),
            Err(AdvertisementError::BadLength(_))
        ));
    }

    #[test]
    fn lines_out_of_shape_are_errors() {
        for (line, expected) in [
            (
                format!("{} refs/heads/main\n", &A[..39]),
                "not 40 hex digits",
            ),
            (format!("{A}refs/heads/main\n"), "no space"),
            (format!("{A} \n"), "characters git does not allow"),
        ] {
            let error = Advertisement::parse(&advertisement(&[line])).expect_err("bad line");
            assert!(error.to_string().contains(expected), "{error}");
        }
        let body = pkt("# service=git-receive-pack\n") + "0000" + "0000";
        assert!(matches!(
            Advertisement::parse(body.as_bytes()),
            Err(AdvertisementError::WrongService(_))
        ));
        let v2 = advertisement(&["version 2\n".to_owned(), "ls-refs\n".to_owned()]);
        assert!(matches!(
            Advertisement::parse(&v2),
            Err(AdvertisementError::Version(_))
        ));
        let delimited = pkt("# service=git-upload-pack\n") + "0000" + "0001";
        assert_eq!(
            Advertisement::parse(delimited.as_bytes()),
            Err(AdvertisementError::Special(1))
        );
        let no_flush = pkt("# service=git-upload-pack\n") + &pkt(&format!("{A} refs/heads/main\n"));
        assert_eq!(
            Advertisement::parse(no_flush.as_bytes()),
            Err(AdvertisementError::NoFlushAfterService)
        );
    }

    #[test]
    fn commits_are_recognized() {
        assert!(is_commit(A));
        assert!(is_commit("0123456789ABCDEF0123456789abcdef01234567"));
        assert!(!is_commit("main"));
        assert!(!is_commit(&A[..39]));
        assert!(!is_commit(&format!("{}g", &A[..39])));
    }

    #[test]
    fn info_refs_urls() {
        let expected = "https://github.com/acme/shop.git/info/refs?service=git-upload-pack";
        for repository in [
            "https://github.com/acme/shop",
            "https://github.com/acme/shop.git",
            "https://github.com/acme/shop/",
            "https://github.com/acme/shop.git/",
        ] {
            assert_eq!(
                info_refs_url(repository).expect(repository).as_str(),
                expected,
                "{repository}"
            );
        }
        assert_eq!(
            info_refs_url("https://gitlab.com/group/sub/project")
                .expect("nested")
                .as_str(),
            "https://gitlab.com/group/sub/project.git/info/refs?service=git-upload-pack"
        );
        assert_eq!(
            info_refs_url("https://git.example.com:8443/a/b")
                .expect("port")
                .as_str(),
            "https://git.example.com:8443/a/b.git/info/refs?service=git-upload-pack"
        );
        for bad in [
            "http://github.com/acme/shop",
            "https://github.com/",
            "https://github.com",
            "https://github.com/acme/shop?x=1",
            "github.com/acme/shop",
        ] {
            assert!(info_refs_url(bad).is_err(), "{bad}");
        }
        let error = info_refs_url("https://alice:s3cret@github.com/acme/shop").expect_err("creds");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
