//! Where secret values come from: the process environment, then the project's `.env`.
//! Values are held in `SecretString`, whose `Debug` never shows them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Name of the project's dotenv file.
pub const DOTENV: &str = ".env";

/// Why secrets could not be read, generated or saved. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read `{}`: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("`{}` is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "secret {name} must be generated, and `{}` is a symbolic link: Fabrik reads through it but does not append generated values to the file it points at\n  hint: set {name} yourself (in the environment or in the linked file), or make it a regular file",
        path.display()
    )]
    LinkedDotenv { path: PathBuf, name: String },
    #[error("cannot create `.fabrik`: {0}")]
    StateDir(std::io::Error),
    #[error("the OS random generator failed: {0}")]
    Random(getrandom::Error),
    #[error(
        "required secret{s} {names} {verb} set neither in the environment nor in {DOTENV} (or the environment's `{DOTENV}.<environment>`; the spec marks {pronoun} `generate: false`)",
        s = if missing.len() == 1 { "" } else { "s" },
        names = missing.join(", "),
        verb = if missing.len() == 1 { "is" } else { "are" },
        pronoun = if missing.len() == 1 { "it" } else { "them" }
    )]
    RequiredMissing { missing: Vec<String> },
    #[error(
        "secret {name} of `{app}` was generated on {host}, and this machine has no value for it: generating another would change it under the running app\n  hint: set the same value here, in the environment or the project's {file}"
    )]
    GeneratedElsewhere {
        app: String,
        name: String,
        host: String,
        /// Where this machine would keep it: `.env`, or `.env.<environment>`.
        file: String,
    },
    #[error("{FINGERPRINT_KEY_ENV} is not 64 hex digits (a 256-bit key)")]
    FingerprintKeyMalformed,
    #[error(
        "this shared state's secret fingerprints were made with a key this machine does not have\n  hint: copy {FINGERPRINT_KEY_ENV} from a teammate's .env (it goes with FABRIK_STATE_URL); it is never kept in the state"
    )]
    FingerprintKeyMissing,
    #[error(
        "{FINGERPRINT_KEY_ENV} here is not the key this shared state's fingerprints were made with (key id {found}, the state's {recorded})\n  hint: use the team's value, from a teammate's .env"
    )]
    FingerprintKeyDiffers { found: String, recorded: String },
}

/// The variable holding the key of secret fingerprints when the state is shared
/// (PostgreSQL): a team secret, kept with the others in `.env` or the environment, never
/// in the state, so that a dump of the state cannot be used to test guesses of a secret.
pub const FINGERPRINT_KEY_ENV: &str = "FABRIK_FINGERPRINT_KEY";

/// A name for a fingerprint key that tells two keys apart without telling anything of
/// either (a keyed hash of a 256-bit random key): what a shared state records.
pub fn fingerprint_key_id(key: &[u8]) -> String {
    blake3::derive_key("fabrik 2026-12 fingerprint key id", key)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The environment and the project's `.env`, read once.
#[derive(Debug, Default)]
pub struct EnvSource {
    dotenv_path: Option<PathBuf>,
    dotenv: BTreeMap<String, SecretString>,
    /// What a person should know about `.env` (never a value): variables `$` expansion
    /// changed, a file every user may write.
    warnings: Vec<String>,
    /// Values that win over the environment and `.env` (see [`EnvSource::overriding`]).
    overrides: BTreeMap<String, SecretString>,
    /// `.env.<environment>` of each environment read so far (see
    /// [`EnvSource::with_environment`]): between the process environment and `.env`.
    environments: BTreeMap<String, Layer>,
}

/// One dotenv file's values.
#[derive(Debug, Default, Clone)]
struct Layer {
    path: PathBuf,
    values: BTreeMap<String, SecretString>,
}

/// The name of the file an app's generated secrets are written to: `.env`, or
/// `.env.<environment>` for an app in an environment.
pub fn dotenv_name(environment: Option<&str>) -> String {
    match environment {
        Some(environment) => format!("{DOTENV}.{environment}"),
        None => DOTENV.to_owned(),
    }
}

/// The file an environment's own values live in: `.env.<environment>`.
pub fn environment_dotenv(project_dir: &Path, environment: &str) -> PathBuf {
    project_dir.join(format!("{DOTENV}.{environment}"))
}

impl EnvSource {
    /// Reads `<project>/.env` if it exists. A malformed line is an error that names the
    /// file and line, never its content.
    pub fn load(project_dir: &Path) -> Result<Self, SecretsError> {
        let path = project_dir.join(DOTENV);
        let Some((dotenv, warnings)) = read_dotenv(&path)? else {
            return Ok(Self::default());
        };
        Ok(Self {
            dotenv_path: Some(path),
            dotenv,
            warnings,
            overrides: BTreeMap::new(),
            environments: BTreeMap::new(),
        })
    }

    /// Reads `.env.<environment>` (if it exists and was not read yet): its values come
    /// after the process environment and before `.env` for the apps of that environment.
    pub fn with_environment(
        &mut self,
        project_dir: &Path,
        environment: &str,
    ) -> Result<(), SecretsError> {
        if self.environments.contains_key(environment) {
            return Ok(());
        }
        let path = environment_dotenv(project_dir, environment);
        let (values, warnings) = read_dotenv(&path)?.unwrap_or_default();
        self.warnings.extend(warnings);
        self.environments
            .insert(environment.to_owned(), Layer { path, values });
        Ok(())
    }

    /// The value of `name` for an app in `environment`: an override, the process
    /// environment, `.env.<environment>` (read with [`EnvSource::with_environment`]),
    /// then `.env`.
    pub fn get_in(&self, environment: Option<&str>, name: &str) -> Option<SecretString> {
        if let Some(value) = self.overrides.get(name) {
            return Some(value.clone());
        }
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Some(SecretString::from(value)),
            _ => environment
                .and_then(|e| self.environments.get(e))
                .and_then(|layer| layer.values.get(name))
                .or_else(|| self.dotenv.get(name))
                .cloned(),
        }
    }
}

