//! The app's variables: the `[apps.NAME.variables]` table of the host's configuration.
//!
//! ```ignore
//! let endpoint = switchboard_sdk::variables::get("auth_url").unwrap_or_default();
//! ```

use crate::bindings::switchboard::plugin::variables as raw;

/// The value of variable `name`, or `None` if the app has no such variable.
pub fn get(name: &str) -> Option<String> {
    raw::get(name)
}
