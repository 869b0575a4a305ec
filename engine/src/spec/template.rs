//! Templates: docker-compose documents with placeholders, embedded in the binary or added
//! by a project in `templates/NAME.yaml`.
//!
//! A template file is a small YAML header (description, default port, accepted sources,
//! the service that receives the domain), a `---` line, then a minijinja template of a
//! compose document. Every `{{ expression }}` is written as a JSON literal, which is also a
//! YAML literal: a value from a spec can never add keys or break the document, and
//! authors write `image: {{ image }}` without quotes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value as JinjaValue};
use serde::Deserialize;
use serde_yaml::Value;

use super::model::{Source, SourceKind, Spec};

const BUILTIN: &[(&str, &str)] = &[
    (
        "docker-image",
        include_str!("../../templates/docker-image.yaml"),
    ),
    ("node-api", include_str!("../../templates/node-api.yaml")),
    (
        "python-api",
        include_str!("../../templates/python-api.yaml"),
    ),
    (
        "static-site",
        include_str!("../../templates/static-site.yaml"),
    ),
];

/// The header of a template file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMeta {
    pub description: String,
    /// Port used when the spec sets none; without it the spec must set `port`.
    #[serde(default)]
    pub default_port: Option<u16>,
    /// Sources the template can build from; empty means it needs none.
    #[serde(default)]
    pub sources: Vec<SourceKind>,
    /// The compose service that serves the app's domain.
    #[serde(default = "default_service")]
    pub service: String,
    /// What the app becomes in Coolify.
    #[serde(default)]
    pub coolify_resource: CoolifyResource,
}

/// The kind of Coolify resource a template deploys as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoolifyResource {
    /// A compose service (`POST /services`), from the rendered compose document.
    #[default]
    Service,
    /// A docker-image application (`POST /applications/dockerimage`): Coolify tracks its
    /// deployments, so build failures are reported precisely.
    Application,
}

impl fmt::Display for CoolifyResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            CoolifyResource::Service => "service",
            CoolifyResource::Application => "application",
        })
    }
}

fn default_service() -> String {
    "app".to_owned()
}

/// Where a template was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    Project(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::Project(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A loaded template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub origin: Origin,
    pub meta: TemplateMeta,
    body: String,
}

/// A template that could not be loaded, kept so that only specs using it fail.
#[derive(Debug, Clone)]
pub struct BrokenTemplate {
    pub origin: Origin,
    pub problem: String,
}

/// The compose document a template rendered for a spec.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    /// Normalized YAML (no comments, stable layout): what is sent to Coolify.
    pub compose: String,
    /// The same document as JSON, for the canonical hash.
    pub canonical: serde_json::Value,
    /// The service that receives the domain.
    pub service: String,
    /// What the app becomes in Coolify.
    pub coolify_resource: CoolifyResource,
}

/// Every template available to a project: built-ins, then `templates/*.yaml`, which may
/// replace a built-in of the same name.
#[derive(Debug, Default)]
pub struct TemplateRegistry {
    templates: BTreeMap<String, Result<Template, BrokenTemplate>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("`{0}` is not a template")]
    Unknown(String),
    #[error("template `{name}` ({origin}) cannot be loaded: {problem}")]
    Broken {
        name: String,
        origin: Origin,
        problem: String,
    },
    #[error("template `{name}` does not render: {problem}")]
    Render { name: String, problem: String },
    #[error("template `{name}` renders an unsafe or invalid compose document: {problem}")]
    Lint { name: String, problem: String },
}

/// The work a template may do when it renders, in minijinja's fuel units.
pub const TEMPLATE_FUEL: u64 = 100_000;

/// The names of the templates built into Fabrik (for shell completion).
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

