//! `hooks:`: the commands run before and after a deploy.

use super::*;

pub(super) const HOOK_KEYS: &[&str] = &["pre_deploy", "post_deploy", "timeout"];

impl Reader<'_> {
    pub(super) fn hooks(&mut self, top: &Mapping) -> Hooks {
        let mut hooks = Hooks::default();
        let Some(value) = Self::get(top, "hooks") else {
            return hooks;
        };
        let Some(mapping) = self.mapping(value, "hooks") else {
            return hooks;
        };
        self.known_keys(mapping, "hooks", HOOK_KEYS);
        hooks.pre_deploy = self.string(mapping, "hooks", "pre_deploy");
        hooks.post_deploy = self.string(mapping, "hooks", "post_deploy");
        if let Some(timeout) = self.integer(mapping, "hooks", "timeout", 1, 3600) {
            hooks.timeout = u32::try_from(timeout).unwrap_or(DEFAULT_HOOK_TIMEOUT);
        }
        hooks
    }
}
