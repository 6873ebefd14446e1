//! What a plugin instance's store holds: WASI, limits, timers, the way to the gateways and
//! what its app is granted (variables, key-value store, outbound HTTP).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::capabilities::{Grants, OutboundHooks, WallBudget};
use super::limits::MemoryCap;
use super::log_budget::LogBudget;
use super::plugin::Version;
use super::stdio::{LogStream, Stream};
use super::timers::Timers;
use super::unhandled::Unhandled;
use crate::bus::{AppName, Gateways};

/// The data of one instance's `Store`.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and table caps, enforced by the store.
    pub limits: MemoryCap,
    /// Where API calls go.
    pub gateways: Arc<dyn Gateways>,
    /// The app, for log lines.
    pub app: AppName,
    /// The plugin version, for log lines.
    pub version: Arc<str>,
    /// Where the version's instances report the handlers they leave to the SDK's default.
    pub unhandled: Arc<Unhandled>,
    /// This instance's timers.
    pub timers: Timers,
    /// Epoch ticks of guest code the running call may still use before it is interrupted.
    pub ticks_left: u64,
    /// Whether the running call has seen an epoch tick yet.
    pub ticked: bool,
    /// How much it may still log.
    pub log_budget: LogBudget,
    /// What the app is granted.
    pub grants: Grants,
    /// Wall time the running call earned waiting on the network and the store.
    pub wall: WallBudget,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
}

impl InstanceState {
    /// State for a new instance: WASI with nothing granted (no files, no environment, no
    /// network), output to the log.
    pub fn new(
        app: AppName,
        version: &Version,
        limits: MemoryCap,
        gateways: Arc<dyn Gateways>,
        timers: Timers,
        grants: Grants,
        wall: WallBudget,
    ) -> Self {
        let (unhandled, version) = (version.unhandled.clone(), version.hash.clone());
        let log_budget = LogBudget::default();
        let stream = |kind| LogStream::new(app.clone(), version.clone(), kind, log_budget.clone());
        let wasi = WasiCtx::builder()
            .stdout(stream(Stream::Stdout))
            .stderr(stream(Stream::Stderr))
            // No sockets at all, not even unbound ones: each would be a host file descriptor.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let hooks = OutboundHooks::new(
            app.clone(),
            grants.outbound.clone(),
            wall.clone(),
            log_budget.clone(),
        );
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            gateways,
            app,
            version,
            unhandled,
            timers,
            ticks_left: 0,
            ticked: false,
            log_budget,
            grants,
            wall,
            http: WasiHttpCtx::new(),
            hooks,
        }
    }
}

/// `wasi:http`, with the app's allow-list and timeout in the hooks.
impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
