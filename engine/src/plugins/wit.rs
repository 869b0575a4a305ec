//! WIT versions: which contract versions this host serves, and reading the version a
//! component targets from its export names (never from what it says in `describe`).
//!
//! Each released version of `wit/` has a module here with its own `bindgen!` (0.1 to 0.4),
//! and the instance dispatches on the version a component targets. Conversions to the
//! host's own types are written once (`convert`).

mod convert;
pub mod v0_1;
pub mod v0_2;
pub mod v0_3;
pub mod v0_4;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::types::WitVersion;

/// The name of the interface a provider exports, without its version.
const PROVIDER_INTERFACE: &str = "fabrik:provider/provider@";

/// Contract versions this host has bindings for, newest first.
pub const SUPPORTED: &[WitVersion] = &[V0_4, V0_3, V0_2, V0_1];

/// The first contract: everything but `http-send-many` and `list`.
pub const V0_1: WitVersion = WitVersion {
    major: 0,
    minor: 1,
    patch: 0,
};

/// 0.1 plus `host.http-send-many` and `provider.list`.
pub const V0_2: WitVersion = WitVersion {
    major: 0,
    minor: 2,
    patch: 0,
};

/// 0.2 plus `provider-info.rate-limit` and `lookup`'s `desired` document.
pub const V0_3: WitVersion = WitVersion {
    major: 0,
    minor: 3,
    patch: 0,
};

/// 0.3 plus the `body` credential scheme.
pub const V0_4: WitVersion = WitVersion {
    major: 0,
    minor: 4,
    patch: 0,
};

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
    #[error("it is not a valid WebAssembly component: {0}")]
    Malformed(String),
}

/// The contract version `component` targets, if this host supports it.
pub fn detect(engine: &Engine, component: &Component) -> Result<WitVersion, WitError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    version_of(&exports)
}

/// The contract version the component in `wasm` targets, read from its top-level export
/// names without compiling anything: a component this host cannot serve is refused in
/// milliseconds, before Cranelift or Winch spend seconds on it.
pub fn detect_in_bytes(wasm: &[u8]) -> Result<WitVersion, WitError> {
    use wasmtime::wasmparser::{Parser, Payload};
    let mut exports = Vec::new();
    // Nested modules and components are parsed inline by `parse_all`; only the outermost
    // component's exports name the contract.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| WitError::Malformed(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. }
                if depth == 0 && encoding != wasmtime::wasmparser::Encoding::Component =>
            {
                return Err(WitError::Malformed(
                    "it is a core WebAssembly module, not a component".to_owned(),
                ));
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| WitError::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    version_of(&exports)
}

fn version_of(exports: &[String]) -> Result<WitVersion, WitError> {
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
        assert!(v("0.2.3").is_served_by(V0_2));
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
        // The SDK carries its own copy so that it builds outside this repository.
        let sdk = std::fs::read_to_string(root.join("../providers/sdk/wit/provider.wit"))
            .expect("providers/sdk/wit/provider.wit");
        assert_eq!(
            sdk, current,
            "providers/sdk/wit/provider.wit must be a copy of wit/provider.wit"
        );
        for host in SUPPORTED {
            let dir = root.join("released").join(host.to_string());
            assert!(
                dir.join("provider.wit").is_file(),
                "no frozen WIT for supported version {host}"
            );
        }
    }
}
