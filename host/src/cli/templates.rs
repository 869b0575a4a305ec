//! `fabrik templates`: the built-in templates and the project's own.

use anyhow::Context;

use super::{ExitStatus, OutputArgs, OutputFormat, report};
use fabrik_engine::spec::TemplateRegistry;

pub fn run(args: &OutputArgs) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let dir = fabrik_engine::project::project_dir(&cwd.join("spec.yaml"));
    let registry = TemplateRegistry::load(&dir).with_context(|| {
        format!(
            "cannot read templates in `{}`",
            dir.join("templates").display()
        )
    })?;
    for (name, entry) in registry.iter() {
        match (args.output, entry) {
            (OutputFormat::Human, Ok(t)) => {
                let sources: Vec<String> = t.meta.sources.iter().map(ToString::to_string).collect();
                let port = t
                    .meta
                    .default_port
                    .map_or("-".to_owned(), |p| p.to_string());
                outln!(
                    "{name:<14} {:<11} port {port:<5} sources {:<10} {}",
                    t.meta.coolify_resource,
                    sources.join(","),
                    t.origin
                );
                outln!("  {}", t.meta.description);
            }
            (OutputFormat::Human, Err(broken)) => {
                outln!("{name:<14} broken ({}): {}", broken.origin, broken.problem);
            }
            (OutputFormat::Json, Ok(t)) => report::json_line(&serde_json::json!({
                "name": name,
                "origin": t.origin.to_string(),
                "description": t.meta.description,
                "default_port": t.meta.default_port,
                "sources": t.meta.sources,
                "coolify_resource": t.meta.coolify_resource,
            })),
            (OutputFormat::Json, Err(broken)) => report::json_line(&serde_json::json!({
                "name": name,
                "origin": broken.origin.to_string(),
                "broken": broken.problem,
            })),
        }
    }
    Ok(ExitStatus::Success)
}