/// A dotenv file's values and what a person should know about it (never a value); `None`
/// if there is no such file.
#[allow(clippy::type_complexity)]
fn read_dotenv(
    path: &Path,
) -> Result<Option<(BTreeMap<String, SecretString>, Vec<String>)>, SecretsError> {
    let path = path.to_path_buf();
    // Read once: the values, the text the expansion check compares them with, and the
    // permissions come from the same open file; bounded, and a regular file (through
    // a link is fine), never a device or a FIFO that would be read for ever.
    let unreadable = |reason: String| SecretsError::Unreadable {
        path: path.clone(),
        reason,
    };
    let file = match crate::bounded::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let world_writable = file.metadata().is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o002 != 0
    });
    let raw = crate::bounded::read_open(file, crate::bounded::MAX_TEXT)
        .and_then(crate::bounded::utf8)
        .map_err(|e| unreadable(e.to_string()))?;
    let mut dotenv = BTreeMap::new();
    for item in dotenvy::from_read_iter(raw.as_bytes()) {
        let (key, value) = item.map_err(|e| SecretsError::Malformed {
            path: path.clone(),
            reason: describe(&e),
        })?;
        dotenv.insert(key, SecretString::from(value));
    }
    let mut warnings = Vec::new();
    for (line, key) in expanded(&raw, &dotenv) {
        warnings.push(format!(
                "{} line {line}: `$` expansion changed the value of {key} (a `$NAME` outside single quotes is replaced by that variable); to take it literally, write it in single quotes",
                path.display()
            ));
    }
    if world_writable {
        warnings.push(format!(
                "{} is writable by every user of this machine, who could change what is deployed; run `chmod o-w {}`",
                path.display(),
                path.display()
            ));
    }
    Ok(Some((dotenv, warnings)))
}

impl EnvSource {
    /// What a person should know about `.env` (see [`EnvSource::load`]); no value.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The same source with `name` set to `value` whatever the environment and `.env`
    /// say: `fabrik providers test` presents a credential the API must refuse.
    pub fn overriding(&self, name: &str, value: SecretString) -> Self {
        let mut overrides = self.overrides.clone();
        overrides.insert(name.to_owned(), value);
        Self {
            dotenv_path: self.dotenv_path.clone(),
            dotenv: self.dotenv.clone(),
            warnings: self.warnings.clone(),
            overrides,
            environments: self.environments.clone(),
        }
    }

