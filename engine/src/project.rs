//! The project a spec belongs to: the nearest directory, from the spec's own upwards, that
//! holds a `fabrik.toml`; without one, the spec's directory. `fabrik.toml` names the
//! project and its providers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Role;
use crate::spec::model::{NotifyEvent, Webhook, WebhookFormat, WebhookTarget};

/// Name of the project file that marks a project's root.
pub const PROJECT_FILE: &str = "fabrik.toml";

/// The project directory of the spec at `spec_path`.
pub fn project_dir(spec_path: &Path) -> PathBuf {
    let absolute = std::path::absolute(spec_path).unwrap_or_else(|_| spec_path.to_path_buf());
    let spec_dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    find_root(&spec_dir)
}

/// The project directory containing `dir`: the nearest ancestor with a `fabrik.toml`.
pub fn find_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.join(PROJECT_FILE).is_file())
        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf)
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    /// Used in owner tags (`fabrik:<name>/<app>`).
    pub name: String,
    /// No `fabrik.toml` names the project: its name is its directory's, and renaming the
    /// directory would change every owner tag (`fabrik init` writes the file).
    pub named_after_directory: bool,
    /// Providers by role, with defaults filled in for roles the file does not name.
    pub providers: BTreeMap<Role, ProviderEntry>,
    /// Webhooks told about every app's runs (`[[notify]]`), besides each spec's own.
    pub notify: Vec<Webhook>,
    /// Where the state lives (`[state]`).
    pub state: StateConfig,
}

/// Where a provider comes from and how it is configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    /// A provider embedded in `fabrik`, by name (`coolify`, `cloudflare`).
    pub bundled: Option<String>,
    /// A component file, relative to the project directory.
    pub path: Option<PathBuf>,
    /// A component published to an OCI registry: `oci://registry/repository[:tag]`
    /// or `…@sha256:<digest>` (see `plugins::oci`).
    pub source: Option<String>,
    /// The version required (checked against what the provider reports).
    pub version: Option<String>,
    /// Non-secret configuration, passed to the provider's `configure`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret configuration: key → name of the environment variable (or `.env` key) that
    /// holds the value. Never the value itself.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Configuration read from environment variables (or `.env`) when `config` does not
    /// set it: key → variable name (`config-env = { base-url = "DNS_API_URL" }`). The
    /// bundled providers come with theirs (`COOLIFY_URL`, `CLOUDFLARE_API_URL`); a path
    /// provider names its own, so a project need not be edited when a URL changes.
    #[serde(default, rename = "config-env")]
    pub config_env: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    project: ProjectSection,
    #[serde(default)]
    providers: BTreeMap<String, ProviderEntry>,
    #[serde(default)]
    notify: Vec<WebhookEntry>,
    #[serde(default)]
    state: StateConfig,
}

/// `[state]`: where the project's state lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `sqlite` (the default: a file beside the project) or `postgres` (a team's
    /// database; its connection string comes from `FABRIK_STATE_URL`, never this file).
    #[serde(default)]
    pub backend: StateBackend,
    /// The PostgreSQL schema holding Fabrik's tables (default `fabrik`).
    pub schema: Option<String>,
    /// A PEM file of CAs to trust for the database's TLS, relative to the project.
    pub ca_file: Option<PathBuf>,
}

/// Which state backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    #[default]
    Sqlite,
    Postgres,
}

/// `[[notify]]`: the same fields as a spec's `notify` entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookEntry {
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    on: Vec<String>,
    format: Option<String>,
}

impl WebhookEntry {
    fn into_webhook(self, index: usize) -> Result<Webhook, String> {
        let at = format!("notify[{index}]");
        let target = match (self.url, self.url_env) {
            (Some(url), None) => {
                if let Some(problem) = crate::spec::validate::webhook_url_problem(&url) {
                    return Err(format!("{at}.url: {url:?} {problem}"));
                }
                WebhookTarget::Url(url)
            }
            (None, Some(name)) if crate::spec::validate::is_env_key(&name) => {
                WebhookTarget::UrlEnv(name)
            }
            (None, Some(name)) => {
                return Err(format!("{at}.url_env: {name:?} is not a variable name"));
            }
            _ => return Err(format!("{at}: set `url` or `url_env` (one of them)")),
        };
        let mut on = Vec::new();
        for name in self.on {
            let event = NotifyEvent::parse(&name).ok_or_else(|| {
                format!(
                    "{at}.on: {name:?} is not an event (use {})",
                    NotifyEvent::NAMES.join(", ")
                )
            })?;
            on.push(event);
        }
        let format = match self.format.as_deref() {
            None => None,
            Some(name) => Some(WebhookFormat::parse(name).ok_or_else(|| {
                format!(
                    "{at}.format: {name:?} is not a webhook format (use {})",
                    WebhookFormat::NAMES.join(", ")
                )
            })?),
        };
        Ok(Webhook { target, on, format })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectSection {
    name: Option<String>,
}

/// A TOML error by line and message, without quoting the line: a credential put in the
/// file by mistake (a `url` with a password) must not be printed back.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let mut message = match error.span() {
        Some(span) => format!(
            "line {}: {}",
            text[..span.start.min(text.len())].matches('\n').count() + 1,
            error.message()
        ),
        None => error.message().to_owned(),
    };
    if message.contains("unknown field `url`") {
        message.push_str(
            "\n  hint: the state's connection string goes in FABRIK_STATE_URL (the environment or .env), never in fabrik.toml",
        );
    }
    message
}

