//! The owner tag every created resource carries: `fabrik:<project>/<app>`.
//!
//! Providers store it where the API has room for free text (Coolify's description,
//! Cloudflare's record comment), and the tightest of those limits is Cloudflare's: record
//! comments are capped at 100 characters on Free zones (500 on paid plans). A project name
//! has no length limit, so a tag that would not fit keeps a readable prefix of the project
//! name and a hash of the whole name: still unique per project and app, and the same on
//! every machine.

/// The longest owner tag: Cloudflare's comment limit on Free zones.
pub const MAX_LEN: usize = 100;

/// Hex digits of the project-name hash in a shortened tag (48 bits).
const HASH_DIGITS: usize = 12;

/// The owner tag of `app` (a deployment key: `api`, `api@staging`) in `project`, at most
/// [`MAX_LEN`] bytes.
pub fn owner_tag(project: &str, app: &str) -> String {
    let full = format!("fabrik:{project}/{app}");
    if full.len() <= MAX_LEN {
        return full;
    }
    let hash = blake3::hash(project.as_bytes()).to_hex();
    let hash = &hash[..HASH_DIGITS];
    // `fabrik:` + prefix + `~` + hash + `/` + app
    let fixed = "fabrik:".len() + 1 + HASH_DIGITS + 1 + app.len();
    let room = MAX_LEN.saturating_sub(fixed);
    let mut prefix = String::new();
    for c in project.chars() {
        if prefix.len() + c.len_utf8() > room {
            break;
        }
        prefix.push(c);
    }
    let tag = format!("fabrik:{prefix}~{hash}/{app}");
    if tag.len() <= MAX_LEN {
        return tag;
    }
    // Only an app name far beyond the spec's 63-character limit gets here.
    let app_hash = blake3::hash(app.as_bytes()).to_hex();
    format!("fabrik:~{hash}/~{}", &app_hash[..HASH_DIGITS])
}

/// The longest deployment key: an app name is a DNS label (63 characters), and the spec
/// keeps an app and its environment (`api@staging`) within the same 63
/// (`spec::environments::MAX_KEY_LEN`), so that every tag of a project starts with the
/// same prefix (`project_prefix`) whatever its environments.
const MAX_APP_LEN: usize = crate::spec::environments::MAX_KEY_LEN;

/// A prefix every owner tag of `project` starts with, whatever the app: what `fabrik gc`
/// asks providers to `list`. Tags of other projects may share a shortened prefix; the
/// caller checks each tag with [`app_of`].
pub fn project_prefix(project: &str) -> String {
    let full = format!("fabrik:{project}/");
    if full.len() + MAX_APP_LEN <= MAX_LEN {
        return full;
    }
    // Some of the project's tags are shortened: what they share is the start of the
    // project name that fits beside the longest app name.
    let room = MAX_LEN - ("fabrik:".len() + 1 + HASH_DIGITS + 1 + MAX_APP_LEN);
    let mut prefix = String::from("fabrik:");
    for c in project.chars() {
        if prefix.len() + c.len_utf8() > "fabrik:".len() + room {
            break;
        }
        prefix.push(c);
    }
    prefix
}

/// The app of `project` whose owner tag is `tag`, if it is one.
pub fn app_of(project: &str, tag: &str) -> Option<String> {
    let app = tag.rsplit_once('/')?.1;
    (!app.is_empty() && owner_tag(project, app) == tag).then(|| app.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_of_a_project_starts_with_its_prefix_and_names_its_app() {
        for project in [
            "acme",
            &"p".repeat(29),
            &"q".repeat(30),
            &"long-team-".repeat(12),
        ] {
            let prefix = project_prefix(project);
            for app in ["a", "api", &"x".repeat(MAX_APP_LEN)] {
                let tag = owner_tag(project, app);
                assert!(
                    tag.starts_with(&prefix),
                    "{tag} does not start with {prefix}"
                );
                assert_eq!(app_of(project, &tag).as_deref(), Some(app));
                assert_eq!(app_of(&format!("{project}-2"), &tag), None);
            }
        }
        assert_eq!(project_prefix("acme"), "fabrik:acme/");
        assert_eq!(app_of("acme", "fabrik:acme-2/api"), None);
        assert_eq!(app_of("acme", "fabrik:acme/"), None);
        assert_eq!(app_of("acme", "not a tag"), None);
    }

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(owner_tag("acme", "test-api"), "fabrik:acme/test-api");
    }

    #[test]
    fn long_project_names_are_shortened_to_fit_and_stay_distinct() {
        let app = "a".repeat(63);
        let long = "the-platform-team-of-a-rather-large-company".repeat(3);
        let tag = owner_tag(&long, &app);
        assert!(tag.len() <= MAX_LEN, "{tag} is {} bytes", tag.len());
        assert!(tag.starts_with("fabrik:the-platform"));
        assert!(tag.ends_with(&format!("/{app}")));
        let other = owner_tag(&format!("{long}-2"), &app);
        assert_ne!(tag, other, "two long project names sharing a prefix differ");
        assert_eq!(tag, owner_tag(&long, &app), "deterministic");
        // A multi-byte project name is cut on a character boundary.
        let tag = owner_tag(&"é".repeat(80), "api");
        assert!(tag.len() <= MAX_LEN);
    }

    #[test]
    fn even_an_unreasonable_app_name_fits() {
        let tag = owner_tag(&"p".repeat(300), &"a".repeat(300));
        assert!(tag.len() <= MAX_LEN);
    }
}
