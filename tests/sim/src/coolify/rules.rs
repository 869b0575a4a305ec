//! Coolify's request validation, ported from the real server (coollabsio/coolify, tag
//! v4.3.10, commit 83f1a2e5; read, not copied). Each rule cites the upstream file and
//! function it follows; `tests/sim/README.md` lists them and where the simulator still
//! differs.
//!
//! Error messages are Laravel 12's defaults except where Coolify overrides them
//! (`customApiValidator()` in bootstrap/helpers/shared.php turns `required` into "This
//! field is required.").

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde_json::{Map, Value, json};

/// A Laravel `MessageBag`: field → messages, answered as one 422.
#[derive(Debug, Default)]
pub struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `422 {"message":"Validation failed.","errors":{field:[messages]}}`, or `None`.
    pub fn response(self) -> Option<Response> {
        (!self.is_empty()).then(|| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "message": "Validation failed.", "errors": self.0 })),
            )
                .into_response()
        })
    }
}

/// Every key of `body` not in `allowed` gets "This field is not allowed." in `errors`: the
/// controllers merge them into the validator's bag and answer once
/// (ApplicationsController::create_application, `$allowedFields` then `$errors->add`).
pub fn not_allowed(body: &Map<String, Value>, allowed: &[&str], errors: &mut Errors) {
    for key in body.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.add(key, "This field is not allowed.");
        }
    }
}

/// `required|string` with Coolify's message for `required`.
pub fn required_string(body: &Map<String, Value>, field: &str, errors: &mut Errors) {
    match body.get(field) {
        None | Some(Value::Null) => errors.add(field, "This field is required."),
        Some(Value::String(s)) if s.is_empty() => errors.add(field, "This field is required."),
        Some(Value::String(_)) => {}
        Some(_) => errors.add(
            field,
            format!("The {} field must be a string.", human(field)),
        ),
    }
}

/// `string|max:N` (nullable when `nullable`).
pub fn optional_string(
    body: &Map<String, Value>,
    field: &str,
    max: Option<usize>,
    nullable: bool,
    errors: &mut Errors,
) {
    match body.get(field) {
        None => {}
        Some(Value::Null) if nullable => {}
        Some(Value::String(s)) => {
            if let Some(max) = max
                && s.chars().count() > max
            {
                errors.add(
                    field,
                    format!(
                        "The {} field must not be greater than {max} characters.",
                        human(field)
                    ),
                );
            }
        }
        Some(_) => errors.add(
            field,
            format!("The {} field must be a string.", human(field)),
        ),
    }
}

/// `boolean`: Laravel accepts true, false, 0, 1, "0", "1".
pub fn boolean(body: &Map<String, Value>, field: &str, errors: &mut Errors) {
    let ok = match body.get(field) {
        None | Some(Value::Bool(_)) => true,
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n <= 1),
        Some(Value::String(s)) => s == "0" || s == "1",
        Some(_) => false,
    };
    if !ok {
        errors.add(
            field,
            format!("The {} field must be true or false.", human(field)),
        );
    }
}

/// Laravel's attribute name in messages: underscores become spaces.
fn human(field: &str) -> String {
    field.replace('_', " ")
}

/// `DOCKER_IMAGE_NAME_PATTERN` (app/Support/ValidationPatterns.php), used by
/// `dockerImageNameRules()` on `PATCH /applications/{uuid}`: lowercase, an optional
/// `host[:port]/`, no tag, a digest only as a bare `@sha256` suffix. The upstream
/// lookahead `(?=.{1,255}\z)` is the length check in [`image_name_problem`] (the
/// `regex` crate has no lookaround).
static IMAGE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\A(?:(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?:@sha256)?\z",
    )
    .expect("valid pattern")
});

/// `dockerImageTagRules()` (ValidationPatterns.php): `max:128` and no `:`.
static IMAGE_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\z").expect("valid pattern"));

/// `ENVIRONMENT_VARIABLE_KEY_PATTERN` (ValidationPatterns.php).
static ENV_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[A-Za-z_][A-Za-z0-9_.]*\z").expect("valid pattern"));

/// The name rule of `PATCH /applications/{uuid}` (`dockerImageNameRules()`).
pub fn image_name_problem(name: &str) -> Option<&'static str> {
    (name.is_empty() || name.len() > 255 || !IMAGE_NAME.is_match(name))
        .then_some("The docker registry image name field format is invalid.")
}

