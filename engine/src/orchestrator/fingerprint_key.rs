//! The key of secret fingerprints, found where it is kept. With a SQLite state it is the
//! project's `.fabrik/fingerprint.key`, beside a state only this machine uses. With a
//! shared state (PostgreSQL) it is a team secret, `FABRIK_FINGERPRINT_KEY`, kept in
//! `.env` or the environment like `FABRIK_STATE_URL`: the database records only its id
//! (per project, as one schema may hold several),
//! so that a dump of the state cannot be used to test guesses of a weak secret (the
//! fingerprints are keyed hashes of the values).

use super::events::{RunEvent, Warning};
use crate::secrets::{self, EnvSource, FINGERPRINT_KEY_ENV, SecretsError};
use crate::store::{Store, StoreError};

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key to fingerprint `app`'s secrets with, for an apply: created on first use, and
/// moved out of a shared state that an earlier Fabrik kept it in.
pub(crate) async fn for_apply(
    store: &Store,
    env: &tokio::sync::Mutex<EnvSource>,
    project_dir: &std::path::Path,
    observer: &dyn super::events::Observer,
    project: &str,
    app: &str,
) -> Result<Vec<u8>, KeyError> {
    if !store.is_shared() {
        return Ok(secrets::fingerprint_key(project_dir)?);
    }
    let mut env = env.lock().await;
    let here = env.fingerprint_key()?;
    let legacy = store.legacy_fingerprint_key().await?;
    let recorded = store.fingerprint_key_id(project).await?;
    let id_of = secrets::fingerprint_key_id;
    let key = match (here, &recorded) {
        // The project's recorded key decides; an older schema-wide key does not.
        (Some(key), Some(recorded)) => {
            if id_of(&key) != *recorded {
                return Err(SecretsError::FingerprintKeyDiffers {
                    found: id_of(&key),
                    recorded: recorded.clone(),
                }
                .into());
            }
            key
        }
        // Nothing recorded: the project's fingerprints, if any, were made with the key
        // an earlier Fabrik kept in the state.
        (Some(key), None) => {
            if let Some(legacy) = legacy.filter(|l| *l != key) {
                return Err(differs(&key, &legacy).into());
            }
            key
        }
        (None, recorded) => match legacy {
            // An earlier Fabrik kept the key in the state: it moves to `.env` (checked
            // against what the project recorded before anything is written).
            Some(legacy) if recorded.as_ref().is_none_or(|r| *r == id_of(&legacy)) => {
                env.keep_fingerprint_key(project_dir, &legacy)?;
                observer.event(
                    app,
                    None,
                    &RunEvent::Warning {
                        warning: Warning::FingerprintKeyMoved,
                    },
                );
                legacy
            }
            _ if recorded.is_some() => return Err(SecretsError::FingerprintKeyMissing.into()),
            _ => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(SecretsError::Random)?;
                // Claimed before it is written, so that two machines starting at once
                // agree on one; given back if `.env` cannot take it, so that no id is
                // left recorded for a key that exists nowhere.
                let id = id_of(&key);
                if store.claim_fingerprint_key_id(project, &id).await? != id {
                    return Err(SecretsError::FingerprintKeyMissing.into());
                }
                if let Err(error) = env.keep_fingerprint_key(project_dir, &key) {
                    store.release_fingerprint_key_id(project, &id).await?;
                    return Err(error.into());
                }
                let name = FINGERPRINT_KEY_ENV.to_owned();
                let file = crate::secrets::DOTENV.to_owned();
                observer.event(app, None, &RunEvent::SecretGenerated { name, file });
                key
            }
        },
    };
    let id = id_of(&key);
    let recorded = store.claim_fingerprint_key_id(project, &id).await?;
    if recorded != id {
        return Err(SecretsError::FingerprintKeyDiffers {
            found: id,
            recorded,
        }
        .into());
    }
    // Recorded by its id, and in `.env`: the key leaves the state.
    store.forget_legacy_fingerprint_key().await?;
    Ok(key)
}

fn differs(key: &[u8], legacy: &[u8]) -> SecretsError {
    SecretsError::FingerprintKeyDiffers {
        found: secrets::fingerprint_key_id(key),
        recorded: secrets::fingerprint_key_id(legacy),
    }
}

/// The key for a read-only command (`plan`): never created, never moved.
pub async fn for_reading(
    store: Option<&Store>,
    env: &EnvSource,
    project_dir: &std::path::Path,
) -> Result<Option<Vec<u8>>, KeyError> {
    match store {
        Some(store) if store.is_shared() => match env.fingerprint_key()? {
            Some(key) => Ok(Some(key)),
            None => Ok(store.legacy_fingerprint_key().await?),
        },
        _ => Ok(secrets::existing_fingerprint_key(project_dir)?),
    }
}