/// The alphabet of project names, as an error's hint.
pub const PROJECT_NAME_HINT: &str = "use letters, digits, inner spaces, `.`, `_` and `-`, at most 200 bytes; the name goes into the owner tag of every resource (`fabrik:<project>/<app>`), where `/` and `~` have a meaning";

/// Whether `name` can name a project: it is written into owner tags, whose shortened
/// form is `<prefix>~<hash>` (`orchestrator/owner.rs`), so no project name may contain
/// `~` (or `/`, which ends it) and make its tags equal another project's; nor a
/// character that redaction, escaping or a provider's API would alter.
/// (`fabrik init` proposes a stricter one; this one also keeps the names of existing
/// projects named after their directories, whose tags are already written.)
pub fn is_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.trim() == name
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '))
}

/// Why `fabrik.toml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is invalid: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// No `fabrik.toml` names the project, and its directory's name cannot be one.
    #[error(
        "the project is named after its directory, `{}`, which has characters a project name may not have ({PROJECT_NAME_HINT})\n  hint: name it: `fabrik init NAME` (it writes `[project] name` into `{}`)",
        name.escape_debug(),
        path.display()
    )]
    DirectoryName { path: PathBuf, name: String },
}

/// The provider a role uses when `fabrik.toml` does not say, with the environment
/// variables its configuration comes from.
pub fn default_entry(role: Role) -> ProviderEntry {
    type Pairs = &'static [(&'static str, &'static str)];
    let (bundled, config_env, secrets): (&str, Pairs, Pairs) = match role {
        Role::Coolify => (
            "coolify",
            &[("base-url", "COOLIFY_URL")],
            &[("api-token", "COOLIFY_TOKEN")],
        ),
        Role::Dns => (
            "cloudflare",
            &[("base-url", "CLOUDFLARE_API_URL")],
            &[("api-token", "CLOUDFLARE_API_TOKEN")],
        ),
        Role::Monitor => (
            "uptime-kuma",
            &[
                ("base-url", "UPTIME_KUMA_URL"),
                ("username", "UPTIME_KUMA_USERNAME"),
            ],
            &[("password", "UPTIME_KUMA_PASSWORD")],
        ),
    };
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    ProviderEntry {
        bundled: Some(bundled.to_owned()),
        path: None,
        source: None,
        version: None,
        config: BTreeMap::new(),
        secrets: map(secrets),
        config_env: map(config_env),
    }
}

