//! `fabrik new`: write a starting spec from a template.

use std::io::Write;

use anyhow::Context;

use super::{ExitStatus, NewArgs};
use fabrik_engine::spec::model::SourceKind;
use fabrik_engine::spec::{self, TemplateRegistry};

pub fn run(args: &NewArgs) -> anyhow::Result<ExitStatus> {
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
    let text = starter_spec(&args.name, template);
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
    let mut file = match options.open(&path) {
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
    errln!(
        "wrote {}: set `domain`, `server` and `source`, then run `fabrik apply --dry-run {}`",
        path.display(),
        path.display()
    );
    Ok(ExitStatus::Success)
}

fn starter_spec(name: &str, template: &spec::template::Template) -> String {
    let meta = &template.meta;
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
domain: {name}.example.com          # a public name in a zone your DNS provider serves
server: my-server               # the name of the Coolify server that runs the app
{source}{port}coolify:
  project: {name}
  environment: production
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
",
        template = template.name
    )
}