/// `dockerImageTagRules()`.
pub fn image_tag_problem(tag: &str) -> Option<&'static str> {
    (!IMAGE_TAG.is_match(tag)).then_some("The docker registry image tag field format is invalid.")
}

/// The create-only `DockerImageFormat` rule (app/Rules/DockerImageFormat.php): the name
/// may carry `:tag` or `@sha256:<64 hex>`, not both, and `:sha256:` is a typo it names.
pub fn image_format_problem(reference: &str) -> Option<&'static str> {
    const FORMAT: &str = "The docker registry image name format is invalid. Use image:tag or image@sha256:hash format.";
    static TYPO: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i):sha256?:").expect("valid pattern"));
    static DIGEST: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\A(.+)@sha256:([a-f0-9]{64})\z").expect("valid pattern"));
    if TYPO.is_match(reference) {
        return Some(
            "The docker registry image name must use @ before sha256 digest (e.g., image@sha256:hash, not image:sha256:hash).",
        );
    }
    if let Some(found) = DIGEST.captures(reference) {
        return image_name_problem(&found[1]).map(|_| FORMAT);
    }
    let (name, tag) = split_tag(reference);
    if image_name_problem(name).is_some() || tag.is_some_and(|t| image_tag_problem(t).is_some()) {
        return Some(FORMAT);
    }
    None
}

/// A tag follows the last `:` after the last `/`.
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            Some(&reference[last_slash + i + 1..]),
        ),
        None => (reference, None),
    }
}

/// What create stores for `name` (and the optional tag field): `DockerImageParser::parse`
/// (app/Services/DockerImageParser.php) as ApplicationsController::create_application
/// uses it: a digest becomes name `repo@sha256` and tag `<hex>`, a missing tag `latest`,
/// a 64-hex tag is taken for a digest.
pub fn parse_image(name: &str, tag: Option<&str>) -> (String, String) {
    let reference = match tag.filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name.to_owned(),
    };
    let is_hex64 = |t: &str| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((main, digest)) = reference.split_once("@sha256:")
        && is_hex64(digest)
    {
        return (format!("{main}@sha256"), digest.to_owned());
    }
    match split_tag(&reference) {
        (main, Some(tag)) if is_hex64(tag) => {
            let main = if main.ends_with("@sha256") {
                main.to_owned()
            } else {
                format!("{main}@sha256")
            };
            (main, tag.to_owned())
        }
        (main, Some(tag)) => (main.to_owned(), tag.to_owned()),
        (main, None) => (main.to_owned(), "latest".to_owned()),
    }
}

/// `environmentVariableKeyRules()`: `required|string|max:255|regex`.
pub fn env_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("This field is required.");
    }
    if key.len() > 255 {
        return Some("The key field must not be greater than 255 characters.");
    }
    (!ENV_KEY.is_match(key)).then_some("The key field format is invalid.")
}

/// `nameRules()` (ValidationPatterns.php, `NAME_PATTERN`, 3 to 255 characters), used by
/// the projects and environments endpoints (not by applications or services).
pub fn name_problem(name: &str) -> Option<String> {
    static NAME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[\p{L}\p{M}\p{N}\s\-_.@/&()#,:+]+$").expect("valid pattern")
    });
    let length = name.chars().count();
    if name.is_empty() {
        return Some("This field is required.".to_owned());
    }
    if length < 3 {
        return Some("The name field must be at least 3 characters.".to_owned());
    }
    if length > 255 {
        return Some("The name field must not be greater than 255 characters.".to_owned());
    }
    (!NAME.is_match(name)).then(|| {
        "The name may only contain letters (including Unicode), numbers, spaces, and these characters: - _ . / @ & ( ) # , : +".to_owned()
    })
}

/// `descriptionRules()` (ValidationPatterns.php, `DESCRIPTION_PATTERN`, at most 255).
pub fn description_problem(description: &str) -> Option<String> {
    static DESCRIPTION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^[\p{L}\p{M}\p{N}\s\-_.,!?()'"+=*@/&]+$"#).expect("valid pattern")
    });
    if description.is_empty() {
        return None;
    }
    if description.chars().count() > 255 {
        return Some("The description field must not be greater than 255 characters.".to_owned());
    }
    (!DESCRIPTION.is_match(description)).then(|| {
        "The description may only contain letters (including Unicode), numbers, spaces, and common punctuation: - _ . , ! ? ( ) ' \" + = * / @ &".to_owned()
    })
}

