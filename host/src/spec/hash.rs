//! The canonical spec hash: equal for specs that deploy the same thing, different for
//! any change that deploys differently.
//!
//! It covers the validated spec (defaults applied, maps and lists sorted), the rendered
//! compose document (parsed, so template comments and layout do not count) and one
//! fingerprint per secret. Secret values never enter it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::model::Spec;

/// Bumped when the canonical form changes, so that old hashes never match new ones.
const CANONICAL_VERSION: u32 = 1;

/// `sha256:<hex>` over the canonical JSON form of the deployable inputs.
///
/// `secret_fingerprints` maps each secret name to a fingerprint of its value (see
/// `secrets`), never the value itself.
pub fn spec_hash(
    spec: &Spec,
    compose: &serde_json::Value,
    secret_fingerprints: &BTreeMap<String, String>,
) -> String {
    // serde_json's `Value` keeps object keys sorted (no `preserve_order`), so converting
    // through it gives one byte sequence per meaning.
    let document = serde_json::json!({
        "version": CANONICAL_VERSION,
        "spec": spec,
        "compose": compose,
        "secrets": secret_fingerprints,
    });
    let bytes = document.to_string();
    format!("sha256:{}", hex::encode(Sha256::digest(bytes.as_bytes())))
}
