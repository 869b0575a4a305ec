//! Building the [`Resource`] a call returns.

use serde::Serialize;

use crate::{ProviderError, Resource};

/// A [`Resource`] from its parts: `live` and `outputs` as any serializable value.
///
/// ```ignore
/// let resource = ResourceBuilder::new("dns-record", &record.id, &record.name)
///     .owner(record.comment.as_deref())
///     .live(&json!({ "type": record.kind, "content": record.content }))
///     .outputs(&json!({ "record_id": record.id }))
///     .build()?;
/// ```
#[derive(Debug, Clone)]
pub struct ResourceBuilder {
    kind: String,
    id: String,
    name: String,
    owner: Option<String>,
    live: Result<String, String>,
    outputs: Result<String, String>,
}

impl ResourceBuilder {
    pub fn new(kind: &str, id: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.to_owned(),
            name: name.to_owned(),
            owner: None,
            live: Ok("{}".to_owned()),
            outputs: Ok("{}".to_owned()),
        }
    }

    /// The owner tag found on the resource; none (or an empty one) when it has none.
    pub fn owner(mut self, owner: Option<&str>) -> Self {
        self.owner = owner.filter(|o| !o.is_empty()).map(str::to_owned);
        self
    }

    /// The live document, in the schema of the kind's `desired`.
    pub fn live(mut self, live: &impl Serialize) -> Self {
        self.live = serde_json::to_string(live).map_err(|e| e.to_string());
        self
    }

    /// The outputs, a JSON object (never a secret in it: the state keeps them).
    pub fn outputs(mut self, outputs: &impl Serialize) -> Self {
        self.outputs = serde_json::to_string(outputs).map_err(|e| e.to_string());
        self
    }

    /// The resource, or a `permanent` error when an id is missing or a document could
    /// not be serialized.
    pub fn build(self) -> Result<Resource, ProviderError> {
        if self.id.trim().is_empty() {
            return Err(crate::error::permanent(format!(
                "the API returned a {} `{}` without an id",
                self.kind, self.name
            )));
        }
        let document = |what: &str, text: Result<String, String>| {
            text.map_err(|e| crate::error::permanent(format!("{what} of {}: {e}", self.name)))
        };
        Ok(Resource {
            live: document("live", self.live.clone())?,
            outputs: document("outputs", self.outputs.clone())?,
            kind: self.kind,
            id: self.id,
            name: self.name,
            owner: self.owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_built_from_its_parts() {
        let built = ResourceBuilder::new("dns-record", "z/1", "api.example.com")
            .owner(Some("fabrik:acme/api"))
            .live(&serde_json::json!({ "type": "A", "content": "192.0.2.1" }))
            .outputs(&serde_json::json!({ "record_id": "1" }))
            .build()
            .expect("built");
        assert_eq!(built.owner.as_deref(), Some("fabrik:acme/api"));
        let live: serde_json::Value = serde_json::from_str(&built.live).expect("JSON");
        assert_eq!(live["content"], "192.0.2.1");
        assert!(
            ResourceBuilder::new("dns-record", " ", "x")
                .build()
                .is_err()
        );
        let untagged = ResourceBuilder::new("dns-record", "1", "x")
            .owner(Some(""))
            .build()
            .expect("built");
        assert_eq!(untagged.owner, None, "an empty tag is no tag");
    }
}