    /// The value of `name`: an override, the process environment, then `.env`.
    pub fn get(&self, name: &str) -> Option<SecretString> {
        if let Some(value) = self.overrides.get(name) {
            return Some(value.clone());
        }
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

/// The lines (1-based) and names of variables whose value `$` expansion changed: the
/// value dotenvy gives differs from the text written, which has a `$` outside single
/// quotes. dotenvy expands `$NAME` and `${NAME}` from the environment and earlier lines,
/// as shells and Docker do; a password with a `$` in it would change silently.
fn expanded(raw: &str, parsed: &BTreeMap<String, SecretString>) -> Vec<(usize, String)> {
    use secrecy::ExposeSecret;
    let mut found = Vec::new();
    for (index, line) in raw.lines().enumerate() {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.starts_with('#') || value.starts_with('\'') || !value.contains('$') {
            continue;
        }
        let written = match value.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"').unwrap_or(quoted),
            None => value.split(" #").next().unwrap_or(value).trim_end(),
        };
        if parsed
            .get(key)
            .is_some_and(|value| value.expose_secret() != written && !written.contains("\\$"))
        {
            found.push((index + 1, key.to_owned()));
        }
    }
    found
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

/// Length of generated secrets.
pub const GENERATED_LENGTH: usize = 32;
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Where a resolved secret came from (shown to the user; never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Environment,
    Dotenv,
    Generated,
}

/// A secret value with its name and origin.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub value: SecretString,
    pub origin: Origin,
}

/// 32 alphanumeric characters from the OS CSPRNG, without modulo bias.
pub fn generate() -> Result<SecretString, SecretsError> {
    let mut out = String::with_capacity(GENERATED_LENGTH);
    let mut buffer = [0u8; 64];
    while out.len() < GENERATED_LENGTH {
        getrandom::fill(&mut buffer).map_err(SecretsError::Random)?;
        // 248 = 4 * 62: bytes at or above it would bias the alphabet.
        for byte in buffer.iter().filter(|b| **b < 248) {
            if out.len() == GENERATED_LENGTH {
                break;
            }
            out.push(char::from(
                ALPHANUMERIC[usize::from(*byte) % ALPHANUMERIC.len()],
            ));
        }
    }
    Ok(SecretString::from(out))
}

impl EnvSource {
    /// Resolves each name: environment, then `.env`, else a generated value appended to
    /// `.env` (created with mode 0600) so the next run reuses it.
    pub fn resolve_all(
        &mut self,
        project_dir: &Path,
        names: &[String],
        required: &[String],
    ) -> Result<Vec<Resolved>, SecretsError> {
        self.resolve_all_in(project_dir, None, names, required)
    }

    /// Resolves each name for an app in `environment` (none: an app without
    /// environments): the process environment, then `.env.<environment>`, then `.env`,
    /// else a generated value appended to `.env.<environment>` (or `.env`), created with
    /// mode 0600, so the next run reuses it and no other environment shares it.
    pub fn resolve_all_in(
        &mut self,
        project_dir: &Path,
        environment: Option<&str>,
        names: &[String],
        required: &[String],
    ) -> Result<Vec<Resolved>, SecretsError> {
        if let Some(environment) = environment {
            self.with_environment(project_dir, environment)?;
        }
        // Every required secret is checked before any is generated: a missing one must
        // leave `.env` as it was.
        let missing: Vec<String> = required
            .iter()
            .filter(|name| self.get_in(environment, name).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(SecretsError::RequiredMissing { missing });
        }
        let mut resolved = Vec::new();
        for name in names {
            let own = environment
                .and_then(|e| self.environments.get(e))
                .and_then(|layer| layer.values.get(name));
            let (value, origin) = match std::env::var(name) {
                Ok(value) if !value.is_empty() => (SecretString::from(value), Origin::Environment),
                _ => match own.or_else(|| self.dotenv.get(name)) {
                    Some(value) => (value.clone(), Origin::Dotenv),
                    None => {
                        let value = generate()?;
                        self.persist(project_dir, environment, name, &value)?;
                        (value, Origin::Generated)
                    }
                },
            };
            resolved.push(Resolved {
                name: name.clone(),
                value,
                origin,
            });
        }
        Ok(resolved)
    }

    /// The team's fingerprint key ([`FINGERPRINT_KEY_ENV`]) from the environment or
    /// `.env`, if set.
    pub fn fingerprint_key(&self) -> Result<Option<Vec<u8>>, SecretsError> {
        use secrecy::ExposeSecret;
        let Some(value) = self.get(FINGERPRINT_KEY_ENV) else {
            return Ok(None);
        };
        hex::decode(value.expose_secret().trim())
            .ok()
            .filter(|key| key.len() == 32)
            .map(Some)
            .ok_or(SecretsError::FingerprintKeyMalformed)
    }

    /// Writes the team's fingerprint key into `.env`, as a generated secret is written.
    pub fn keep_fingerprint_key(
        &mut self,
        project_dir: &Path,
        key: &[u8],
    ) -> Result<(), SecretsError> {
        self.persist(
            project_dir,
            None,
            FINGERPRINT_KEY_ENV,
            &SecretString::from(hex::encode(key)),
        )
    }