impl TemplateRegistry {
    /// Loads the built-ins and the project's `templates/` directory, if any.
    pub fn load(project_dir: &Path) -> std::io::Result<Self> {
        let mut registry = Self::default();
        for (name, text) in BUILTIN {
            registry.insert(name, Origin::Builtin, text);
        }
        let dir = project_dir.join("templates");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(registry),
            Err(e) => return Err(e),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            let text = crate::bounded::read_text(&path, crate::bounded::MAX_TEXT)?;
            registry.insert(&name, Origin::Project(path), &text);
        }
        Ok(registry)
    }

    fn insert(&mut self, name: &str, origin: Origin, text: &str) {
        let parsed = parse_template(name, origin.clone(), text)
            .map_err(|problem| BrokenTemplate { origin, problem });
        self.templates.insert(name.to_owned(), parsed);
    }

    pub fn get(&self, name: &str) -> Result<&Template, TemplateError> {
        match self.templates.get(name) {
            None => Err(TemplateError::Unknown(name.to_owned())),
            Some(Ok(t)) => Ok(t),
            Some(Err(broken)) => Err(TemplateError::Broken {
                name: name.to_owned(),
                origin: broken.origin.clone(),
                problem: broken.problem.clone(),
            }),
        }
    }

    /// All templates by name, loaded or broken.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<Template, BrokenTemplate>)> {
        self.templates.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn names(&self) -> Vec<&str> {
        self.templates.keys().map(String::as_str).collect()
    }
}

fn parse_template(name: &str, origin: Origin, text: &str) -> Result<Template, String> {
    let (header, body) = split_header(text).ok_or_else(|| {
        "expected a header (description, default_port, sources, service), a `---` line, then the compose template".to_owned()
    })?;
    let meta: TemplateMeta =
        serde_yaml::from_str(header).map_err(|e| format!("invalid header: {e}"))?;
    Ok(Template {
        name: name.to_owned(),
        origin,
        meta,
        body: body.to_owned(),
    })
}

fn split_header(text: &str) -> Option<(&str, &str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&text[..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

impl Template {
    /// Renders the compose document for `spec` and lints it.
    pub fn render(&self, spec: &Spec) -> Result<Rendered, TemplateError> {
        let render_error = |problem: String| TemplateError::Render {
            name: self.name.clone(),
            problem,
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        // A bounded amount of work: a template with large nested loops stops with an
        // error instead of hanging `validate` (built-ins use a few hundred units).
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_formatter(|out, _state, value| {
            let json = serde_json::to_string(value).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
            })?;
            out.write_str(&json).map_err(minijinja::Error::from)
        });
        env.add_template(&self.name, &self.body)
            .map_err(|e| render_error(describe_jinja(&e)))?;
        let template = env
            .get_template(&self.name)
            .map_err(|e| render_error(describe_jinja(&e)))?;
        let text = template
            .render(context(spec))
            .map_err(|e| render_error(describe_jinja(&e)))?;
        let mut document: Value = serde_yaml::from_str(&text)
            .map_err(|e| render_error(format!("the output is not YAML: {e}")))?;
        // What is checked is what Coolify gets: merge keys (`<<: *base`) resolved, as
        // Compose would resolve them (aliases already are).
        document
            .apply_merge()
            .map_err(|e| render_error(format!("a merge key cannot be resolved: {e}")))?;
        super::compose_lint::lint(&document, &self.meta.service, &spec.env).map_err(|problem| {
            TemplateError::Lint {
                name: self.name.clone(),
                problem,
            }
        })?;
        let compose = serde_yaml::to_string(&document)
            .map_err(|e| render_error(format!("cannot serialize the output: {e}")))?;
        let canonical = serde_json::to_value(&document)
            .map_err(|e| render_error(format!("the output has non-string keys: {e}")))?;
        Ok(Rendered {
            compose,
            canonical,
            service: self.meta.service.clone(),
            coolify_resource: self.meta.coolify_resource,
        })
    }
}

fn describe_jinja(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "{} (template line {line})",
            e.detail().unwrap_or(&e.to_string())
        ),
        None => e.to_string(),
    }
}

