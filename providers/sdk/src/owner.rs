//! Ownership: every resource Fabrik creates carries its owner tag
//! (`fabrik:<project>/<app>`), stored wherever the API has room for free text (a
//! description, a comment). The host decides what to adopt; a provider only has to report
//! the tag it finds, never delete what does not carry the caller's tag, and list what
//! starts with a project's prefix.

use crate::ProviderError;
use crate::error::permanent;

/// For `lookup`: among resources with the wanted name, the one carrying `owner`, else the
/// first (the host sees its foreign or missing tag and refuses to adopt it).
pub fn ours_first<'a, R>(
    candidates: &'a [R],
    owner: &str,
    tag: impl Fn(&R) -> Option<&str>,
) -> Option<&'a R> {
    candidates
        .iter()
        .find(|r| tag(r) == Some(owner))
        .or(candidates.first())
}

/// For `delete`: refuses unless the resource, as just read, still carries `owner`.
/// `what` names the resource in the error (`dns-record www.example.org`).
pub fn ensure_owned(found: Option<&str>, owner: &str, what: &str) -> Result<(), ProviderError> {
    if found == Some(owner) {
        Ok(())
    } else {
        Err(permanent(format!(
            "refusing to delete {what}: it carries {}, not the owner tag `{owner}`",
            found.map_or_else(|| "no owner tag".to_owned(), |t| format!("the tag {t:?}"))
        )))
    }
}

/// For `list`: whether a resource's tag belongs under `prefix`. An empty prefix or one
/// that does not start with `fabrik:` matches nothing: `list` never returns untagged or
/// foreign resources.
pub fn has_prefix(found: Option<&str>, prefix: &str) -> bool {
    prefix.starts_with("fabrik:") && found.is_some_and(|tag| tag.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_is_preferred_then_any() {
        let found = [
            ("a", Some("fabrik:x/other")),
            ("b", Some("fabrik:x/api")),
            ("c", None),
        ];
        let pick = |owner| ours_first(&found, owner, |r| r.1).map(|r| r.0);
        assert_eq!(pick("fabrik:x/api"), Some("b"));
        assert_eq!(pick("fabrik:y/api"), Some("a"));
        assert_eq!(ours_first::<(&str, Option<&str>)>(&[], "o", |r| r.1), None);
    }

    #[test]
    fn only_the_owner_may_delete() {
        assert!(ensure_owned(Some("fabrik:x/api"), "fabrik:x/api", "r").is_ok());
        assert!(ensure_owned(Some("fabrik:x/web"), "fabrik:x/api", "r").is_err());
        assert!(ensure_owned(None, "fabrik:x/api", "r").is_err());
    }

    #[test]
    fn prefixes_never_match_untagged_or_foreign() {
        assert!(has_prefix(Some("fabrik:acme/api"), "fabrik:acme/"));
        assert!(!has_prefix(Some("fabrik:acme-2/api"), "fabrik:acme/"));
        assert!(!has_prefix(None, "fabrik:acme/"));
        assert!(!has_prefix(Some("anything"), ""));
    }
}
