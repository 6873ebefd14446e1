//! Per-language plugin figures (not a timed test): component size, compile time, load time
//! from a serialized artifact, instantiate time, memory of one instance after N events, direct
//! calls/s, and events/s of the plugin through the real gateway.
//!
//! `cargo xtask bench-plugins` builds the plugins and runs this for every echo plugin; by hand:
//! `cargo run --release -p plugin-bench -- [--events N] [--msg-bytes B] [--gateway-secs S]
//! [--no-gateway] NAME...` (NAME: `target/plugins/NAME.wasm`, or a path to a `.wasm`).
//!
//! The engine is configured like the host's (`host/src/worker/engine.rs`: component model,
//! epoch interruption, default features without component-model-async); the API imports are
//! stubs that accept everything, so the figures are the guest's own cost.

// Loading a serialized component is `unsafe` in wasmtime: this program only loads the file it
// has just written itself.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

use switchboard::plugin::api;
use switchboard::plugin::kv::KvError;
use switchboard::plugin::types::{self, Context, Error, Message};

/// One instance's state: WASI with nothing granted, and the memory it holds.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    memory: MemoryMeter,
    sent: u64,
}

/// Counts the bytes of every linear memory of the instance.
#[derive(Default)]
struct MemoryMeter {
    bytes: usize,
}

impl wasmtime::ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.bytes += desired.saturating_sub(current);
        Ok(true)
    }
    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `wasi:http` as StarlingMonkey components import it; the echo plugins make no request.
impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

impl types::Host for State {}

