//! Where secret values come from: the process environment, then the project's `.env`.
//! Values are held in `SecretString`, whose `Debug` never shows them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Name of the project's dotenv file.
pub const DOTENV: &str = ".env";

/// The environment and the project's `.env`, read once.
#[derive(Debug, Default)]
pub struct EnvSource {
    dotenv_path: Option<PathBuf>,
    dotenv: BTreeMap<String, SecretString>,
}

impl EnvSource {
    /// Reads `<project>/.env` if it exists. A malformed line is an error that names the
    /// file and line, never its content.
    pub fn load(project_dir: &Path) -> Result<Self, String> {
        let path = project_dir.join(DOTENV);
        if !path.is_file() {
            return Ok(Self::default());
        }
        let iter = dotenvy::from_path_iter(&path)
            .map_err(|e| format!("cannot read `{}`: {}", path.display(), describe(&e)))?;
        let mut dotenv = BTreeMap::new();
        for item in iter {
            let (key, value) =
                item.map_err(|e| format!("`{}` is malformed: {}", path.display(), describe(&e)))?;
            dotenv.insert(key, SecretString::from(value));
        }
        Ok(Self {
            dotenv_path: Some(path),
            dotenv,
        })
    }

    /// The value of `name`: the process environment first, then `.env`.
    pub fn get(&self, name: &str) -> Option<SecretString> {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Some(SecretString::from(value)),
            _ => self.dotenv.get(name).cloned(),
        }
    }

    /// A non-secret value (such as a URL) from the same sources.
    pub fn get_plain(&self, name: &str) -> Option<String> {
        use secrecy::ExposeSecret;
        self.get(name).map(|s| s.expose_secret().to_owned())
    }

    pub fn dotenv_path(&self) -> Option<&Path> {
        self.dotenv_path.as_deref()
    }
}

/// dotenvy's errors can quote the offending line, which may hold a secret: keep only
/// the position.
fn describe(error: &dotenvy::Error) -> String {
    match error {
        dotenvy::Error::LineParse(_, index) => format!("cannot parse at character {index}"),
        dotenvy::Error::Io(e) => e.to_string(),
        _ => "cannot parse it".to_owned(),
    }
}
