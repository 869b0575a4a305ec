//! `rollback:`: what a failed run undoes, per provider role.

use super::*;

/// A rollback policy per provider role.
pub(super) const ROLLBACK_KEYS: &[&str] = &[
    Role::Coolify.policy_key(),
    Role::Dns.policy_key(),
    Role::Monitor.policy_key(),
];

impl Reader<'_> {
    pub(super) fn rollback(&mut self, top: &Mapping) -> RollbackPolicy {
        let mut policy = RollbackPolicy::default();
        let Some(value) = Self::get(top, "rollback") else {
            return policy;
        };
        let Some(mapping) = self.mapping(value, "rollback") else {
            return policy;
        };
        self.known_keys(mapping, "rollback", ROLLBACK_KEYS);
        for role in Role::ALL {
            let Some(text) = self.string(mapping, "rollback", role.policy_key()) else {
                continue;
            };
            let field = child("rollback", role.policy_key());
            match RollbackMode::parse(&text) {
                Some(mode) => *policy.for_role_mut(role) = mode,
                None => self.error_with_hint(
                    &field,
                    format!("{text:?} is not a rollback mode"),
                    Some(format!("use one of {}", RollbackMode::NAMES.join(", "))),
                ),
            }
        }
        policy
    }
}