impl Project {
    /// Loads the project rooted at `dir` (its `fabrik.toml`, if any).
    pub fn load(dir: &Path) -> Result<Self, ProjectError> {
        let path = dir.join(PROJECT_FILE);
        let file = match crate::bounded::read_text(&path, crate::bounded::MAX_TEXT) {
            Ok(text) => {
                toml::from_str::<ProjectFile>(&text).map_err(|e| ProjectError::Invalid {
                    path: path.clone(),
                    message: toml_problem(&text, &e),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProjectFile::default(),
            Err(source) => return Err(ProjectError::Read { path, source }),
        };
        let invalid = |message: String| ProjectError::Invalid {
            path: path.clone(),
            message,
        };
        let mut providers = BTreeMap::new();
        for (name, mut entry) in file.providers {
            let Ok(role) = name.parse::<Role>() else {
                return Err(invalid(format!(
                    "unknown provider role `{name}` (roles: {})",
                    Role::ALL.map(Role::as_str).join(", ")
                )));
            };
            let sources = [
                entry.bundled.is_some(),
                entry.path.is_some(),
                entry.source.is_some(),
            ]
            .into_iter()
            .filter(|set| *set)
            .count();
            if sources > 1 {
                return Err(invalid(format!(
                    "providers.{role}: set one of `bundled`, `path` or `source`, not several"
                )));
            }
            if let Some(source) = &entry.source {
                crate::plugins::oci::reference::OciReference::parse(source)
                    .map_err(|e| invalid(format!("providers.{role}.source: {e}")))?;
            }
            match (&entry.bundled, &entry.path) {
                // An OCI source, or both set (refused above).
                _ if entry.source.is_some() => {}
                (Some(_), Some(_)) => {}
                (None, None) => {
                    // Only configuration given: the role's default provider with it.
                    let default = default_entry(role);
                    entry.bundled = default.bundled;
                    for (k, v) in default.secrets {
                        entry.secrets.entry(k).or_insert(v);
                    }
                    for (k, v) in default.config_env {
                        entry.config_env.entry(k).or_insert(v);
                    }
                }
                (Some(name), None) => {
                    let default = default_entry(role);
                    if default.bundled.as_ref() == Some(name) {
                        for (k, v) in default.secrets {
                            entry.secrets.entry(k).or_insert(v);
                        }
                        for (k, v) in default.config_env {
                            entry.config_env.entry(k).or_insert(v);
                        }
                    }
                }
                (None, Some(_)) => {}
            }
            for (key, var) in &entry.secrets {
                if !crate::spec::validate::is_env_key(var) {
                    return Err(invalid(format!(
                        "providers.{role}.secrets.{key} must name an environment variable, not hold a value (got something that is not a variable name)"
                    )));
                }
            }
            for (key, var) in &entry.config_env {
                if !crate::spec::validate::is_env_key(var) {
                    return Err(invalid(format!(
                        "providers.{role}.config-env.{key} must name an environment variable, not `{var}`"
                    )));
                }
            }
            providers.insert(role, entry);
        }
        // The optional roles (monitor) have a provider only when `fabrik.toml` names one.
        for role in Role::REQUIRED {
            providers.entry(role).or_insert_with(|| default_entry(role));
        }
        let notify = file
            .notify
            .into_iter()
            .enumerate()
            .map(|(index, entry)| entry.into_webhook(index))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let named_after_directory = file.project.name.is_none();
        let name = file.project.name.unwrap_or_else(|| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("default")
                .to_owned()
        });
        if !is_project_name(&name) {
            if named_after_directory {
                return Err(ProjectError::DirectoryName {
                    path: path.clone(),
                    name,
                });
            }
            return Err(invalid(format!(
                "project.name: `{}` has characters a project name may not have ({PROJECT_NAME_HINT})",
                name.escape_debug()
            )));
        }
        if let Some(schema) = &file.state.schema
            && !crate::store::postgres::valid_schema(schema)
        {
            return Err(invalid(format!(
                "state.schema: `{schema}` is not a usable schema name (lower-case letters, digits and `_`, at most 63)"
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            named_after_directory,
            providers,
            notify,
            state: file.state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Project, ProjectError> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(PROJECT_FILE), toml).expect("write");
        Project::load(dir.path())
    }

    #[test]
    fn a_path_provider_names_the_variables_of_its_configuration() {
        let project = load(
            "[providers.dns]\npath = \"plugins/dns.wasm\"\nconfig-env = { base-url = \"DNS_API_URL\" }\n",
        )
        .expect("loads");
        let dns = &project.providers[&Role::Dns];
        assert_eq!(dns.config_env["base-url"], "DNS_API_URL");
        assert!(
            dns.secrets.is_empty(),
            "a path provider gets no default secrets"
        );
    }

    #[test]
    fn a_bundled_provider_keeps_its_defaults_unless_overridden() {
        let project = load("[providers.coolify]\nconfig-env = { base-url = \"MY_COOLIFY\" }\n")
            .expect("loads");
        let coolify = &project.providers[&Role::Coolify];
        assert_eq!(coolify.config_env["base-url"], "MY_COOLIFY");
        assert_eq!(coolify.secrets["api-token"], "COOLIFY_TOKEN");
        let project = load("[providers.dns]\nbundled = \"cloudflare\"\n").expect("loads");
        assert_eq!(
            project.providers[&Role::Dns].config_env["base-url"],
            "CLOUDFLARE_API_URL"
        );
    }

    /// Issue 28, point 4: a project named like another's shortened tag would share its
    /// tags; the alphabet has no `~`.
    #[test]
    fn project_names_keep_to_an_alphabet_that_cannot_forge_a_tag() {
        let long = "the-platform-team-of-a-rather-large-company".repeat(3);
        let forged = crate::orchestrator::owner::owner_tag(&long, "api");
        let forging = forged
            .strip_prefix("fabrik:")
            .and_then(|t| t.strip_suffix("/api"))
            .expect("a shortened tag");
        assert!(forging.contains('~'), "{forging}");
        for name in [
            forging,
            "acme/x",
            " acme",
            "tab\there",
            "a<b>",
            "",
            &"p".repeat(201),
        ] {
            let err = load(&format!("[project]\nname = {name:?}\n")).expect_err(name);
            assert!(
                err.to_string()
                    .contains("characters a project name may not have"),
                "{err}"
            );
        }
        for name in [
            "acme",
            "Acme_Corp.eu",
            "team-2",
            "My Project",
            "café",
            &long,
        ] {
            let project = load(&format!("[project]\nname = {name:?}\n")).expect(name);
            assert_eq!(project.name, name);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let odd = dir.path().join("[acme]");
        std::fs::create_dir(&odd).expect("dir");
        let err = Project::load(&odd).expect_err("a directory name with brackets");
        assert!(err.to_string().contains("fabrik init NAME"), "{err}");
    }

    #[test]
    fn a_value_where_a_variable_name_belongs_is_refused() {
        let error =
            load("[providers.dns]\npath = \"x.wasm\"\nconfig-env = { base-url = \"https://x\" }\n")
                .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("config-env.base-url must name an environment variable"),
            "{error}"
        );
    }
}
