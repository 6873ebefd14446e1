//! Probe: exposes the whole plugin API over a JSON protocol, for end-to-end tests.
//!
//! The protocol is in README.md. Strings are passed to the host unvalidated (client ids through
//! `ClientId::new_unchecked`), so tests can check what the host itself accepts and refuses.

use std::hint::black_box;

use serde_json::{Map, Value, json};
use switchboard_sdk::{
    self as sb, Bound, ClientId, ClientInfo, Context, HttpRequest, InfoFields, LogLevel, Message,
    Plugin, Rejection, Session, TimerId, export,
};

/// The group that gets `close` and `timer` event notices.
const OBSERVERS: &str = "observers";

/// The probe's state: the worker id it was started with, the memory `alloc` hoards, and how
/// many `unhandled` requests this instance saw (in memory: it survives only if no trap did).
#[derive(Default)]
struct Probe {
    worker: Option<u32>,
    hoard: Vec<Vec<u8>>,
    unhandled: u64,
}

/// Why a request could not be answered with `ok`.
enum Failure {
    /// The request itself is malformed (kind `bad-request`).
    BadRequest(String),
    /// The host API returned an error.
    Api(sb::Error),
    /// The key-value store returned an error.
    Kv(sb::kv::KvError),
    /// An outbound HTTP request failed (kind `http`), or WASI refused something (`wasi`).
    Other(&'static str, String),
    /// An API error the handler lets escape unanswered (the `unhandled` op): the SDK's error
    /// policy logs it.
    Escape(sb::Error),
}

impl From<sb::kv::KvError> for Failure {
    fn from(e: sb::kv::KvError) -> Failure {
        Failure::Kv(e)
    }
}

impl From<sb::Error> for Failure {
    fn from(e: sb::Error) -> Failure {
        Failure::Api(e)
    }
}

type Outcome = Result<Value, Failure>;

fn bad(detail: impl Into<String>) -> Failure {
    Failure::BadRequest(detail.into())
}

/// Reads request arguments.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn str(&self, name: &str) -> Result<&str, Failure> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(bad(format!("`{name}` must be a string"))),
            None => Err(bad(format!("`{name}` is missing"))),
        }
    }

    fn client(&self, name: &str) -> Result<ClientId, Failure> {
        self.str(name).map(ClientId::new_unchecked)
    }

    fn opt_client(&self, name: &str) -> Result<Option<ClientId>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.client(name).map(Some),
        }
    }

    fn bool_or(&self, name: &str, default: Option<bool>) -> Result<bool, Failure> {
        match (self.get(name), default) {
            (Some(Value::Bool(b)), _) => Ok(*b),
            (Some(_), _) => Err(bad(format!("`{name}` must be a boolean"))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(bad(format!("`{name}` is missing"))),
        }
    }

    fn u64(&self, name: &str) -> Result<u64, Failure> {
        match self.get(name) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| bad(format!("`{name}` must be a non-negative integer"))),
            None => Err(bad(format!("`{name}` is missing"))),
        }
    }

    fn u32(&self, name: &str) -> Result<u32, Failure> {
        u32::try_from(self.u64(name)?).map_err(|_| bad(format!("`{name}` must fit in a u32")))
    }

    fn clients(&self, name: &str) -> Result<Vec<ClientId>, Failure> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(ClientId::new_unchecked(s.as_str())),
                    _ => Err(bad(format!("`{name}` must be an array of strings"))),
                })
                .collect(),
            Some(_) => Err(bad(format!("`{name}` must be an array of strings"))),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, Failure> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad(format!("`{name}` must be an array of strings"))),
                })
                .collect(),
            Some(_) => Err(bad(format!("`{name}` must be an array of strings"))),
        }
    }

    fn opt_str(&self, name: &str) -> Result<Option<&str>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.str(name).map(Some),
        }
    }

    fn message(&self, name: &str) -> Result<Message, Failure> {
        message_from_json(
            self.get(name)
                .ok_or_else(|| bad(format!("`{name}` is missing")))?,
        )
    }

    fn session(&self, name: &str) -> Result<Session, Failure> {
        let Some(Value::Object(map)) = self.get(name) else {
            return Err(bad(format!("`{name}` must be an object of strings")));
        };
        map.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(bad(format!("`{name}` values must be strings"))),
            })
            .collect()
    }

    fn fields(&self, name: &str) -> Result<InfoFields, Failure> {
        match self.get(name) {
            None => Ok(InfoFields::all()),
            Some(Value::String(s)) if s == "all" => Ok(InfoFields::all()),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .map(InfoFields::from_bits_truncate)
                .ok_or_else(|| bad(format!("`{name}` as a number must be 0..=255"))),
            Some(Value::Array(items)) => {
                let mut fields = InfoFields::empty();
                for item in items {
                    fields |= match item.as_str() {
                        Some("remote_ip" | "remote-ip") => InfoFields::REMOTE_IP,
                        Some("remote_port" | "remote-port") => InfoFields::REMOTE_PORT,
                        Some("uid") => InfoFields::UID,
                        Some("session") => InfoFields::SESSION,
                        Some("groups") => InfoFields::GROUPS,
                        Some("system") => InfoFields::SYSTEM,
                        _ => return Err(bad(format!("unknown field {item} in `{name}`"))),
                    };
                }
                Ok(fields)
            }
            Some(_) => Err(bad(format!(
                "`{name}` must be \"all\", an array of field names or a number"
            ))),
        }
    }

    fn level(&self, name: &str) -> Result<LogLevel, Failure> {
        match self.str(name)? {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            other => Err(bad(format!("unknown level {other:?}"))),
        }
    }
}

