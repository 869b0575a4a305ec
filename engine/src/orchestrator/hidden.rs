//! What the engine hides from everything it writes: the app's secrets and the webhook
//! URLs from variables, replaced before an event reaches an observer and before the
//! state or a webhook body is written.

use std::sync::Mutex;

use secrecy::SecretString;

use super::events::{Observer, RunEvent};
use crate::secrets::Redactor;

/// Values that must never leave the engine as they are: the app's secrets, webhook URLs
/// from variables. Applied to what the engine writes itself (state, webhook bodies).
#[derive(Default)]
pub struct Hidden(Mutex<Redactor>);

impl Hidden {
    pub fn add(&self, value: &SecretString) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add(value);
    }

    pub fn redact(&self, text: &str) -> String {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .redact(text)
    }
}

/// Passes every event through `hidden` before the observer sees it: events carry
/// provider messages and hook output, which may quote a secret value.
pub(crate) struct Redacting<'a> {
    pub inner: &'a dyn Observer,
    pub hidden: &'a Hidden,
}

impl Observer for Redacting<'_> {
    fn event(&self, app: &str, run: Option<&str>, event: &RunEvent) {
        let redacted = event.redacted(|text| self.hidden.redact(text));
        self.inner.event(app, run, &redacted);
    }

    fn secret(&self, value: &SecretString) {
        self.inner.secret(value);
    }
}
