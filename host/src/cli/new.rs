//! `fabrik new`: write a starting spec from a template.

use std::io::Write;

use anyhow::Context;

use super::{ExitStatus, NewArgs};
use fabrik_engine::spec::model::SourceKind;
use fabrik_engine::spec::{self, TemplateRegistry, validate};

pub fn run(args: &NewArgs) -> anyhow::Result<ExitStatus> {
    // Before anything else: every error below would otherwise name a file that does not
    // exist (`My_App.yaml`).
    if !validate::is_app_name(&args.name) {
        let suggestion = validate::suggest_app_name(&args.name)
            .map(|s| {
                format!(
                    "\n  hint: for example `fabrik new --template {} {s}`",
                    args.template
                )
            })
            .unwrap_or_default();
        errln!(
            "error: {:?} is not a valid app name\n  hint: {}{suggestion}",
            args.name,
            validate::APP_NAME_HINT
        );
        return Ok(ExitStatus::Invalid);
    }
    let path = args.dir.join(format!("{}.yaml", args.name));
    let registry = TemplateRegistry::load(&fabrik_engine::project::project_dir(&path))
        .context("cannot read the project's templates")?;
    let template = match registry.get(&args.template) {
        Ok(t) => t,
        Err(e) => {
            errln!(
                "error: {e}\n  hint: available templates: {}",
                registry.names().join(", ")
            );
            return Ok(ExitStatus::Invalid);
        }
    };
    let text = starter_spec(
        &args.name,
        template,
        args.domain.as_deref(),
        args.server.as_deref(),
    );
    // The starter must itself be valid; this also rejects a bad NAME with the usual message.
    if let Err(error) = spec::parse(&path, &text, &registry) {
        super::report::spec_error(&error, super::OutputFormat::Human);
        return Ok(ExitStatus::Invalid);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match fabrik_engine::own_files::open(&path, &mut options) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            errln!(
                "error: `{}` already exists\n  hint: pass `--force` to overwrite it",
                path.display()
            );
            return Ok(ExitStatus::Invalid);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create `{}`", path.display())),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    let mut to_set: Vec<&str> = Vec::new();
    if args.domain.is_none() {
        to_set.push("`domain`");
    }
    if args.server.is_none() {
        to_set.push("`server`");
    }
    to_set.push("`source`");
    errln!(
        "wrote {}: set {}, then run `fabrik plan {}`",
        path.display(),
        join_words(&to_set),
        path.display()
    );
    Ok(ExitStatus::Success)
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn starter_spec(
    name: &str,
    template: &spec::template::Template,
    domain: Option<&str>,
    server: Option<&str>,
) -> String {
    let meta = &template.meta;
    let domain = domain.map_or_else(|| format!("{name}.example.com"), str::to_owned);
    let server = server.unwrap_or("my-server");
    let source = if meta.sources.contains(&SourceKind::Git) {
        format!(
            "source:                         # where the code comes from: `git` (+ `branch`) or `image`\n  git: https://github.com/acme/{name}\n  branch: main\n"
        )
    } else if meta.sources.contains(&SourceKind::Image) {
        format!(
            "source:                         # the container image to run\n  image: ghcr.io/acme/{name}:latest\n"
        )
    } else {
        String::new()
    };
    let port = match meta.default_port {
        Some(p) => format!(
            "# port: {p}                      # the port the app listens on (template default: {p})\n"
        ),
        None => {
            "port: 8080                      # the port the app listens on inside its container\n"
                .to_owned()
        }
    };
    let health_path = if meta.default_port == Some(80) {
        "/"
    } else {
        "/health"
    };
    format!(
        "# Fabrik spec for `{name}`; every field is described in README.md, \"Spec reference\".
name: {name}
template: {template}
domain: {domain:<23} # a public name in a zone your DNS provider serves
server: {server:<23} # the name of the Coolify server that runs the app
{source}{port}coolify:
  project: {name}
  # environment: production     # the default; with `environments:`, each one's own name
env:
  LOG_LEVEL: info
secrets: []                     # names only: values come from the environment or .env, or are generated
healthcheck:
  path: {health_path}
  timeout: 60                   # seconds until the deploy counts as failed
  interval: 2
rollback:                       # on failure: auto | manual | never, per resource class
  coolify: auto
  dns: auto
# environments:                 # staging and production from this spec (README, \"Staging and production\")
#   staging:
#     domain: staging.{domain}
#   production: {{}}
",
        template = template.name
    )
}
