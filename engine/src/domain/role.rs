//! Provider roles: what the engine asks a provider to do for an app.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A provider's role in a project (`[providers.<role>]` in `fabrik.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the app: a Coolify application, service or database, and its deployments.
    Coolify,
    /// Points the app's domain at the server: a DNS record.
    Dns,
}

impl Role {
    /// Every role, in the order providers are listed.
    pub const ALL: [Role; 2] = [Role::Coolify, Role::Dns];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Coolify => "coolify",
            Role::Dns => "dns",
        }
    }

    /// The resource kinds the engine creates through this role's provider (what
    /// `fabrik gc` lists). Servers are only looked up, never created.
    pub const fn created_kinds(self) -> &'static [&'static str] {
        match self {
            Role::Coolify => &["application", "service"],
            Role::Dns => &["dns-record"],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = super::UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| super::UnknownName {
                what: "provider role",
                value: text.to_owned(),
            })
    }
}

/// One value per role: the project's providers, their instances, their policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerRole<T> {
    pub coolify: T,
    pub dns: T,
}

impl<T> PerRole<T> {
    pub fn get(&self, role: Role) -> &T {
        match role {
            Role::Coolify => &self.coolify,
            Role::Dns => &self.dns,
        }
    }

    pub fn get_mut(&mut self, role: Role) -> &mut T {
        match role {
            Role::Coolify => &mut self.coolify,
            Role::Dns => &mut self.dns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("storage".parse::<Role>().is_err());
    }
}