    fn persist(
        &mut self,
        project_dir: &Path,
        environment: Option<&str>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), SecretsError> {
        use secrecy::ExposeSecret;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = match environment {
            Some(environment) => environment_dotenv(project_dir, environment),
            None => project_dir.join(DOTENV),
        };
        // Reading through a linked `.env` is the user's choice; appending a generated
        // value to whatever it points at is not one Fabrik makes.
        if crate::own_files::is_link(&path) {
            return Err(SecretsError::LinkedDotenv {
                path,
                name: name.to_owned(),
            });
        }
        let needs_newline =
            std::fs::read(&path).is_ok_and(|b| !b.is_empty() && !b.ends_with(b"\n"));
        let mut file = crate::own_files::open(
            &path,
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600),
        )
        .map_err(|source| SecretsError::Write {
            path: path.clone(),
            source,
        })?;
        let line = format!(
            "{}# generated by fabrik\n{name}={}\n",
            if needs_newline { "\n" } else { "" },
            value.expose_secret()
        );
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| SecretsError::Write {
                path: path.clone(),
                source,
            })?;
        match environment {
            Some(environment) => {
                let layer = self.environments.entry(environment.to_owned()).or_default();
                layer.values.insert(name.to_owned(), value.clone());
                layer.path = path;
            }
            None => {
                self.dotenv.insert(name.to_owned(), value.clone());
                self.dotenv_path = Some(path);
            }
        }
        Ok(())
    }
}

/// The per-project key of secret fingerprints, `.fabrik/fingerprint.key` (mode 0600),
/// created on first use. Without it, a fingerprint in the state cannot be used to guess a
/// weak secret offline.
pub fn fingerprint_key(project_dir: &Path) -> Result<Vec<u8>, SecretsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = project_dir.join(".fabrik").join("fingerprint.key");
    if let Some(key) = existing_fingerprint_key(project_dir)? {
        return Ok(key);
    }
    let dir = project_dir.join(".fabrik");
    std::fs::create_dir_all(&dir).map_err(SecretsError::StateDir)?;
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(SecretsError::Random)?;
    crate::own_files::open(
        &path,
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600),
    )
    .and_then(|mut file| file.write_all(&key))
    .map_err(|source| SecretsError::Write { path, source })?;
    Ok(key)
}

/// Writes the project's fingerprint key (mode 0600), unless it has one: a state that
/// comes back from a shared backend brings the key its versions were hashed with.
pub fn keep_fingerprint_key(project_dir: &Path, key: &[u8]) -> Result<bool, SecretsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if existing_fingerprint_key(project_dir)?.is_some() {
        return Ok(false);
    }
    let dir = project_dir.join(".fabrik");
    std::fs::create_dir_all(&dir).map_err(SecretsError::StateDir)?;
    let path = dir.join("fingerprint.key");
    crate::own_files::open(
        &path,
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600),
    )
    .and_then(|mut file| file.write_all(key))
    .map_err(|source| SecretsError::Write { path, source })?;
    Ok(true)
}

/// The fingerprint key if it exists; never creates it (for read-only commands). A key
/// that exists but cannot be read is an error: without it every secret would look
/// changed. One of the wrong length is none (the next apply writes a new one).
pub fn existing_fingerprint_key(project_dir: &Path) -> Result<Option<Vec<u8>>, SecretsError> {
    let path = project_dir.join(".fabrik").join("fingerprint.key");
    match crate::bounded::read(&path, 1024) {
        Ok(key) => Ok(Some(key).filter(|key| key.len() == 32)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SecretsError::Unreadable {
            path,
            reason: e.to_string(),
        }),
    }
}

/// A keyed fingerprint of a secret value, for the spec hash; never the value.
pub fn fingerprint(key: &[u8], name: &str, value: &SecretString) -> String {
    use secrecy::ExposeSecret;
    let mut keyed = [0u8; 32];
    for (slot, byte) in keyed.iter_mut().zip(key) {
        *slot = *byte;
    }
    let mut hasher = blake3::Hasher::new_keyed(&keyed);
    hasher.update(name.as_bytes());
    hasher.update(&[0]);
    hasher.update(value.expose_secret().as_bytes());
    hasher.finalize().to_hex()[..32].to_owned()
}

/// Replaces every known secret value in text: the last line of defence for everything
/// Fabrik prints, logs or stores.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    values: Vec<SecretString>,
}