fn message_from_json(v: &Value) -> Result<Message, Failure> {
    match v {
        Value::String(s) => Ok(Message::Text(s.clone())),
        Value::Object(m) => match (m.get("text"), m.get("binary")) {
            (Some(Value::String(s)), None) => Ok(Message::Text(s.clone())),
            (None, Some(Value::Array(bytes))) => bytes
                .iter()
                .map(|b| {
                    b.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .ok_or_else(|| bad("`binary` must be an array of bytes (0..=255)"))
                })
                .collect::<Result<Vec<u8>, Failure>>()
                .map(Message::Binary),
            _ => Err(bad(
                "a message is {\"text\": string} or {\"binary\": [bytes]}",
            )),
        },
        _ => Err(bad(
            "a message is {\"text\": string} or {\"binary\": [bytes]}",
        )),
    }
}

fn session_json(session: &Session) -> Value {
    Value::Object(
        session
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A page of sessions as `[[client, {session}], …]`.
fn sessions_json(page: Vec<(ClientId, Session)>) -> Value {
    Value::Array(
        page.into_iter()
            .map(|(id, session)| json!([id.as_str(), session_json(&session)]))
            .collect(),
    )
}

fn ids_json(ids: Vec<ClientId>) -> Value {
    Value::Array(
        ids.into_iter()
            .map(|id| Value::String(id.into_string()))
            .collect(),
    )
}

fn info_json(info: ClientInfo) -> Value {
    let mut m = Map::new();
    m.insert("client".into(), Value::String(info.client.into_string()));
    if let Some(ip) = info.remote_ip {
        m.insert("remote_ip".into(), Value::String(ip));
    }
    if let Some(port) = info.remote_port {
        m.insert("remote_port".into(), json!(port));
    }
    if let Some(uid) = info.uid {
        m.insert("uid".into(), Value::String(uid));
    }
    if let Some(session) = &info.session {
        m.insert("session".into(), session_json(session));
    }
    if let Some(groups) = info.groups {
        m.insert("groups".into(), json!(groups));
    }
    if let Some(s) = info.system {
        m.insert(
            "system".into(),
            json!({
                "protocol": s.protocol.as_str(),
                "connected_at_ms": s.connected_at_ms,
                "last_active_ms": s.last_active_ms,
                "bytes_in": s.bytes_in,
                "bytes_out": s.bytes_out,
                "gateway_id": s.gateway_id,
            }),
        );
    }
    Value::Object(m)
}

fn notify_observers(event: Value) {
    if let Err(e) = sb::send_to_group(OBSERVERS, event.to_string(), &[]) {
        sb::log(LogLevel::Warn, &format!("probe: notifying observers: {e}"));
    }
}

impl Probe {
    /// Runs one request; `Ok` is the `ok` value of the reply.
    fn run(&mut self, ctx: &Context, op: &str, a: &Args<'_>) -> Outcome {
        Ok(match op {
            "send-to-client" => {
                sb::send_to_client(&a.client("client")?, a.message("message")?)?;
                Value::Null
            }
            "send-to-uid" => {
                sb::send_to_uid(a.str("uid")?, a.message("message")?, &a.clients("without")?)?;
                Value::Null
            }
            "send-to-group" => {
                sb::send_to_group(
                    a.str("group")?,
                    a.message("message")?,
                    &a.clients("without")?,
                )?;
                Value::Null
            }
            "send-to-all" => {
                sb::send_to_all(a.message("message")?, &a.clients("without")?)?;
                Value::Null
            }
            "send-to-uids" => {
                sb::send_to_uids(
                    &a.strings("uids")?,
                    a.message("message")?,
                    &a.clients("without")?,
                )?;
                Value::Null
            }
            "send-to-groups" => {
                sb::send_to_groups(
                    &a.strings("groups")?,
                    a.message("message")?,
                    &a.clients("without")?,
                )?;
                Value::Null
            }
            "send-to-clients" => {
                sb::send_to_clients(&a.clients("clients")?, a.message("message")?)?;
                Value::Null
            }
            "is-online" => json!(sb::is_online(&a.client("client")?)?),
            "is-uid-online" => json!(sb::is_uid_online(a.str("uid")?)?),
            "get-client-count" => json!(sb::client_count()?),
            "get-client-count-by-group" => json!(sb::client_count_by_group(a.str("group")?)?),
            "get-uid-count-by-group" => json!(sb::uid_count_by_group(a.str("group")?)?),
            "get-uid-count" => {
                let percent = match a.get("unique_percent") {
                    None => None,
                    Some(v) => Some(
                        v.as_f64()
                            .ok_or_else(|| bad("`unique_percent` must be a number or null"))?
                            as f32,
                    ),
                };
                json!(sb::uid_count(percent)?)
            }
            "get-client-list" => ids_json(sb::client_list(
                a.opt_client("after")?.as_ref(),
                a.u32("limit")?,
            )?),
            "get-client-list-by-group" => ids_json(sb::client_list_by_group(
                a.str("group")?,
                a.opt_client("after")?.as_ref(),
                a.u32("limit")?,
            )?),
            "get-client-list-by-uid" => ids_json(sb::client_list_by_uid(
                a.str("uid")?,
                a.opt_client("after")?.as_ref(),
                a.u32("limit")?,
            )?),
            "get-uid-list" => json!(sb::uid_list(a.bool_or("unique", None)?)?),
            "get-uid-list-by-group" => json!(sb::uid_list_by_group(
                a.str("group")?,
                a.bool_or("unique", None)?
            )?),
            "get-group-list" => json!(sb::group_list(a.bool_or("unique", None)?)?),
            "get-uid-list-paged" => {
                json!(sb::uid_list_paged(a.opt_str("after")?, a.u32("limit")?)?)
            }
            "get-uid-list-by-group-paged" => json!(sb::uid_list_by_group_paged(
                a.str("group")?,
                a.opt_str("after")?,
                a.u32("limit")?
            )?),
            "get-group-list-paged" => {
                json!(sb::group_list_paged(a.opt_str("after")?, a.u32("limit")?)?)
            }
            "get-client-sessions" => sessions_json(sb::client_sessions(
                a.opt_client("after")?.as_ref(),
                a.u32("limit")?,
            )?),
            "get-client-sessions-by-group" => sessions_json(sb::client_sessions_by_group(
                a.str("group")?,
                a.opt_client("after")?.as_ref(),
                a.u32("limit")?,
            )?),
            "get-client-count-by-groups" => {
                json!(sb::client_count_by_groups(&a.strings("groups")?)?)
            }
            "get-client-ids-by-uids" => {
                let map = sb::client_ids_by_uids(&a.strings("uids")?)?;
                Value::Object(map.into_iter().map(|(u, ids)| (u, ids_json(ids))).collect())
            }
            "close-client-with" => {
                sb::close_client_with(&a.client("client")?, a.message("message")?)?;
                Value::Null
            }
            "get-client-info" => {
                match sb::client_info(&a.client("client")?, a.fields("fields")?)? {
                    Some(info) => info_json(info),
                    None => Value::Null,
                }
            }
            "close-client" => {
                sb::close_client(&a.client("client")?, a.bool_or("force", Some(false))?)?;
                Value::Null
            }
            "bind-uid" => {
                sb::bind_uid(&a.client("client")?, a.str("uid")?)?;
                Value::Null
            }
            "unbind-uid" => {
                sb::unbind_uid(&a.client("client")?)?;
                Value::Null
            }
            "join-group" => {
                sb::join_group(&a.client("client")?, a.str("group")?)?;
                Value::Null
            }
            "leave-group" => {
                sb::leave_group(&a.client("client")?, a.str("group")?)?;
                Value::Null
            }
            "ungroup" => {
                sb::ungroup(a.str("group")?)?;
                Value::Null
            }
            "set-session" => {
                sb::set_session(&a.client("client")?, a.session("session")?)?;
                Value::Null
            }
            "update-session" => {
                sb::update_session(&a.client("client")?, a.session("session")?)?;
                Value::Null
            }
            "delete-session" => {
                sb::delete_session(&a.client("client")?)?;
                Value::Null
            }
            "get-session" => match sb::session(&a.client("client")?)? {
                Some(session) => session_json(&session),
                None => Value::Null,
            },
            "set-timer" => {
                let id = sb::set_timer_ms(a.u64("after_ms")?, a.bool_or("repeat", Some(false))?)?;
                json!(id.0)
            }
            "clear-timer" => {
                sb::clear_timer(TimerId(a.u64("timer")?));
                Value::Null
            }
            "log" => {
                sb::log(a.level("level")?, a.str("message")?);
                Value::Null
            }
            "print" => {
                // Plain WASI output: the host logs stdout at info and stderr at warn.
                let text = a.str("message")?;
                println!("{text}");
                eprintln!("{text} (stderr)");
                Value::Null
            }
            "whoami" => json!({
                "client": ctx.client().as_str(),
                "remote_addr": ctx.remote_addr(),
                "gateway_id": ctx.gateway_id(),
                "uid": ctx.uid(),
                "session": session_json(ctx.session()),
            }),
            "echo" => {
                ctx.reply(a.message("message")?)?;
                Value::Null
            }
            "worker" => json!(self.worker),
            "unhandled" => {
                self.unhandled += 1;
                let client = a.client("client")?;
                sb::send_to_client(&client, "x").map_err(Failure::Escape)?;
                Value::Null
            }
            "counter" => json!(self.unhandled),
            "var" => json!(sb::variables::get(a.str("name")?)),
            "kv-get" => json!(sb::kv::get_string(a.str("key")?)?),
            "kv-set" => {
                let (key, value) = (a.str("key")?, a.str("value")?);
                match a.get("ttl_ms") {
                    Some(_) => sb::kv::set_with_ttl(
                        key,
                        value,
                        std::time::Duration::from_millis(a.u64("ttl_ms")?),
                    )?,
                    None => sb::kv::set(key, value)?,
                }
                Value::Null
            }
            "kv-set-bytes" => {
                // A value of `len` bytes, to try the size limit.
                let len = usize::try_from(a.u64("len")?).map_err(|_| bad("`len` too big"))?;
                sb::kv::set(a.str("key")?, vec![b'x'; len])?;
                Value::Null
            }
            "kv-delete" => {
                sb::kv::delete(a.str("key")?)?;
                Value::Null
            }
            "kv-incr" => json!(sb::kv::increment(
                a.str("key")?,
                a.get("delta").and_then(Value::as_i64).unwrap_or(1)
            )?),
            "kv-keys" => {
                let keys: Result<Vec<String>, _> = sb::kv::keys(a.str("prefix")?).collect();
                json!(keys?)
            }
            "http" => {
                let mut request = sb::http::Request::new(
                    a.get("method").and_then(Value::as_str).unwrap_or("GET"),
                    a.str("url")?,
                );
                if let Some(body) = a.get("body").and_then(Value::as_str) {
                    request = request.body(body);
                }
                match request.send() {
                    Ok(response) => json!({
                        "status": response.status(),
                        "body": response.text(),
                    }),
                    Err(e) => {
                        let kind = if e.is_denied() {
                            "denied"
                        } else if e.is_timeout() {
                            "timeout"
                        } else {
                            "http"
                        };
                        return Err(Failure::Other(kind, e.to_string()));
                    }
                }
            }
            "read-file" => match std::fs::read(a.str("path")?) {
                Ok(bytes) => json!(bytes.len()),
                Err(e) => return Err(Failure::Other("wasi", e.to_string())),
            },
            "connect" => match std::net::TcpStream::connect(a.str("addr")?) {
                Ok(_) => json!("connected"),
                Err(e) => return Err(Failure::Other("wasi", e.to_string())),
            },
            "env" => json!(std::env::vars().collect::<Vec<_>>()),
            "repeat" => {
                // Runs `request` (an object with its own `op`) `n` times and times it, to
                // measure host calls from inside a plugin; the first failure stops it.
                let n = a.u64("n")?;
                let Some(Value::Object(request)) = a.get("request") else {
                    return Err(bad("`request` must be an object"));
                };
                let Some(Value::String(op)) = request.get("op") else {
                    return Err(bad("`request.op` must be a string"));
                };
                let started = std::time::Instant::now();
                for _ in 0..n {
                    self.run(ctx, op, &Args(request))?;
                }
                json!({ "n": n, "elapsed_us": started.elapsed().as_micros() as u64 })
            }
            "busy" => {
                // Computes for `ms` of wall time, then answers: an event that takes a while.
                let until =
                    std::time::Instant::now() + std::time::Duration::from_millis(a.u64("ms")?);
                let mut i = 0u64;
                while std::time::Instant::now() < until {
                    i = black_box(i.wrapping_add(1));
                }
                json!(i > 0)
            }
            "spin" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "trap" => panic!("probe: trap requested"),
            "alloc" => {
                const MIB: usize = 1 << 20;
                loop {
                    // Growing linear memory is what the host limits; the pages need no writing.
                    let mut chunk: Vec<u8> = Vec::new();
                    if chunk.try_reserve_exact(MIB).is_err() || self.hoard.try_reserve(1).is_err() {
                        break json!({ "allocated_mib": self.hoard.len() });
                    }
                    self.hoard.push(black_box(chunk));
                }
            }
            other => return Err(bad(format!("unknown op {other:?}"))),
        })
    }

    /// Answers one JSON request; `Err` is an API error left for the SDK's policy (no answer).
    fn request(&mut self, ctx: &Context, text: &str) -> sb::Result<Value> {
        let request: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Ok(failure_json(Value::Null, bad(format!("invalid JSON: {e}")))),
        };
        let Value::Object(map) = request else {
            return Ok(failure_json(Value::Null, bad("a request is a JSON object")));
        };
        let id = map.get("id").cloned().unwrap_or(Value::Null);
        let Some(Value::String(op)) = map.get("op") else {
            return Ok(failure_json(id, bad("`op` must be a string")));
        };
        match self.run(ctx, op, &Args(&map)) {
            Ok(ok) => Ok(json!({ "id": id, "ok": ok })),
            Err(Failure::Escape(e)) => Err(e),
            Err(f) => Ok(failure_json(id, f)),
        }
    }
}

fn failure_json(id: Value, failure: Failure) -> Value {
    let (kind, detail) = match failure {
        Failure::BadRequest(d) => ("bad-request", d),
        // `Escape` never gets here (`request` lets it escape); as an API error if it did.
        Failure::Api(e) | Failure::Escape(e) => (e.kind(), e.detail().to_owned()),
        Failure::Kv(e) => (e.kind(), e.detail().to_owned()),
        Failure::Other(kind, d) => (kind, d),
    };
    json!({ "id": id, "err": { "kind": kind, "detail": detail } })
}

impl Plugin for Probe {
    fn on_worker_start(&mut self, worker_id: u32) {
        self.worker = Some(worker_id);
        sb::log(
            LogLevel::Info,
            &format!("probe: worker {worker_id} started"),
        );
    }

    fn on_worker_stop(&mut self, worker_id: u32) {
        sb::log(
            LogLevel::Info,
            &format!("probe: worker {worker_id} stopping"),
        );
    }

    fn on_websocket_connect(
        &mut self,
        ctx: &Context,
        request: HttpRequest,
    ) -> Result<(), sb::Refusal> {
        // `?bind=U&join=G&greet=T&nick=N` (N stored as JSON): act on the client before the verdict, as GatewayWorker
        // apps do in onWebSocketConnect; a rejection undoes all of it.
        let client = ctx.client();
        let acted = [
            request.query_param("bind").map(|uid| client.bind_uid(uid)),
            request.query_param("join").map(|group| client.join(group)),
            request.query_param("greet").map(|text| ctx.reply(text)),
            request
                .query_param("nick")
                .map(|nick| client.update_session_json("nick", nick)),
        ];
        for result in acted.into_iter().flatten() {
            if let Err(e) = result {
                sb::log(LogLevel::Warn, &format!("probe: on-websocket-connect: {e}"));
            }
        }
        if request.query_param("fail").is_some() {
            // An API error left to the SDK's policy: logged, the handshake refused with 500.
            sb::send_to_client(&ClientId::new_unchecked("nope"), "x")?;
        }
        match request.query_param("reject") {
            Some(status) => {
                Err(Rejection::new(status.parse().unwrap_or(403), "rejected by probe").into())
            }
            None => Ok(()),
        }
    }

    fn on_message(&mut self, ctx: &Context, message: Message) -> sb::Result<()> {
        let reply = match message {
            Message::Text(text) if text.trim_start().starts_with('{') => {
                Message::Text(self.request(ctx, &text)?.to_string())
            }
            other => other,
        };
        // A reply that fails is the SDK's to log (the error policy).
        ctx.reply(reply)
    }

    fn on_close(&mut self, ctx: &Context, bound: Bound) {
        notify_observers(json!({
            "event": "close",
            "client": ctx.client().as_str(),
            "uid": bound.uid,
            "groups": bound.groups,
            "session": session_json(ctx.session()),
        }));
    }

    fn on_timer(&mut self, id: TimerId) {
        notify_observers(json!({ "event": "timer", "timer": id.0 }));
    }
}

export!(Probe);