/// The variables a template sees. Documented in README.md ("Templates").
fn context(spec: &Spec) -> JinjaValue {
    let mut environment: BTreeMap<String, String> = spec
        .env
        .iter()
        // Compose interpolates `$`; a literal value must not.
        .map(|(k, v)| (k.clone(), v.replace('$', "$$")))
        .collect();
    for secret in &spec.secrets {
        // The value stays in Coolify's environment; the compose file only refers to it.
        environment.insert(secret.clone(), format!("${{{secret}}}"));
    }
    environment
        .entry("PORT".to_owned())
        .or_insert_with(|| spec.port.to_string());
    let (image, git) = match &spec.source {
        Some(source @ Source::Image { .. }) => (source.image_reference(), None),
        Some(Source::Git {
            repository,
            branch,
            commit,
        }) => {
            let base = repository.trim_end_matches('/');
            let base = base.strip_suffix(".git").unwrap_or(base);
            // A resolved commit is what is built: the branch may have moved since.
            let reference = commit.as_deref().unwrap_or(branch);
            let git = serde_json::json!({
                "repository": repository,
                "branch": branch,
                "commit": commit,
                "context": format!("{base}.git#{reference}"),
            });
            (None, Some(git))
        }
        None => (None, None),
    };
    JinjaValue::from_serialize(serde_json::json!({
        "name": spec.name,
        "domain": spec.domain,
        "server": spec.server,
        "url": format!("https://{}", spec.domain),
        "port": spec.port,
        "image": image,
        "git": git,
        "environment": environment,
        "healthcheck": { "path": spec.healthcheck.path },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        let registry = TemplateRegistry::load(Path::new("/nonexistent")).expect("load");
        for name in ["python-api", "node-api", "static-site", "docker-image"] {
            assert!(registry.get(name).is_ok(), "{name}");
        }
        assert!(matches!(
            registry.get("nope"),
            Err(TemplateError::Unknown(_))
        ));
    }

    #[test]
    fn split_header_needs_a_separator() {
        assert!(split_header("a: 1\n---\nb: 2\n").is_some());
        assert!(split_header("services: {}\n").is_none());
    }
}

#[cfg(test)]
mod render_tests {
    use std::path::Path;

    use super::*;
    use crate::spec::parse;

    fn spec_text(template: &str, source: &str) -> String {
        format!(
            "name: my-app\ntemplate: {template}\ndomain: app.example.com\nserver: vps1\nport: 8080\nsource: {source}\nenv: {{GREETING: 'a $HOME b'}}\nsecrets: [API_KEY]\nhealthcheck: {{path: /health}}\n"
        )
    }

    #[test]
    fn every_builtin_renders_from_each_source_it_accepts() {
        let registry = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        for (name, template) in registry.iter() {
            let template = template.as_ref().expect("built-in loads");
            for kind in &template.meta.sources {
                let source = match kind {
                    SourceKind::Image => "{image: 'ghcr.io/acme/app:1'}",
                    SourceKind::Git => "{git: 'https://github.com/acme/app', branch: dev}",
                };
                let loaded = parse(Path::new("s.yaml"), &spec_text(name, source), &registry)
                    .unwrap_or_else(|e| panic!("{name} with {kind}: {e:?}"));
                let compose = &loaded.rendered.compose;
                let service = &loaded.rendered.canonical["services"][&template.meta.service];
                // Secrets are referenced, never inlined; literal `$` is escaped for compose.
                assert_eq!(service["environment"]["API_KEY"], "${API_KEY}", "{name}");
                assert_eq!(service["environment"]["GREETING"], "a $$HOME b", "{name}");
                assert_eq!(service["environment"]["PORT"], "8080", "{name}");
                match kind {
                    SourceKind::Image => {
                        assert_eq!(service["image"], "ghcr.io/acme/app:1", "{name}")
                    }
                    SourceKind::Git => assert_eq!(
                        service["build"]["context"], "https://github.com/acme/app.git#dev",
                        "{name}: {compose}"
                    ),
                }
            }
        }
    }

    #[test]
    fn spec_values_cannot_inject_compose_structure() {
        let registry = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        let text = spec_text("docker-image", "{image: nginx}").replace(
            "GREETING: 'a $HOME b'",
            "EVIL: \"x\\n    privileged: true\\n  other:\\n    image: y\"",
        );
        let loaded = parse(Path::new("s.yaml"), &text, &registry).expect("valid");
        let services = loaded.rendered.canonical["services"]
            .as_object()
            .expect("services");
        assert_eq!(services.len(), 1);
        assert!(services["app"].get("privileged").is_none());
        assert!(
            services["app"]["environment"]["EVIL"]
                .as_str()
                .is_some_and(|v| v.contains("privileged"))
        );
    }
}
