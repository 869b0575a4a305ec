//! What the benches share.

use std::path::Path;

/// Writes `<name>.yaml` into `dir`: `fixtures/test-api.yaml` as app `name` on
/// `<name>.example.com`. Returns the file name.
pub fn spec(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/test-api.yaml"),
    )
    .expect("fixture");
    let text = text
        .replace("name: test-api", &format!("name: {name}"))
        .replace(
            "domain: api.example.com",
            &format!("domain: {name}.example.com"),
        );
    let file = format!("{name}.yaml");
    std::fs::write(dir.join(&file), text).expect("spec");
    file
}
