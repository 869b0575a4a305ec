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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::{TemplateRegistry, parse};

    const BASE: &str = "\
name: my-api
template: python-api
domain: api.example.com
server: vps1
source:
  image: ghcr.io/acme/my-api:1.4
env:
  PORT: \"8000\"
  LOG_LEVEL: info
secrets: [DATABASE_URL, API_KEY]
healthcheck:
  path: /health
  timeout: 30
rollback:
  coolify: auto
  dns: manual
";

    fn fingerprints() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("API_KEY".to_owned(), "fp-a".to_owned()),
            ("DATABASE_URL".to_owned(), "fp-d".to_owned()),
        ])
    }

    fn hash_with(
        text: &str,
        templates: &TemplateRegistry,
        secrets: &BTreeMap<String, String>,
    ) -> String {
        let loaded = parse(Path::new("spec.yaml"), text, templates).expect("valid spec");
        spec_hash(&loaded.spec, &loaded.rendered.canonical, secrets)
    }

    fn hash(text: &str) -> String {
        let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        hash_with(text, &templates, &fingerprints())
    }

    #[test]
    fn unchanged_by_order_comments_formatting_and_explicit_defaults() {
        let base = hash(BASE);
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64);
        let reordered = "\
# a comment that does not deploy anything
rollback: {dns: manual, coolify: auto}
secrets:
  - API_KEY       # order of secrets does not matter
  - DATABASE_URL
env: {LOG_LEVEL: info, PORT: '8000'}
healthcheck: {timeout: 30, path: /health}
server: vps1
domain: API.Example.COM.
source: {image: 'ghcr.io/acme/my-api:1.4'}
template: python-api
name: my-api
";
        assert_eq!(hash(reordered), base);
        let explicit_defaults =
            format!("{BASE}port: 8000\ncoolify: {{project: my-api, environment: production}}\n");
        assert_eq!(hash(&explicit_defaults), base);
    }

    #[test]
    fn changed_by_every_deployable_value() {
        let base = hash(BASE);
        let changes = [
            ("LOG_LEVEL: info", "LOG_LEVEL: debug"),
            ("PORT: \"8000\"", "PORT: \"8001\""),
            ("name: my-api", "name: my-api2"),
            ("domain: api.example.com", "domain: api2.example.com"),
            ("server: vps1", "server: vps2"),
            ("my-api:1.4", "my-api:1.5"),
            ("path: /health", "path: /healthz"),
            ("timeout: 30", "timeout: 31"),
            ("dns: manual", "dns: auto"),
            ("template: python-api", "template: node-api"),
            (
                "secrets: [DATABASE_URL, API_KEY]",
                "secrets: [DATABASE_URL]",
            ),
        ];
        for (from, to) in changes {
            let changed = BASE.replace(from, to);
            assert_ne!(changed, BASE, "{from} not found in the base spec");
            let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
            let mut secrets = fingerprints();
            if to == "secrets: [DATABASE_URL]" {
                secrets.remove("API_KEY");
            }
            assert_ne!(
                hash_with(&changed, &templates, &secrets),
                base,
                "{from} -> {to}"
            );
        }
        assert_ne!(hash(&format!("{BASE}port: 9000\n")), base, "port");
    }

    #[test]
    fn changed_by_a_secret_fingerprint() {
        let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("templates");
        let base = hash_with(BASE, &templates, &fingerprints());
        let mut rotated = fingerprints();
        rotated.insert("API_KEY".to_owned(), "fp-rotated".to_owned());
        assert_ne!(hash_with(BASE, &templates, &rotated), base);
    }

    #[test]
    fn changed_by_the_rendered_compose_but_not_its_comments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let templates_dir = dir.path().join("templates");
        std::fs::create_dir(&templates_dir).expect("mkdir");
        let write = |body: &str| {
            std::fs::write(
                templates_dir.join("python-api.yaml"),
                format!("description: test\ndefault_port: 8000\nsources: [image]\n---\n{body}"),
            )
            .expect("write template");
            TemplateRegistry::load(dir.path()).expect("templates")
        };
        let original = write("services:\n  app:\n    image: {{ image }}\n    restart: always\n");
        let commented =
            write("# only a comment\nservices:\n  app: {restart: always,   image: {{ image }}}\n");
        let changed =
            write("services:\n  app:\n    image: {{ image }}\n    restart: unless-stopped\n");
        let a = hash_with(BASE, &original, &fingerprints());
        assert_eq!(hash_with(BASE, &commented, &fingerprints()), a);
        assert_ne!(hash_with(BASE, &changed, &fingerprints()), a);
    }
}
