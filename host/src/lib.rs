//! Switchboard: a long-connection server whose business logic runs as WebAssembly components.
//!
//! Gateways ([`gateway`]) hold client connections; worker hosts ([`worker`]) run the plugins;
//! the [`bus`] is the only place they meet; [`control`] is the command line and process
//! management around them; [`tools`] are the plugin developer's commands (new, build,
//! check, dev).

pub mod api;
pub mod bus;
pub mod config;
#[cfg(feature = "runtime")]
pub mod control;
pub mod gateway;
#[cfg(feature = "runtime")]
pub mod private_dir;
pub mod tools;
#[cfg(feature = "runtime")]
pub mod worker;
