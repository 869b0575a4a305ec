//! WIT versions: which contract versions this host serves, and reading the version a
//! component targets from its export names (never from what it says in `describe`).
//!
//! Each released version of `wit/` has a module here with its own `bindgen!`. Today there
//! is one, 0.1; when 0.2 ships, `v0_2` is added and the instance dispatches on the version.

pub mod v0_1;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::types::WitVersion;

/// The name of the interface a provider exports, without its version.
const PROVIDER_INTERFACE: &str = "fabrik:provider/provider@";

/// Contract versions this host has bindings for, newest first.
pub const SUPPORTED: &[WitVersion] = &[WitVersion {
    major: 0,
    minor: 1,
    patch: 0,
}];

/// Why a component's contract version cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitError {
    #[error(
        "it does not export `fabrik:provider/provider`: it is not a Fabrik provider (exports: {0})"
    )]
    NotAProvider(String),
    #[error(
        "it targets contract `fabrik:provider@{found}`, which this fabrik does not support (it supports {supported})"
    )]
    Unsupported { found: String, supported: String },
}

/// The contract version `component` targets, if this host supports it.
pub fn detect(engine: &Engine, component: &Component) -> Result<WitVersion, WitError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let Some(text) = exports
        .iter()
        .find_map(|name| name.strip_prefix(PROVIDER_INTERFACE))
    else {
        return Err(WitError::NotAProvider(exports.join(", ")));
    };
    let supported = || {
        SUPPORTED
            .iter()
            .map(|v| format!("{}.{}.x", v.major, v.minor))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let version = WitVersion::parse(text).ok_or_else(|| WitError::Unsupported {
        found: text.to_owned(),
        supported: supported(),
    })?;
    if SUPPORTED.iter().any(|host| version.is_served_by(*host)) {
        Ok(version)
    } else {
        Err(WitError::Unsupported {
            found: version.to_string(),
            supported: supported(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> WitVersion {
        WitVersion::parse(text).expect("version")
    }

    #[test]
    fn semver_compatibility() {
        assert!(v("0.1.0").is_served_by(v("0.1.0")));
        assert!(v("0.1.7").is_served_by(v("0.1.0")));
        assert!(!v("0.2.0").is_served_by(v("0.1.0")));
        assert!(!v("1.0.0").is_served_by(v("0.1.0")));
        assert!(v("1.1.0").is_served_by(v("1.2.0")));
        assert!(!v("1.3.0").is_served_by(v("1.2.0")));
    }

    /// The edited WIT may only differ from a released copy after its version is bumped.
    #[test]
    fn released_versions_are_frozen() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let current = std::fs::read_to_string(root.join("provider.wit")).expect("wit/provider.wit");
        let version = current
            .lines()
            .find_map(|l| l.strip_prefix("package fabrik:provider@"))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("package line");
        let released = root.join("released").join(version).join("provider.wit");
        if let Ok(frozen) = std::fs::read_to_string(&released) {
            assert_eq!(
                current, frozen,
                "wit/provider.wit changed but its version {version} is released: bump the version"
            );
        }
        for host in SUPPORTED {
            let dir = root.join("released").join(host.to_string());
            assert!(
                dir.join("provider.wit").is_file(),
                "no frozen WIT for supported version {host}"
            );
        }
    }
}
