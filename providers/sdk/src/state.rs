//! State kept between the calls of one provider instance.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::ProviderError;
use crate::error::permanent;

/// A value set by `configure` and used by every later call of the instance: a base URL,
/// a cache of ids. One instance serves one call at a time and lives for one command (an
/// apply, a destroy); after a crash the host starts a fresh instance and calls
/// `configure` again, so nothing here survives a trap.
///
/// ```ignore
/// static STATE: Instance<State> = Instance::new();
/// // in configure:  STATE.set(State { base, zones: HashMap::new() });
/// // in a call:     let base = STATE.with(|s| s.base.clone())?;
/// ```
pub struct Instance<T> {
    // A component has one thread; the mutex makes the static `Sync` without `unsafe`.
    // Natively (unit tests, which run in parallel, see `crate::testing`) each thread has
    // its own state, as each test is its own instance.
    value: Mutex<Vec<(Slot, T)>>,
}

#[cfg(target_arch = "wasm32")]
type Slot = ();
#[cfg(not(target_arch = "wasm32"))]
type Slot = std::thread::ThreadId;

#[cfg(target_arch = "wasm32")]
fn slot() -> Slot {}
#[cfg(not(target_arch = "wasm32"))]
fn slot() -> Slot {
    std::thread::current().id()
}

impl<T> Instance<T> {
    pub const fn new() -> Self {
        Self {
            value: Mutex::new(Vec::new()),
        }
    }

    /// Replaces the state (in `configure`).
    pub fn set(&self, value: T) {
        let mut all = self.lock();
        all.retain(|(s, _)| *s != slot());
        all.push((slot(), value));
    }

    /// Runs `f` on the state; a `permanent` error if `configure` has not set it.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, ProviderError> {
        match self.lock().iter_mut().find(|(s, _)| *s == slot()) {
            Some((_, value)) => Ok(f(value)),
            None => Err(permanent(
                "the provider was called before `configure` (a host bug)",
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Slot, T)>> {
        // A panic inside `with` aborts the component; the state is still consistent.
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Default for Instance<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_set_by_configure_and_required_after() {
        static STATE: Instance<u32> = Instance::new();
        assert!(STATE.with(|v| *v).is_err());
        STATE.set(7);
        assert_eq!(
            STATE
                .with(|v| {
                    *v += 1;
                    *v
                })
                .ok(),
            Some(8)
        );
        // Natively, another thread (another unit test) has its own instance.
        std::thread::spawn(|| assert!(STATE.with(|v| *v).is_err()))
            .join()
            .expect("joined");
    }
}
