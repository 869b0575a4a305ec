//! The spec: parsing with source locations, validation, templates and the canonical hash.

pub mod compose_lint;
pub mod database_image;
pub mod diagnostic;
pub mod domain;
pub mod environments;
pub mod hash;
pub mod locate;
pub mod model;
pub mod template;
pub mod validate;

#[cfg(test)]
mod fuzz;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Location};
pub use model::Spec;
pub use template::{Rendered, TemplateRegistry};

use diagnostic::Diagnostics;
use locate::SourceMap;
use template::TemplateError;

/// A spec that passed validation, with its rendered compose document.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub path: PathBuf,
    pub spec: Spec,
    pub rendered: Rendered,
    /// Webhooks and hooks: read with the spec, kept out of its hash.
    pub notify: model::Notify,
    pub hooks: model::Hooks,
}

impl LoadedSpec {
    /// The spec with its source pinned to `id` (the commit or image digest its branch or
    /// tag resolved to), rendered again: the compose document then names the id, so that
    /// what is hashed, planned and deployed is exactly that code.
    pub fn pinned(&self, id: &str, templates: &TemplateRegistry) -> Result<Self, TemplateError> {
        let mut spec = self.spec.clone();
        spec.source = spec.source.map(|source| source.pinned(id));
        let rendered = templates.get(&spec.template)?.render(&spec)?;
        Ok(Self {
            path: self.path.clone(),
            spec,
            rendered,
            notify: self.notify.clone(),
            hooks: self.hooks.clone(),
        })
    }
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` has {} problem{}", path.display(), diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

/// Reads and validates the spec at `path` (one without environments: see [`parse`]).
pub fn load(path: &Path, templates: &TemplateRegistry) -> Result<LoadedSpec, SpecError> {
    let text = read_text(path)?;
    parse(path, &text, templates)
}

/// The spec file's text: bounded, UTF-8.
fn read_text(path: &Path) -> Result<String, SpecError> {
    let bytes =
        crate::bounded::read(path, crate::bounded::MAX_TEXT).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => {
            let (line, column) =
                crate::bounded::position(error.as_bytes(), error.utf8_error().valid_up_to());
            let mut diags = Diagnostics::new(path);
            diags.push_with_hint(
                Location { line, column },
                "",
                "the file is not UTF-8 text",
                Some("save it as UTF-8"),
            );
            Err(SpecError::Invalid {
                path: path.to_path_buf(),
                diagnostics: diags.into_sorted(),
            })
        }
    }
}

/// Where the tab is that a YAML error complains about: the parser often reports the
/// position where it gave up, the line before. The first tab from the start of the
/// error's line on.
fn tab_near(text: &str, error: Location, message: &str) -> Option<Location> {
    if !message.contains("tab") {
        return None;
    }
    text.lines()
        .enumerate()
        .skip(error.line.saturating_sub(1))
        .find_map(|(index, line)| {
            line.find('\t').map(|byte| Location {
                line: index + 1,
                column: line[..byte].chars().count() + 1,
            })
        })
}

/// Validates `text` as the spec at `path`, reporting every problem found. A spec with
/// `environments` is refused here: [`parse_file`] reads it, and its
/// [`SpecFile::select`] gives one environment's spec.
pub fn parse(
    path: &Path,
    text: &str,
    templates: &TemplateRegistry,
) -> Result<LoadedSpec, SpecError> {
    let file = parse_file(path, text, templates)?;
    match file.single {
        Some(loaded) => Ok(*loaded),
        None => Err(SpecError::Invalid {
            path: path.to_path_buf(),
            diagnostics: vec![Diagnostic {
                file: path.to_path_buf(),
                location: Location { line: 1, column: 1 },
                field: "environments".to_owned(),
                message: format!(
                    "the spec has environments ({}): one must be chosen",
                    file.environment_names().join(", ")
                ),
                hint: Some("pass `--env NAME`".to_owned()),
            }],
        }),
    }
}

/// A spec file as read: one deployment, or one per environment of its `environments`.
#[derive(Debug, Clone)]
pub struct SpecFile {
    pub path: PathBuf,
    /// The spec of a file without environments.
    single: Option<Box<LoadedSpec>>,
    /// The entries of `environments`, in the order written.
    entries: Vec<environments::Entry>,
    /// The spec of each named (not pattern) environment, in the order written.
    named: Vec<LoadedSpec>,
    /// What a pattern environment is validated again from, with its concrete name.
    root: serde_yaml::Value,
    map: SourceMap,
}

/// Why no spec could be chosen from a file.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("`{}` has no environments, and `--env {env}` names one\n  hint: drop `--env`, or add `environments:` with `{env}:` to the spec", path.display())]
    NoEnvironments { path: PathBuf, env: String },
    #[error("`{}` has no environment `{env}` (it has {})\n  hint: pass one of those to `--env`, or add `{env}:` under `environments:`", path.display(), known.join(", "))]
    Unknown {
        path: PathBuf,
        env: String,
        known: Vec<String>,
    },
    #[error(transparent)]
    Invalid(#[from] SpecError),
}

impl SpecFile {
    /// The app's name.
    pub fn app(&self) -> &str {
        match &self.single {
            Some(loaded) => &loaded.spec.name,
            None => self.named.first().map_or("", |l| l.spec.name.as_str()),
        }
    }

    pub fn has_environments(&self) -> bool {
        self.single.is_none()
    }

    /// The environments as written (`staging`, `preview-*`).
    pub fn environment_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.to_string()).collect()
    }

    /// The spec of a file without environments; `None` if it has some.
    pub fn single(&self) -> Option<&LoadedSpec> {
        self.single.as_deref()
    }

    /// The spec of every named environment (patterns stand for names not known here).
    pub fn named(&self) -> &[LoadedSpec] {
        &self.named
    }

    /// Whether `name` is one of the file's environments, or matches one of its patterns.
    pub fn has_environment(&self, name: &str) -> bool {
        environments::find(&self.entries, name).is_some()
    }

    /// The spec of environment `env`: a named one as validated, or a pattern's, validated
    /// again with `env` in its domain.
    pub fn select(
        &self,
        env: &str,
        templates: &TemplateRegistry,
    ) -> Result<LoadedSpec, SelectError> {
        if self.single.is_some() {
            return Err(SelectError::NoEnvironments {
                path: self.path.clone(),
                env: env.to_owned(),
            });
        }
        let Some(entry) = environments::find(&self.entries, env) else {
            return Err(SelectError::Unknown {
                path: self.path.clone(),
                env: env.to_owned(),
                known: self.environment_names(),
            });
        };
        if let Some(named) = self
            .named
            .iter()
            .find(|l| l.spec.environment.as_deref() == Some(env))
        {
            return Ok(named.clone());
        }
        let mut diags = Diagnostics::new(&self.path);
        let top = self.root.as_mapping().cloned().unwrap_or_default();
        let (doc, map) = environments::effective(&top, &self.map, entry, env);
        let loaded = validate_document(&self.path, &doc, &map, templates, Some(env), &mut diags);
        match loaded {
            Some(loaded) if diags.is_empty() => Ok(loaded),
            _ => Err(SpecError::Invalid {
                path: self.path.clone(),
                diagnostics: attributed(diags.into_sorted(), entry),
            }
            .into()),
        }
    }
}

/// Problems of one environment's spec, named as the environment's: `domain` becomes
/// `environments.staging.domain`, and a missing field is located at the entry.
fn attributed(found: Vec<Diagnostic>, entry: &environments::Entry) -> Vec<Diagnostic> {
    let prefix = format!("environments.{}", entry.written);
    found
        .into_iter()
        .map(|mut d| {
            if !d.field.starts_with("environments") {
                d.field = if d.field.is_empty() {
                    prefix.clone()
                } else {
                    format!("{prefix}.{}", d.field)
                };
            }
            if d.location == (Location { line: 1, column: 1 }) {
                d.location = entry.location();
            }
            d
        })
        .collect()
}

/// Reads and validates the spec at `path`, with its environments if it has any.
pub fn load_file(path: &Path, templates: &TemplateRegistry) -> Result<SpecFile, SpecError> {
    let text = read_text(path)?;
    parse_file(path, &text, templates)
}

/// Validates `text` as the spec file at `path`: the spec itself, or every environment's
/// (a pattern's with two names it stands for), reporting every problem found. A problem
/// every environment shares is reported once, where it is written; one only some have is
/// named as theirs.
pub fn parse_file(
    path: &Path,
    text: &str,
    templates: &TemplateRegistry,
) -> Result<SpecFile, SpecError> {
    let mut diags = Diagnostics::new(path);
    let invalid = |diags: Diagnostics| SpecError::Invalid {
        path: path.to_path_buf(),
        diagnostics: diags.into_sorted(),
    };
    let map = match SourceMap::parse(text) {
        Ok(map) => map,
        Err(e) => {
            match tab_near(text, e.location, &e.message) {
                Some(tab) => diags.push_with_hint(
                    tab,
                    "",
                    format!("invalid YAML: {}", e.message),
                    Some("YAML indents with spaces only: replace this tab with spaces"),
                ),
                None => diags.push(e.location, "", format!("invalid YAML: {}", e.message)),
            }
            return Err(invalid(diags));
        }
    };
    let root: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(root) => root,
        Err(e) => {
            let location = e
                .location()
                .map_or(Location { line: 1, column: 1 }, |l| Location {
                    line: l.line(),
                    column: l.column(),
                });
            diags.push(location, "", format!("invalid YAML: {e}"));
            return Err(invalid(diags));
        }
    };
    let entries = match &root {
        serde_yaml::Value::Mapping(top) => environments::read(top, &map, &mut diags),
        _ => None,
    };
    let Some(entries) = entries else {
        let loaded = validate_document(path, &root, &map, templates, None, &mut diags);
        return match loaded {
            Some(loaded) if diags.is_empty() => Ok(SpecFile {
                path: path.to_path_buf(),
                single: Some(Box::new(loaded)),
                entries: Vec::new(),
                named: Vec::new(),
                root,
                map,
            }),
            _ => Err(invalid(diags)),
        };
    };
    let top = root.as_mapping().cloned().unwrap_or_default();
    // Each environment's problems, and the specs of the names checked.
    let mut checked: Vec<(&environments::Entry, Vec<Diagnostic>, Vec<LoadedSpec>)> = Vec::new();
    for entry in &entries {
        let mut found = Vec::new();
        let mut specs = Vec::new();
        for name in entry.samples() {
            let (doc, located) = environments::effective(&top, &map, entry, &name);
            let mut own = Diagnostics::new(path);
            let loaded = validate_document(path, &doc, &located, templates, Some(&name), &mut own);
            let own = own.into_sorted();
            if own.is_empty() {
                specs.extend(loaded);
            }
            for d in own {
                if !found.contains(&d) {
                    found.push(d);
                }
            }
        }
        checked.push((entry, found, specs));
    }
    let in_every = |d: &Diagnostic| checked.iter().all(|(_, found, _)| found.contains(d));
    let mut reported: Vec<Diagnostic> = Vec::new();
    for (entry, found, _) in &checked {
        for d in found {
            let d = if in_every(d) {
                d.clone()
            } else {
                attributed(vec![d.clone()], entry).remove(0)
            };
            if !reported.contains(&d) {
                reported.push(d);
            }
        }
    }
    for d in reported {
        diags.push_with_hint(d.location, &d.field, d.message, d.hint);
    }
    // Two environments never share a domain or a place in Coolify, nor do two names of
    // one pattern: they would be one resource with two owners.
    let mut seen: Vec<(&environments::Entry, &LoadedSpec)> = Vec::new();
    for (entry, _, specs) in &checked {
        for loaded in specs {
            for (other_entry, other) in &seen {
                let same_domain = other.spec.domain == loaded.spec.domain;
                let same_place = other.spec.coolify.project == loaded.spec.coolify.project
                    && other.spec.coolify.environment == loaded.spec.coolify.environment;
                if !(same_domain || same_place) {
                    continue;
                }
                let what = if same_domain {
                    format!("domain {}", loaded.spec.domain)
                } else {
                    format!(
                        "Coolify project `{}` and environment `{}`",
                        loaded.spec.coolify.project, loaded.spec.coolify.environment
                    )
                };
                let field = if same_domain {
                    "domain"
                } else {
                    "coolify.environment"
                };
                let hint = match (std::ptr::eq(*other_entry, *entry), same_domain) {
                    (true, _) => {
                        "a pattern's environments each need their own: put `{{ env }}` in it, as in `{{ env }}.preview.example.com`"
                    }
                    (false, true) => "each environment needs its own: set `domain` in each of them",
                    (false, false) => {
                        "each environment needs its own: remove `coolify.environment` from the spec (each environment then gets the Coolify environment of its own name), or set it in each of them"
                    }
                };
                let path_of = format!("environments.{}.{field}", entry.written);
                diags.push_with_hint(
                    entry.location(),
                    &path_of,
                    format!(
                        "`{}` and `{}` would share the {what}",
                        other.spec.environment.as_deref().unwrap_or_default(),
                        loaded.spec.environment.as_deref().unwrap_or_default()
                    ),
                    Some(hint),
                );
            }
            seen.push((entry, loaded));
        }
    }
    if !diags.is_empty() {
        return Err(invalid(diags));
    }
    let named = checked
        .iter()
        .filter(|(entry, _, _)| !entry.name.is_pattern())
        .flat_map(|(_, _, specs)| specs.iter().cloned())
        .collect();
    Ok(SpecFile {
        path: path.to_path_buf(),
        single: None,
        entries,
        named,
        root,
        map,
    })
}

/// Validates one effective document (`environment`: the environment it is the spec of).
fn validate_document(
    path: &Path,
    root: &serde_yaml::Value,
    map: &SourceMap,
    templates: &TemplateRegistry,
    environment: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<LoadedSpec> {
    let draft = validate::read(root, map, diags);

    let template = draft
        .template
        .as_deref()
        .and_then(|name| match templates.get(name) {
            Ok(t) => Some(t),
            Err(e) => {
                let hint = matches!(e, TemplateError::Unknown(_)).then(|| {
                    validate::did_you_mean(templates.names(), name).unwrap_or_else(|| {
                        format!(
                            "available templates: {} (see `fabrik templates`)",
                            templates.names().join(", ")
                        )
                    })
                });
                diags.push_with_hint(map.value("template"), "template", e.to_string(), hint);
                None
            }
        });
    let mut port = draft.port;
    if let Some(template) = template {
        let name = &template.name;
        let accepted = &template.meta.sources;
        match &draft.source {
            None if !accepted.is_empty() && !draft.source_written => {
                let kinds: Vec<String> = accepted.iter().map(ToString::to_string).collect();
                diags.push_with_hint(
                    map.value("source"),
                    "source",
                    format!("is required by template `{name}`"),
                    Some(format!("set `source` with one of: {}", kinds.join(", "))),
                );
            }
            Some(source) if !accepted.contains(&source.kind()) => {
                let kinds: Vec<String> = accepted.iter().map(ToString::to_string).collect();
                let message = if kinds.is_empty() {
                    format!("template `{name}` takes no source")
                } else {
                    format!(
                        "template `{name}` cannot build from a {} source (it takes {})",
                        source.kind(),
                        kinds.join(", ")
                    )
                };
                diags.push(map.value("source"), "source", message);
            }
            _ => {}
        }
        if port.is_none() && !draft.port_written {
            port = template.meta.default_port;
            if port.is_none() {
                diags.push_with_hint(
                    map.value("port"),
                    "port",
                    format!("is required: template `{name}` has no default port"),
                    Some(
                        "set `port` to the port the app listens on inside its container".to_owned(),
                    ),
                );
            }
        }
    }

    if !diags.is_empty() {
        return None;
    }
    let (Some(template), Some(name), Some(template_name), Some(domain), Some(server), Some(port)) = (
        template,
        draft.name.clone(),
        draft.template.clone(),
        draft.domain.clone(),
        draft.server.clone(),
        port,
    ) else {
        // Every `None` above was reported; this is only reached if a rule forgot to.
        diags.push(
            Location { line: 1, column: 1 },
            "",
            "the spec is incomplete",
        );
        return None;
    };
    if let Some(environment) = environment
        && name.len() + 1 + environment.len() > environments::MAX_KEY_LEN
    {
        diags.push_with_hint(
            map.value("name"),
            "name",
            format!(
                "`{name}@{environment}` is {} characters: an app and its environment together are at most {}",
                name.len() + 1 + environment.len(),
                environments::MAX_KEY_LEN
            ),
            Some("they name the deployment's owner tag: shorten the app's name or the environment's"),
        );
        return None;
    }
    let (notify, hooks) = (draft.notify.clone(), draft.hooks.clone());
    let spec = Spec {
        coolify: draft.coolify(&name),
        name,
        environment: environment.map(str::to_owned),
        template: template_name,
        domain,
        server,
        source: draft.source,
        port,
        env: draft.env,
        secrets: draft.secrets,
        required_secrets: draft.required_secrets,
        healthcheck: draft.healthcheck,
        rollback: draft.rollback,
        monitor: draft.monitor,
    };
    match template.render(&spec) {
        Ok(rendered) => Some(LoadedSpec {
            path: path.to_path_buf(),
            spec,
            rendered,
            notify,
            hooks,
        }),
        Err(e) => {
            diags.push(map.value("template"), "template", e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "name: NAME\ntemplate: docker-image\ndomain: api.example.com\nserver: vps1\nsource:\n  image: nginx:1.27\nport: 80\nenvironments:\n  staging:\n    domain: staging.example.com\n  preview-*:\n    domain: \"{{ env }}.example.com\"\n";

    fn parsed(name: &str) -> Result<SpecFile, SpecError> {
        let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        parse_file(Path::new("x.yaml"), &SPEC.replace("NAME", name), &templates)
    }

    #[test]
    fn an_app_and_its_environment_fit_an_owner_tag() {
        // `@` and the longest preview name (15) beside a 47-character app: 63.
        let file = parsed(&"a".repeat(47)).expect("fits");
        let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        let preview = file
            .select("preview-1234567", &templates)
            .expect("a preview");
        assert_eq!(preview.spec.key().len(), 63);
        assert_eq!(preview.spec.domain, "preview-1234567.example.com");
        assert_eq!(preview.spec.coolify.environment, "preview-1234567");
        // One more character is refused, for the pattern (its longest name) only.
        let Err(SpecError::Invalid { diagnostics, .. }) = parsed(&"a".repeat(48)) else {
            panic!("a key over 63 characters was accepted");
        };
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].field, "environments.preview-*.name");
        assert!(
            diagnostics[0].message.contains("is 64 characters"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_named_environment_is_chosen_before_a_pattern_and_unknown_ones_are_refused() {
        let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        let file = parsed("api").expect("valid");
        assert_eq!(file.environment_names(), ["staging", "preview-*"]);
        assert_eq!(file.named().len(), 1);
        let staging = file.select("staging", &templates).expect("staging");
        assert_eq!(staging.spec.key(), "api@staging");
        assert_eq!(staging.spec.domain, "staging.example.com");
        assert!(matches!(
            file.select("production", &templates),
            Err(SelectError::Unknown { .. })
        ));
        assert!(
            parse(
                Path::new("x.yaml"),
                &SPEC.replace("NAME", "api"),
                &templates
            )
            .is_err()
        );
    }
}
