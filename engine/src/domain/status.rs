//! What the state knows of a resource.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A resource row's status. An intent is `Pending` until the provider call's outcome is
/// recorded; `Created`, `Updated` and `Adopted` are live and owned; `Deleted` is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    Pending,
    Created,
    Updated,
    Adopted,
    Deleted,
}

impl ResourceStatus {
    pub const ALL: [ResourceStatus; 5] = [
        ResourceStatus::Pending,
        ResourceStatus::Created,
        ResourceStatus::Updated,
        ResourceStatus::Adopted,
        ResourceStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Pending => "pending",
            ResourceStatus::Created => "created",
            ResourceStatus::Updated => "updated",
            ResourceStatus::Adopted => "adopted",
            ResourceStatus::Deleted => "deleted",
        }
    }

    /// Live and owned by Fabrik (given an external id).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ResourceStatus::Created | ResourceStatus::Updated | ResourceStatus::Adopted
        )
    }

    /// Brought under Fabrik's care by the run that records it: a rollback of that run
    /// deletes it.
    pub fn is_new_to_run(self) -> bool {
        matches!(self, ResourceStatus::Created | ResourceStatus::Adopted)
    }
}

impl fmt::Display for ResourceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ResourceStatus {
    type Err = super::UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| super::UnknownName {
                what: "resource status",
                value: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_owned_statuses_are_live() {
        for status in ResourceStatus::ALL {
            assert_eq!(status.as_str().parse::<ResourceStatus>(), Ok(status));
        }
        let live: Vec<_> = ResourceStatus::ALL
            .into_iter()
            .filter(|s| s.is_live())
            .collect();
        assert_eq!(
            live,
            [
                ResourceStatus::Created,
                ResourceStatus::Updated,
                ResourceStatus::Adopted
            ]
        );
        assert!("gone".parse::<ResourceStatus>().is_err());
    }
}