/// `applicationDomainRules()` and `validateApplicationDomains()` (ValidationPatterns.php;
/// `isValidDomainUrl` in bootstrap/helpers/domains.php): a comma list of http(s) URLs,
/// at most 2048 characters, without shell metacharacters.
pub fn domain_problems(text: &str) -> Vec<String> {
    if text.chars().count() > 2048 {
        return vec!["The domains field must not be greater than 2048 characters.".to_owned()];
    }
    let forbidden = |c: char| "`$;&|<>()\\\r\n".contains(c);
    split_domains(text)
        .into_iter()
        .filter_map(|url| {
            if url.chars().any(forbidden) {
                return Some(format!("Invalid URL: {url}"));
            }
            let Some((scheme, rest)) = url.split_once("://") else {
                return Some(format!("Invalid URL: {url}"));
            };
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return Some(format!(
                    "Invalid URL scheme: {scheme} for URL: {url}. Only http and https are supported."
                ));
            }
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let host = host.split(':').next().unwrap_or_default();
            let ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                && !rest.contains(char::is_whitespace);
            (!ok).then(|| format!("Invalid URL: {url}"))
        })
        .collect()
}

/// `applicationDomainList` (ValidationPatterns.php): trimmed, empty entries dropped.
pub fn split_domains(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `normalizeApplicationDomainUrl`: scheme and host lower-cased, the rest kept.
pub fn normalize_domain(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                rest[..end].to_ascii_lowercase(),
                &rest[end..]
            )
        }
        None => url.to_owned(),
    }
}

/// `ports_exposes`: `string|regex:/^(\d+)(,\d+)*$/` (sharedDataApplications()).
pub fn ports_problem(ports: &str) -> Option<&'static str> {
    let ok = !ports.is_empty()
        && ports
            .split(',')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (!ok).then_some("The ports exposes field format is invalid.")
}

/// Keys every application create variant accepts: one shared allow-list
/// (ApplicationsController::create_application, `$allowedFields`).
pub const APPLICATION_CREATE_FIELDS: &[&str] = &[
    "project_uuid",
    "environment_name",
    "environment_uuid",
    "server_uuid",
    "destination_uuid",
    "type",
    "name",
    "description",
    "is_static",
    "is_spa",
    "is_auto_deploy_enabled",
    "is_force_https_enabled",
    "is_preview_deployments_enabled",
    "domains",
    "noindex_domains",
    "git_repository",
    "git_branch",
    "git_commit_sha",
    "private_key_uuid",
    "docker_registry_image_name",
    "docker_registry_image_tag",
    "build_pack",
    "install_command",
    "build_command",
    "start_command",
    "ports_exposes",
    "ports_mappings",
    "custom_network_aliases",
    "base_directory",
    "publish_directory",
    "health_check_enabled",
    "health_check_type",
    "health_check_command",
    "health_check_path",
    "health_check_port",
    "health_check_host",
    "health_check_method",
    "health_check_return_code",
    "health_check_scheme",
    "health_check_response_text",
    "health_check_interval",
    "health_check_timeout",
    "health_check_retries",
    "health_check_start_period",
    "limits_memory",
    "limits_memory_swap",
    "limits_memory_swappiness",
    "limits_memory_reservation",
    "limits_cpus",
    "limits_cpuset",
    "limits_cpu_shares",
    "custom_labels",
    "custom_docker_run_options",
    "post_deployment_command",
    "post_deployment_command_container",
    "pre_deployment_command",
    "pre_deployment_command_container",
    "manual_webhook_secret_github",
    "manual_webhook_secret_gitlab",
    "manual_webhook_secret_bitbucket",
    "manual_webhook_secret_gitea",
    "redirect",
    "github_app_uuid",
    "instant_deploy",
    "dockerfile",
    "dockerfile_location",
    "docker_compose_location",
    "docker_compose_raw",
    "docker_compose_custom_start_command",
    "docker_compose_custom_build_command",
    "docker_compose_domains",
    "watch_paths",
    "use_build_server",
    "use_build_secrets",
    "static_image",
    "custom_nginx_configuration",
    "is_http_basic_auth_enabled",
    "http_basic_auth_username",
    "http_basic_auth_password",
    "connect_to_docker_network",
    "force_domain_override",
    "autogenerate_domain",
    "is_container_label_escape_enabled",
    "tags",
    "is_preserve_repository_enabled",
    "preview_url_template",
    "max_restart_count",
    // APPLICATION_SETTING_FIELDS
    "is_git_submodules_enabled",
    "is_git_lfs_enabled",
    "is_git_shallow_clone_enabled",
    "disable_build_cache",
    "inject_build_args_to_dockerfile",
    "include_source_commit_in_build",
    "is_env_sorting_enabled",
    "is_pr_deployments_public_enabled",
    "stop_grace_period",
    "docker_images_to_keep",
    "is_gzip_enabled",
    "is_stripprefix_enabled",
    "is_raw_compose_deployment_enabled",
    "is_log_drain_enabled",
    "is_gpu_enabled",
    "gpu_driver",
    "gpu_count",
    "gpu_device_ids",
    "gpu_options",
    "is_consistent_container_name_enabled",
    "custom_internal_name",
];

