//! End-to-end tests: the real `switchboard` binary, real sockets, real plugins built from
//! `plugins/`. One test binary, a file per topic.

mod support;

mod api;
mod apps;
mod browser;
mod capabilities;
mod chat_rules;
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
