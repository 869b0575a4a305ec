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
    /// Watches the app once it is verified: an uptime monitor of its health URL. Optional:
    /// only a project that configures `[providers.monitor]` has one.
    Monitor,
}

impl Role {
    /// Every role, in the order providers are listed.
    pub const ALL: [Role; 3] = [Role::Coolify, Role::Dns, Role::Monitor];

    /// The roles every project has (a bundled provider unless `fabrik.toml` names
    /// another).
    pub const REQUIRED: [Role; 2] = [Role::Coolify, Role::Dns];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Coolify => "coolify",
            Role::Dns => "dns",
            Role::Monitor => "monitor",
        }
    }

    /// The resource kinds the engine creates through this role's provider (what
    /// `fabrik gc` lists). Servers are only looked up, never created.
    pub const fn created_kinds(self) -> &'static [&'static str] {
        match self {
            Role::Coolify => &["application", "service"],
            Role::Dns => &["dns-record"],
            Role::Monitor => &["monitor"],
        }
    }

    /// The resource class's key in the spec's `rollback` policy: `coolify`, `dns`,
    /// `monitors`.
    pub const fn policy_key(self) -> &'static str {
        match self {
            Role::Coolify => "coolify",
            Role::Dns => "dns",
            Role::Monitor => "monitors",
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

/// One value per required role, and one for the optional monitor role when there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerRole<T> {
    pub coolify: T,
    pub dns: T,
    pub monitor: Option<T>,
}

impl<T> PerRole<T> {
    pub fn get(&self, role: Role) -> Option<&T> {
        match role {
            Role::Coolify => Some(&self.coolify),
            Role::Dns => Some(&self.dns),
            Role::Monitor => self.monitor.as_ref(),
        }
    }

    pub fn get_mut(&mut self, role: Role) -> Option<&mut T> {
        match role {
            Role::Coolify => Some(&mut self.coolify),
            Role::Dns => Some(&mut self.dns),
            Role::Monitor => self.monitor.as_mut(),
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
