//! `fabrik init [NAME]`: makes a directory a Fabrik project. `fabrik.toml` names the
//! project, and with it every owner tag (`fabrik:<name>/<app>`): without the file, the
//! directory's name is used, and renaming the directory would silently leave Fabrik's
//! own resources unowned. `.gitignore` gains the state and the secrets file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use fabrik_engine::project::{PROJECT_FILE, Project};
use fabrik_engine::store::Store;
use fabrik_engine::workspace::Workspace;

use super::ExitStatus;

/// What `.gitignore` must hold: the generated secrets and the local state.
/// `.env.*`: the environments' own secrets (`.env.staging`, README "Staging and production").
const IGNORED: [&str; 3] = [".env", ".env.*", ".fabrik/"];

/// Whether `name` can be a project name: it goes into every owner tag, so it is kept to
/// lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most
/// 63 characters (the owner tags' length limits leave room for an app's name).
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 63 {
        return Some("must be 1 to 63 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Some("must start with a lowercase letter or a digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Some("may hold only lowercase letters, digits, `-`, `_` and `.`");
    }
    None
}

pub fn run(name: Option<&str>, dir: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir()?,
    };
    let file = dir.join(PROJECT_FILE);
    // A fabrik.toml may exist without naming the project (providers only): then the
    // name is added to it.
    let existing = if file.exists() {
        let project = match Project::load(&dir) {
            // Unnamed, in a directory whose name cannot be one: what init is for.
            Err(fabrik_engine::project::ProjectError::DirectoryName { .. }) => None,
            other => Some(other?),
        };
        if let Some(project) = project.filter(|p| !p.named_after_directory) {
            errln!(
                "error: `{}` exists already: this is project `{}`",
                file.display(),
                project.name
            );
            errln!(
                "  hint: its name is in every owner tag; changing it would leave the resources Fabrik created unowned"
            );
            return Ok(ExitStatus::Invalid);
        }
        Some(std::fs::read_to_string(&file)?)
    } else {
        None
    };
    let from_directory = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.clone())
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_lowercase)
        .unwrap_or_default();
    // Deployments the state already holds were tagged with the directory's name.
    let tagged = tagged_as(&dir)?;
    let name = match name {
        Some(name) => name.to_owned(),
        None => ask(&tagged.clone().unwrap_or(from_directory))?,
    };
    // The name a state already holds is kept as it is, even one written before names
    // were checked: it is in its resources' owner tags.
    if tagged.as_deref() != Some(name.as_str())
        && let Some(problem) = name_problem(&name)
    {
        errln!("error: project name `{name}` {problem}");
        return Ok(ExitStatus::Invalid);
    }
    if let Some(existing) = tagged.filter(|t| *t != name) {
        errln!(
            "error: the state in `{}` holds apps of project `{existing}` (named after the directory): their resources carry `fabrik:{existing}/…` owner tags",
            dir.join(".fabrik").display()
        );
        errln!("  hint: `fabrik init {existing}` keeps them; a new name would leave them unowned");
        return Ok(ExitStatus::Invalid);
    }
    let quoted = toml_string(&name);
    match existing {
        None => {
            let toml = format!(
                "# A Fabrik project. Its name is part of every owner tag (`fabrik:<name>/<app>`) on\n\
                 # what Fabrik creates: it stays the same when the directory is renamed or moved.\n\
                 [project]\n\
                 name = {quoted}\n"
            );
            write_new(&file, &toml)?;
        }
        Some(text) => {
            let named = add_name(&text, &quoted);
            std::fs::write(&file, named)?;
        }
    }
    let ignore = dir.join(".gitignore");
    let added = add_ignored(&ignore)?;
    outln!("wrote {}: project `{name}`", file.display());
    if !added.is_empty() {
        outln!("added to {}: {}", ignore.display(), added.join(", "));
    }
    outln!("next: `fabrik new --template node-api NAME` writes a spec to deploy");
    Ok(ExitStatus::Success)
}

/// A project whose own state (`.fabrik/state.db` in its directory) holds apps of one
/// other project name and none of its own: it was renamed (its fabrik.toml, or its
/// directory when it has none), and its resources' owner tags name the old one. Returns
/// that name: applying under the new one would lose ownership of every resource.
pub fn renamed_from(workspace: &Workspace) -> anyhow::Result<Option<String>> {
    let own = fabrik_engine::store::default_path(&workspace.project.dir);
    if workspace.postgres()?.is_some() || workspace.state_path != own {
        return Ok(None);
    }
    Ok(tagged_as(&workspace.project.dir)?.filter(|name| *name != workspace.project.name))
}

/// `name` as a TOML basic string.
fn toml_string(name: &str) -> String {
    let mut out = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` (a fabrik.toml without a project name) with `name = …` under `[project]`,
/// the table added at the end when it has none.
fn add_name(text: &str, quoted: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match lines.iter().position(|l| l.trim() == "[project]") {
        Some(at) => lines.insert(at + 1, format!("name = {quoted}")),
        None => {
            lines.push(String::new());
            lines.push("[project]".to_owned());
            lines.push(format!("name = {quoted}"));
        }
    }
    lines.join("\n") + "\n"
}

/// The one project name the directory's own state holds, if any (read only).
fn tagged_as(dir: &Path) -> anyhow::Result<Option<String>> {
    let path = fabrik_engine::store::default_path(dir);
    if !path.is_file() {
        return Ok(None);
    }
    let runtime = super::runtime()?;
    let store = Store::open_for_reading(&path)?;
    let mut names: Vec<String> = runtime
        .block_on(store.deployments())?
        .into_iter()
        .map(|d| d.project)
        .collect();
    names.sort();
    names.dedup();
    Ok(match names.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

/// The name, asked on a terminal (`default` when the answer is empty), else `default`.
fn ask(default: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Ok(default.to_owned());
    }
    eprint!("Project name [{default}]: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim();
    Ok(if answer.is_empty() {
        default.to_owned()
    } else {
        answer.to_owned()
    })
}

fn write_new(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Appends to `.gitignore` what it lacks of [`IGNORED`]; returns what was added.
fn add_ignored(path: &Path) -> anyhow::Result<Vec<&'static str>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let present = |entry: &str| {
        text.lines()
            .map(str::trim)
            .any(|l| l == entry || l == entry.trim_end_matches('/') || l == format!("/{entry}"))
    };
    let missing: Vec<&'static str> = IGNORED.into_iter().filter(|e| !present(e)).collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut addition = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        addition.push('\n');
    }
    addition.push_str("# Fabrik: generated secrets and the local state\n");
    for entry in &missing {
        addition.push_str(entry);
        addition.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(addition.as_bytes())?;
    Ok(missing)
}

/// Says once per command, on stderr, that a project without `fabrik.toml` is named after
/// its directory (and so are the owner tags on everything Fabrik creates for it).
pub fn warn_if_unnamed(workspace_dir: &Path) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Ok(workspace) = Workspace::at(workspace_dir, None) else {
        return;
    };
    if !workspace.project.named_after_directory
        || WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    let file = if workspace.project.dir.join(PROJECT_FILE).exists() {
        "no project name in fabrik.toml"
    } else {
        "no fabrik.toml"
    };
    errln!(
        "warning: {file}: the project is named `{}` after its directory, and so are the owner tags of what Fabrik creates; renaming the directory would leave them unowned",
        workspace.project.name
    );
    errln!(
        "  hint: `fabrik init` in {} writes that name into fabrik.toml",
        workspace.project.dir.display()
    );
}