/// Values shorter than this are not redacted (they would hide ordinary words); a secret
/// that short is warned about instead ([`too_short`]).
pub const REDACT_MIN: usize = 6;

/// Whether a secret value is too short to be hidden from output.
pub fn too_short(value: &SecretString) -> bool {
    use secrecy::ExposeSecret;
    !value.expose_secret().is_empty() && value.expose_secret().len() < REDACT_MIN
}

impl Redactor {
    pub fn add(&mut self, value: &SecretString) {
        use secrecy::ExposeSecret;
        let raw = value.expose_secret();
        // Very short values would redact ordinary words; secrets are not that short.
        if raw.len() < REDACT_MIN {
            return;
        }
        // Output is often read a line at a time (hook output): each line of a
        // multi-line value (a PEM key) is hidden on its own too.
        if raw.contains('\n') {
            for line in raw.lines().map(str::trim) {
                if line.len() >= REDACT_MIN {
                    self.add(&SecretString::from(line.to_owned()));
                }
            }
        }
        // JSON output escapes quotes, backslashes and control characters: hide that
        // spelling of the value too.
        let escaped = serde_json::to_string(raw).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or_default();
        for form in [raw, escaped] {
            if !form.is_empty() && !self.values.iter().any(|v| v.expose_secret() == form) {
                self.values.push(SecretString::from(form.to_owned()));
            }
        }
        // Longest first, so that a secret containing another is hidden whole.
        self.values
            .sort_by_key(|v| std::cmp::Reverse(v.expose_secret().len()));
    }

    pub fn redact(&self, text: &str) -> String {
        use secrecy::ExposeSecret;
        let mut out = text.to_owned();
        for value in &self.values {
            out = out.replace(value.expose_secret(), "[redacted]");
        }
        if out.contains(CUT) {
            out = self.hide_cut_prefixes(&out);
        }
        out
    }

    /// Text cut short before it reached Fabrik (an excerpt a provider made, a line
    /// bounded elsewhere) may end, before its `…`, with the start of a secret that the
    /// cut split: that start is hidden too. Fabrik's own bounds redact first, then cut.
    fn hide_cut_prefixes(&self, text: &str) -> String {
        use secrecy::ExposeSecret;
        let mut out = String::with_capacity(text.len());
        let mut pieces = text.split(CUT).peekable();
        while let Some(piece) = pieces.next() {
            let mut keep = piece.len();
            if pieces.peek().is_some() {
                for value in &self.values {
                    let value = value.expose_secret();
                    // The longest proper prefix of the value that the piece ends with.
                    let longest = value
                        .char_indices()
                        .map(|(i, _)| i)
                        .skip(CUT_PREFIX_MIN)
                        .filter(|&i| piece.ends_with(&value[..i]))
                        .max();
                    if let Some(len) = longest {
                        keep = keep.min(piece.len() - len);
                    }
                }
            }
            out.push_str(&piece[..keep]);
            if keep < piece.len() {
                out.push_str("[redacted]");
            }
            if pieces.peek().is_some() {
                out.push(CUT);
            }
        }
        out
    }
}

/// What marks a cut in text (Fabrik's, the SDK's and most tools' excerpts).
const CUT: char = '…';
/// The shortest start of a secret hidden before a cut: shorter ones would hide ordinary
/// text, and tell a guesser almost nothing.
const CUT_PREFIX_MIN: usize = 4;

#[cfg(test)]
mod tests {

