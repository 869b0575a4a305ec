//! Short constructors for [`ProviderError`]: the host retries only `transient`, stops on
//! the others, and shows every message to the user.

use crate::{ProviderError, TransientError};

/// The call may succeed later (rate limit, 5xx, timeout); `retry_after_ms` is what the
/// API asked for, if it said.
pub fn transient(message: impl Into<String>, retry_after_ms: Option<u64>) -> ProviderError {
    ProviderError::Transient(TransientError {
        message: message.into(),
        retry_after_ms,
    })
}

/// The request cannot succeed as made (validation, conflict, a bug).
pub fn permanent(message: impl Into<String>) -> ProviderError {
    ProviderError::Permanent(message.into())
}

/// The resource does not exist.
pub fn not_found(message: impl Into<String>) -> ProviderError {
    ProviderError::NotFound(message.into())
}

/// The credential is missing, wrong, or lacks a permission: say which.
pub fn unauthorized(message: impl Into<String>) -> ProviderError {
    ProviderError::Unauthorized(message.into())
}

/// The provider's configuration is wrong or incomplete.
pub fn invalid_config(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidConfig(message.into())
}