impl api::Host for State {
    async fn send_to_client(&mut self, _: String, m: Message) -> Result<(), Error> {
        self.sent += match m {
            Message::Text(t) => t.len() as u64,
            Message::Binary(b) => b.len() as u64,
        };
        Ok(())
    }
    async fn send_to_uid(&mut self, _: String, _: Message, _: Vec<String>) -> Result<(), Error> {
        Ok(())
    }
    async fn send_to_group(&mut self, _: String, _: Message, _: Vec<String>) -> Result<(), Error> {
        Ok(())
    }
    async fn send_to_all(&mut self, _: Message, _: Vec<String>) -> Result<(), Error> {
        Ok(())
    }
    async fn is_online(&mut self, _: String) -> Result<bool, Error> {
        Ok(true)
    }
    async fn is_uid_online(&mut self, _: String) -> Result<bool, Error> {
        Ok(false)
    }
    async fn get_client_count(&mut self) -> Result<u64, Error> {
        Ok(1)
    }
    async fn get_client_count_by_group(&mut self, _: String) -> Result<u64, Error> {
        Ok(0)
    }
    async fn get_uid_count_by_group(&mut self, _: String) -> Result<u64, Error> {
        Ok(0)
    }
    async fn get_uid_count(&mut self, _: Option<f32>) -> Result<u64, Error> {
        Ok(0)
    }
    async fn get_client_list(&mut self, _: Option<String>, _: u32) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_client_list_by_group(
        &mut self,
        _: String,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_client_list_by_uid(
        &mut self,
        _: String,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_uid_list(&mut self, _: bool) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_uid_list_by_group(&mut self, _: String, _: bool) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_group_list(&mut self, _: bool) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_client_info(
        &mut self,
        _: String,
        _: types::ClientInfoFields,
    ) -> Result<Option<types::ClientInfo>, Error> {
        Ok(None)
    }
    async fn close_client(&mut self, _: String, _: bool) -> Result<(), Error> {
        Ok(())
    }
    async fn bind_uid(&mut self, _: String, _: String) -> Result<(), Error> {
        Ok(())
    }
    async fn unbind_uid(&mut self, _: String) -> Result<(), Error> {
        Ok(())
    }
    async fn join_group(&mut self, _: String, _: String) -> Result<(), Error> {
        Ok(())
    }
    async fn leave_group(&mut self, _: String, _: String) -> Result<(), Error> {
        Ok(())
    }
    async fn ungroup(&mut self, _: String) -> Result<(), Error> {
        Ok(())
    }
    async fn set_session(&mut self, _: String, _: Vec<(String, String)>) -> Result<(), Error> {
        Ok(())
    }
    async fn update_session(&mut self, _: String, _: Vec<(String, String)>) -> Result<(), Error> {
        Ok(())
    }
    async fn delete_session(&mut self, _: String) -> Result<(), Error> {
        Ok(())
    }
    async fn get_session(&mut self, _: String) -> Result<Option<Vec<(String, String)>>, Error> {
        Ok(Some(Vec::new()))
    }
    async fn set_timer(&mut self, _: u64, _: bool) -> Result<u64, Error> {
        Ok(1)
    }
    async fn clear_timer(&mut self, _: u64) {}
    // Direct calls measure each handler as called: nothing is skipped here.
    async fn unhandled(&mut self, _: api::ClientHandler) {}
    async fn log(&mut self, _: types::LogLevel, message: String) {
        eprintln!("plugin log: {message}");
    }
    async fn send_to_uids(
        &mut self,
        _: Vec<String>,
        _: Message,
        _: Vec<String>,
    ) -> Result<(), Error> {
        Ok(())
    }
    async fn send_to_groups(
        &mut self,
        _: Vec<String>,
        _: Message,
        _: Vec<String>,
    ) -> Result<(), Error> {
        Ok(())
    }
    async fn send_to_clients(&mut self, _: Vec<String>, _: Message) -> Result<(), Error> {
        Ok(())
    }
    async fn get_uid_list_paged(
        &mut self,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_uid_list_by_group_paged(
        &mut self,
        _: String,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_group_list_paged(
        &mut self,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
    async fn get_client_sessions(
        &mut self,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<(String, Vec<(String, String)>)>, Error> {
        Ok(Vec::new())
    }
    async fn get_client_sessions_by_group(
        &mut self,
        _: String,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<(String, Vec<(String, String)>)>, Error> {
        Ok(Vec::new())
    }
    async fn get_client_count_by_groups(
        &mut self,
        groups: Vec<String>,
    ) -> Result<Vec<(String, u64)>, Error> {
        Ok(groups.into_iter().map(|g| (g, 0)).collect())
    }
    async fn get_client_ids_by_uids(
        &mut self,
        uids: Vec<String>,
    ) -> Result<Vec<(String, Vec<String>)>, Error> {
        Ok(uids.into_iter().map(|u| (u, Vec::new())).collect())
    }
    async fn close_client_with(&mut self, _: String, _: Message) -> Result<(), Error> {
        Ok(())
    }
}

/// No variables are granted here.
impl switchboard::plugin::variables::Host for State {
    async fn get(&mut self, _: String) -> Option<String> {
        None
    }
}

/// An empty store that takes every write: the figures are the guest's, not a store's.
impl switchboard::plugin::kv::Host for State {
    async fn get(&mut self, _: String) -> Result<Option<Vec<u8>>, KvError> {
        Ok(None)
    }
    async fn set(&mut self, _: String, _: Vec<u8>, _: Option<u64>) -> Result<(), KvError> {
        Ok(())
    }
    async fn delete(&mut self, _: String) -> Result<(), KvError> {
        Ok(())
    }
    async fn list_keys(
        &mut self,
        _: String,
        _: Option<String>,
        _: u32,
    ) -> Result<Vec<String>, KvError> {
        Ok(Vec::new())
    }
    async fn increment(&mut self, _: String, delta: i64) -> Result<i64, KvError> {
        Ok(delta)
    }
}

struct Options {
    events: u64,
    msg_bytes: usize,
    gateway_secs: u64,
    gateway: bool,
    plugins: Vec<String>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        events: 100_000,
        msg_bytes: 4096,
        gateway_secs: 5,
        gateway: true,
        plugins: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--events" => o.events = value("--events")?.parse()?,
            "--msg-bytes" => o.msg_bytes = value("--msg-bytes")?.parse()?,
            "--gateway-secs" => o.gateway_secs = value("--gateway-secs")?.parse()?,
            "--no-gateway" => o.gateway = false,
            "--bench" => {}
            _ if a.starts_with('-') => bail!("unknown option {a}"),
            _ => o.plugins.push(a),
        }
    }
    if o.plugins.is_empty() {
        bail!("name at least one plugin (target/plugins/NAME.wasm) or .wasm path");
    }
    Ok(o)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugin_path(name: &str) -> PathBuf {
    if name.ends_with(".wasm") {
        PathBuf::from(name)
    } else {
        root().join("target/plugins").join(format!("{name}.wasm"))
    }
}

fn engine() -> Result<Engine> {
    // As host/src/worker/engine.rs.
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    w(Engine::new(&config))
}

fn store(engine: &Engine) -> Store<State> {
    let mut store = Store::new(
        engine,
        State {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            memory: MemoryMeter::default(),
            sent: 0,
        },
    );
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(u64::MAX / 2);
    store
}

fn ctx(client: &str) -> Context {
    Context {
        client: client.to_owned(),
        remote_addr: "127.0.0.1:1".into(),
        gateway_id: 1,
        uid: None,
        session: Vec::new(),
    }
}

/// wasmtime 48 has an error type of its own.
fn w<T>(r: wasmtime::Result<T>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("{e:?}"))
}

const MIB: f64 = 1024.0 * 1024.0;

/// One row of the table.
struct Row {
    name: String,
    size: u64,
    compile: Duration,
    load: Duration,
    instantiate: Duration,
    start_mib: f64,
    after_mib: f64,
    calls_per_s: f64,
    gateway_per_s: Option<f64>,
    note: String,
}

async fn measure(engine: &Engine, name: &str, o: &Options) -> Result<Row> {
    let path = plugin_path(name);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;

    let t = Instant::now();
    let component = w(Component::new(engine, &bytes))?;
    let compile = t.elapsed();

    let artifact = std::env::temp_dir().join(format!("plugin-bench-{}.cwasm", std::process::id()));
    std::fs::write(&artifact, w(component.serialize())?)?;
    let t = Instant::now();
    // SAFETY: the file was written just above by this process, from this engine.
    let component = unsafe { w(Component::deserialize_file(engine, &artifact))? };
    let load = t.elapsed();
    let _ = std::fs::remove_file(&artifact);

    let mut linker: Linker<State> = Linker::new(engine);
    w(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
    w(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
        &mut linker,
    ))?;
    w(Plugin::add_to_linker::<_, HasSelf<State>>(
        &mut linker,
        |s| s,
    ))?;
    let pre = w(PluginPre::new(w(linker.instantiate_pre(&component))?))?;

    const INSTANCES: u32 = 20;
    let t = Instant::now();
    for _ in 0..INSTANCES {
        let mut s = store(engine);
        w(pre.instantiate_async(&mut s).await)?;
    }
    let instantiate = t.elapsed() / INSTANCES;

    let mut s = store(engine);
    let plugin = w(pre.instantiate_async(&mut s).await)?;
    let events = plugin.switchboard_plugin_events();
    w(events.call_on_worker_start(&mut s, 0).await)?;
    let start_mib = s.data().memory.bytes as f64 / MIB;
    let payload: Vec<u8> = (0..o.msg_bytes).map(|i| (i % 251) as u8).collect();
    let client = "00000001000000000001";
    let t = Instant::now();
    let mut note = String::new();
    let mut done = 0;
    for i in 0..o.events {
        if let Err(e) = events
            .call_on_message(&mut s, &ctx(client), &Message::Binary(payload.clone()))
            .await
        {
            note = format!("trapped at event {i}: {e:#}");
            break;
        }
        done += 1;
    }
    let calls_per_s = done as f64 / t.elapsed().as_secs_f64();
    let after_mib = s.data().memory.bytes as f64 / MIB;
    if note.is_empty() && s.data().sent != done * o.msg_bytes as u64 {
        note = format!(
            "echoed {} bytes, expected {}",
            s.data().sent,
            done * o.msg_bytes as u64
        );
    }
    let app = path
        .file_stem()
        .and_then(|s| s.to_str())
        .context("plugin file name")?
        .to_owned();
    let gateway_per_s = if o.gateway {
        Some(gateway_rate(&app, &bytes, o.gateway_secs).await?)
    } else {
        None
    };
    Ok(Row {
        name: app,
        size: bytes.len() as u64,
        compile,
        load,
        instantiate,
        start_mib,
        after_mib,
        calls_per_s,
        gateway_per_s,
        note,
    })
}

/// Echo round trips per second through the real binary: 32 WebSocket clients, each sending
/// its next message when the previous one came back, for `secs` seconds.
async fn gateway_rate(name: &str, bytes: &[u8], secs: u64) -> Result<f64> {
    const CLIENTS: usize = 32;
    let bin = ["release", "debug"]
        .iter()
        .map(|p| root().join("target").join(p).join("switchboard"))
        .find(|p| p.is_file())
        .context("no target/release/switchboard: cargo build --release -p switchboard")?;
    let dir = std::env::temp_dir().join(format!("plugin-bench-gw-{}", std::process::id()));
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::write(plugins.join(format!("{name}.wasm")), bytes)?;
    std::fs::write(
        dir.join("switchboard.toml"),
        format!(
            "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"{name}\"\n\
             [worker]\nplugins_dir = \"plugins\"\ninstances = 2\ncache_dir = \"cache\"\n"
        ),
    )?;
    let mut child = tokio::process::Command::new(&bin)
        .args(["start", "-c"])
        .arg(dir.join("switchboard.toml"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().context("stderr")?).lines();
    let mut addr = None;
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            if line.contains("switchboard ready") {
                return anyhow::Ok(());
            }
        }
        bail!("switchboard exited before it was ready")
    })
    .await;
    ready.context("switchboard did not become ready")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = format!("ws://{}/", addr.context("no listening address in the log")?);
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            use tokio_tungstenite::tungstenite::Message as M;
            while Instant::now() < deadline {
                ws.send(M::text("ping 0123456789")).await?;
                loop {
                    match ws.next().await {
                        Some(Ok(M::Text(_))) => break,
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(anyhow::Error::from(e)),
                        None => bail!("closed"),
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let t = Instant::now();
    for task in tasks {
        task.await??;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

#[tokio::main]
async fn main() -> Result<()> {
    let o = options()?;
    let engine = engine()?;
    let ticker = engine.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            ticker.increment_epoch();
        }
    });
    let mut rows = Vec::new();
    for name in &o.plugins {
        eprintln!("measuring {name} …");
        rows.push(measure(&engine, name, &o).await?);
    }
    println!(
        "| plugin | size | compile | load from cache | instantiate | memory at start | memory after {}k events of {} B | direct calls/s | gateway echo round trips/s |",
        o.events / 1000,
        o.msg_bytes
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} MiB | {:.0} ms | {:.1} ms | {:.0} µs | {:.1} MiB | {:.1} MiB | {:.0} | {} |{}",
            r.name,
            r.size as f64 / MIB,
            r.compile.as_secs_f64() * 1e3,
            r.load.as_secs_f64() * 1e3,
            r.instantiate.as_secs_f64() * 1e6,
            r.start_mib,
            r.after_mib,
            r.calls_per_s,
            r.gateway_per_s.map_or("-".into(), |g| format!("{g:.0}")),
            if r.note.is_empty() {
                String::new()
            } else {
                format!(" {}", r.note)
            },
        );
    }
    Ok(())
}