    /// A team key that is not 64 hex digits is refused, saying what it must be and never
    /// what it is.
    #[test]
    fn a_malformed_team_fingerprint_key_is_a_clear_error_without_its_value() {
        for value in [
            "not-hex-at-all-s3cr3t",
            "abcd",
            &"ab".repeat(31),
            &"zz".repeat(32),
        ] {
            let env = EnvSource::default()
                .overriding(FINGERPRINT_KEY_ENV, SecretString::from(value.to_owned()));
            let error = env.fingerprint_key().expect_err(value);
            assert!(matches!(error, SecretsError::FingerprintKeyMalformed));
            let said = error.to_string();
            assert!(said.contains("64 hex digits"), "{said}");
            assert!(!said.contains(value), "{said}");
        }
        let good = "0f".repeat(32);
        let env = EnvSource::default().overriding(FINGERPRINT_KEY_ENV, SecretString::from(good));
        assert_eq!(
            env.fingerprint_key().ok().flatten().map(|k| k.len()),
            Some(32)
        );
    }
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_secrets_are_32_alphanumerics_and_differ() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_eq!(a.expose_secret().len(), 32);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn resolution_order_and_persistence() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".env"), "FROM_DOTENV=dotenv-value").expect("write");
        let mut env = EnvSource::load(dir.path()).expect("load");
        let names = vec![
            "FROM_DOTENV".to_owned(),
            "FABRIK_TEST_NEW_SECRET_X".to_owned(),
        ];
        let first = env.resolve_all(dir.path(), &names, &[]).expect("resolve");
        assert_eq!(first[0].origin, Origin::Dotenv);
        assert_eq!(first[0].value.expose_secret(), "dotenv-value");
        assert_eq!(first[1].origin, Origin::Generated);
        let text = std::fs::read_to_string(dir.path().join(".env")).expect("read");
        assert!(
            text.contains(&format!(
                "\nFABRIK_TEST_NEW_SECRET_X={}\n",
                first[1].value.expose_secret()
            )),
            "{text}"
        );
        // The next run reuses it.
        let mut again = EnvSource::load(dir.path()).expect("load");
        let second = again.resolve_all(dir.path(), &names, &[]).expect("resolve");
        assert_eq!(second[1].origin, Origin::Dotenv);
        assert_eq!(
            second[1].value.expose_secret(),
            first[1].value.expose_secret()
        );
        // A new .env gets mode 0600.
        let fresh = tempfile::tempdir().expect("tempdir");
        let mut none = EnvSource::load(fresh.path()).expect("load");
        none.resolve_all(fresh.path(), &["FABRIK_TEST_NEW_SECRET_Y".to_owned()], &[])
            .expect("resolve");
        let mode = std::fs::metadata(fresh.path().join(".env"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn fingerprints_are_keyed_and_redaction_hides_values() {
        let value = SecretString::from("s3cr3t-value".to_owned());
        let a = fingerprint(&[1; 32], "API_KEY", &value);
        assert_ne!(a, fingerprint(&[2; 32], "API_KEY", &value));
        assert_ne!(a, fingerprint(&[1; 32], "OTHER", &value));
        assert!(!a.contains("s3cr3t"));
        let mut redactor = Redactor::default();
        redactor.add(&value);
        assert_eq!(redactor.redact("token=s3cr3t-value;"), "token=[redacted];");
    }

    /// Issue 28, point 3: a cut made before Fabrik saw the text (a provider's excerpt)
    /// can split a secret; the start left before the `…` is hidden too.
    #[test]
    fn the_start_of_a_secret_cut_short_elsewhere_is_hidden() {
        let mut redactor = Redactor::default();
        redactor.add(&SecretString::from("s3cr3t-value-xyz".to_owned()));
        assert_eq!(
            redactor.redact("Coolify said: token s3cr3t-va…"),
            "Coolify said: token [redacted]…"
        );
        assert_eq!(
            redactor.redact("a s3cr… and s3cr3t-value-xyz … end"),
            "a [redacted]… and [redacted] … end"
        );
        // Three characters tell almost nothing and are common: kept.
        assert_eq!(redactor.redact("ends s3c…"), "ends s3c…");
        assert_eq!(redactor.redact("no cut s3cr3t"), "no cut s3cr3t");
    }

    #[test]
    fn redaction_covers_the_json_spelling_of_a_value() {
        let mut redactor = Redactor::default();
        let value = "p\"w\\d-with\nnewline";
        redactor.add(&SecretString::from(value.to_owned()));
        let json = serde_json::json!({ "message": format!("failed with {value}") }).to_string();
        let redacted = redactor.redact(&json);
        assert!(!redacted.contains("with\\nnewline"), "{redacted}");
        assert!(redacted.contains("[redacted]"), "{redacted}");
        assert_eq!(redactor.redact(&format!("x {value} y")), "x [redacted] y");
    }

    #[test]
    fn a_missing_required_secret_is_an_error_and_nothing_is_generated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = EnvSource::load(dir.path()).expect("load");
        let names = vec![
            "FABRIK_TEST_REQUIRED_Z".to_owned(),
            "FABRIK_TEST_GENERATED_Z".to_owned(),
        ];
        let error = env
            .resolve_all(dir.path(), &names, &names[..1])
            .expect_err("required and missing");
        assert!(
            error
                .to_string()
                .contains("required secret FABRIK_TEST_REQUIRED_Z is set neither"),
            "{error}"
        );
        assert!(
            !dir.path().join(".env").exists(),
            "nothing was generated or written"
        );
    }
}
