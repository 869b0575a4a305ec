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

/// The owner tag of `app` in `project`, at most [`MAX_LEN`] bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

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
