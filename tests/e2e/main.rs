//! End-to-end tests: the real `switchboard` binary, real sockets, real plugins built from
//! `plugins/`. One test binary, a file per topic.

/// Turns each scenario `async fn NAME(probe: &str)` into a module `NAME` with one test per SDK,
/// run against that SDK's implementation of the probe protocol (`plugins/probe*`), so every
/// API function and edge is proven in every language.
macro_rules! in_every_sdk {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn rust() {
                super::$scenario("probe").await
            }

            #[tokio::test]
            async fn javascript() {
                super::$scenario("probe-js").await
            }

            #[tokio::test]
            async fn python() {
                super::$scenario("probe-py").await
            }

            #[tokio::test]
            async fn go() {
                super::$scenario("probe-go").await
            }
        }
    )*};
}

mod support;

mod api;
mod apps;
mod browser;
mod capabilities;
mod cli;
mod cluster;
mod connections;
mod deploy;
mod go_sdk;
mod hot_swap;
mod http_api;
mod isolation;
mod languages;
mod limits;
mod ops;
mod parity;
mod protocols;
mod sandbox;
mod startup;
mod static_files;
mod tls;
mod tools;