/// Create-only keys that `PATCH /applications/{uuid}` refuses
/// (ApplicationsController::update_by_uuid, `$allowedFields`); PATCH adds
/// `dockerfile_target_build`.
pub const APPLICATION_CREATE_ONLY_FIELDS: &[&str] = &[
    "project_uuid",
    "environment_name",
    "environment_uuid",
    "server_uuid",
    "destination_uuid",
    "type",
    "private_key_uuid",
    "github_app_uuid",
    "dockerfile",
    "docker_compose_raw",
    "autogenerate_domain",
    "tags",
];

/// The allow-list of `PATCH /applications/{uuid}`.
pub fn application_update_fields() -> Vec<&'static str> {
    APPLICATION_CREATE_FIELDS
        .iter()
        .copied()
        .filter(|f| !APPLICATION_CREATE_ONLY_FIELDS.contains(f))
        .chain(["dockerfile_target_build"])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_name_rule_has_no_tag() {
        for ok in [
            "nginx",
            "library/nginx",
            "ghcr.io/acme/api",
            "localhost:5000/app",
            "registry.example.com:5000/team/app",
            "nginx@sha256",
        ] {
            assert_eq!(image_name_problem(ok), None, "{ok}");
        }
        let digest = format!("nginx@sha256:{}", "a".repeat(64));
        for bad in [
            "nginx:latest",
            "ghcr.io/acme/api:1.4",
            digest.as_str(),
            "Nginx",
            "-app",
            "app-",
            "a___b",
            "a b",
        ] {
            assert!(image_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn create_parses_references_as_coolify_does() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_image("nginx", None),
            ("nginx".into(), "latest".into())
        );
        assert_eq!(
            parse_image("nginx:1.25", None),
            ("nginx".into(), "1.25".into())
        );
        assert_eq!(
            parse_image("nginx", Some("1.25")),
            ("nginx".into(), "1.25".into())
        );
        assert_eq!(
            parse_image(&format!("nginx@sha256:{hex}"), None),
            ("nginx@sha256".into(), hex.clone())
        );
        assert_eq!(
            parse_image("nginx", Some(&hex)),
            ("nginx@sha256".into(), hex.clone())
        );
        assert_eq!(
            parse_image("localhost:5000/app", None),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert!(image_format_problem("nginx:sha256:abc").is_some());
        assert!(image_format_problem(&format!("nginx:1@sha256:{hex}")).is_some());
        assert_eq!(image_format_problem("ghcr.io/acme/api:1.4"), None);
    }

    #[test]
    fn domains_follow_the_url_rules() {
        assert!(domain_problems("https://a.example.com,http://b.example.com/x").is_empty());
        assert_eq!(
            domain_problems("a.example.com"),
            ["Invalid URL: a.example.com"]
        );
        assert_eq!(
            domain_problems("https://a.example.com;rm"),
            ["Invalid URL: https://a.example.com;rm"]
        );
        assert!(domain_problems("ftp://a.example.com")[0].starts_with("Invalid URL scheme: ftp"));
    }
}
