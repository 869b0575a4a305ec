//! The spec: parsing with source locations, validation, templates and the canonical hash.

pub mod compose_lint;
pub mod database_image;
pub mod diagnostic;
pub mod domain;
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

/// Reads and validates the spec at `path`.
pub fn load(path: &Path, templates: &TemplateRegistry) -> Result<LoadedSpec, SpecError> {
    let bytes =
        crate::bounded::read(path, crate::bounded::MAX_TEXT).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
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
            return Err(SpecError::Invalid {
                path: path.to_path_buf(),
                diagnostics: diags.into_sorted(),
            });
        }
    };
    parse(path, &text, templates)
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

/// Validates `text` as the spec at `path`, reporting every problem found.
pub fn parse(
    path: &Path,
    text: &str,
    templates: &TemplateRegistry,
) -> Result<LoadedSpec, SpecError> {
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
    let draft = validate::read(&root, &map, &mut diags);

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
        return Err(invalid(diags));
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
        return Err(invalid(diags));
    };
    let (notify, hooks) = (draft.notify.clone(), draft.hooks.clone());
    let spec = Spec {
        coolify: draft.coolify(&name),
        name,
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
    };
    match template.render(&spec) {
        Ok(rendered) => Ok(LoadedSpec {
            path: path.to_path_buf(),
            spec,
            rendered,
            notify,
            hooks,
        }),
        Err(e) => {
            diags.push(map.value("template"), "template", e.to_string());
            Err(invalid(diags))
        }
    }
}
