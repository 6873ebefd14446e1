// Probe in JavaScript: the probe's JSON protocol (plugins/probe/README.md) over the JS SDK.
//
// Strings are passed to the host unvalidated, so the tests see what the host accepts and
// refuses through this SDK. Replies are `{"id", "ok"}` or `{"id", "err": {"kind", "detail"}}`.
import * as sb from "switchboard-sdk";

/** The group that gets `close` and `timer` event notices. */
const OBSERVERS = "observers";

/** The request itself is malformed (kind `bad-request`), or the command is left out here. */
class Failure extends Error {
  constructor(kind, detail) {
    super(detail);
    this.kind = kind;
    this.detail = detail;
  }
}

/** The `ok` value of a command that returns nothing. */
const nothing = () => null;

const bad = (detail) => new Failure("bad-request", detail);
const unsupported = (op) => new Failure("unsupported", `${op} is not implemented by probe-js`);

/** Reads request arguments; `null` counts as absent. */
class Args {
  constructor(map) {
    this.map = map;
  }
  get(name) {
    const v = this.map[name];
    return v === null || v === undefined ? undefined : v;
  }
  str(name) {
    const v = this.get(name);
    if (v === undefined) throw bad(`\`${name}\` is missing`);
    if (typeof v !== "string") throw bad(`\`${name}\` must be a string`);
    return v;
  }
  optStr(name) {
    return this.get(name) === undefined ? null : this.str(name);
  }
  bool(name, fallback) {
    const v = this.get(name);
    if (v === undefined) {
      if (fallback === undefined) throw bad(`\`${name}\` is missing`);
      return fallback;
    }
    if (typeof v !== "boolean") throw bad(`\`${name}\` must be a boolean`);
    return v;
  }
  uint(name, max) {
    const v = this.get(name);
    if (v === undefined) throw bad(`\`${name}\` is missing`);
    if (!Number.isInteger(v) || v < 0 || v > max) throw bad(`\`${name}\` must be an integer 0..=${max}`);
    return v;
  }
  strings(name) {
    const v = this.get(name);
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
      throw bad(`\`${name}\` must be an array of strings`);
    }
    return v;
  }
  message(name) {
    const v = this.get(name);
    if (v === undefined) throw bad(`\`${name}\` is missing`);
    if (typeof v === "string") return v;
    if (typeof v === "object" && !Array.isArray(v)) {
      if (typeof v.text === "string" && v.binary === undefined) return v.text;
      if (Array.isArray(v.binary) && v.text === undefined) {
        if (v.binary.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) {
          throw bad("`binary` must be an array of bytes (0..=255)");
        }
        return new Uint8Array(v.binary);
      }
    }
    throw bad('a message is {"text": string} or {"binary": [bytes]}');
  }
  session(name) {
    const v = this.get(name);
    if (typeof v !== "object" || v === undefined || Array.isArray(v)) {
      throw bad(`\`${name}\` must be an object of strings`);
    }
    if (Object.values(v).some((s) => typeof s !== "string")) throw bad(`\`${name}\` values must be strings`);
    return new Map(Object.entries(v));
  }
  fields(name) {
    const v = this.get(name);
    if (v === undefined || v === "all") return sb.INFO_FIELDS;
    const names = { remote_ip: "remoteIp", "remote-ip": "remoteIp", remote_port: "remotePort",
      "remote-port": "remotePort", uid: "uid", session: "session", groups: "groups", system: "system" };
    if (typeof v === "number") {
      if (!Number.isInteger(v) || v < 0 || v > 255) throw bad(`\`${name}\` as a number must be 0..=255`);
      return sb.INFO_FIELDS.filter((_, bit) => v & (1 << bit));
    }
    if (Array.isArray(v)) {
      return v.map((f) => {
        if (typeof f !== "string" || !Object.prototype.hasOwnProperty.call(names, f)) throw bad(`unknown field ${JSON.stringify(f)} in \`${name}\``);
        return names[f];
      });
    }
    throw bad(`\`${name}\` must be "all", an array of field names or a number`);
  }
  level(name) {
    const level = this.str(name);
    if (!["trace", "debug", "info", "warn", "error"].includes(level)) throw bad(`unknown level "${level}"`);
    return level;
  }
}

function messageJson(m) {
  return typeof m === "string" ? m : { binary: [...m] };
}

function infoJson(info) {
  const out = { client: info.client };
  if (info.remoteIp !== null) out.remote_ip = info.remoteIp;
  if (info.remotePort !== null) out.remote_port = info.remotePort;
  if (info.uid !== null) out.uid = info.uid;
  if (info.session !== null) out.session = info.session;
  if (info.groups !== null) out.groups = info.groups;
  if (info.system !== null) {
    const s = info.system;
    out.system = {
      protocol: s.protocol,
      connected_at_ms: s.connectedAtMs,
      last_active_ms: s.lastActiveMs,
      bytes_in: s.bytesIn,
      bytes_out: s.bytesOut,
      gateway_id: s.gatewayId,
    };
  }
  return out;
}

function notifyObservers(event) {
  try {
    sb.sendToGroup(OBSERVERS, JSON.stringify(event));
  } catch (e) {
    sb.warn(`probe: notifying observers: ${e.message}`);
  }
}

class Probe {
  constructor() {
    this.worker = null;
    this.unhandled = 0;
  }

  /** Runs one request; returns the `ok` value, throws a `Failure` or a `SwitchboardError`. */
  run(ctx, op, a) {
    switch (op) {
      case "send-to-client":
        return nothing(sb.sendToClient(a.str("client"), a.message("message")));
      case "send-to-uid":
        return nothing(sb.sendToUid(a.str("uid"), a.message("message"), a.strings("without")));
      case "send-to-group":
        return nothing(sb.sendToGroup(a.str("group"), a.message("message"), a.strings("without")));
      case "send-to-all":
        return nothing(sb.sendToAll(a.message("message"), a.strings("without")));
      case "send-to-uids":
        return nothing(sb.sendToUids(a.strings("uids"), a.message("message"), a.strings("without")));
      case "send-to-groups":
        return nothing(sb.sendToGroups(a.strings("groups"), a.message("message"), a.strings("without")));
      case "send-to-clients":
        return nothing(sb.sendToClients(a.strings("clients"), a.message("message")));
      case "is-online":
        return sb.isOnline(a.str("client"));
      case "is-uid-online":
        return sb.isUidOnline(a.str("uid"));
      case "get-client-count":
        return sb.getClientCount();
      case "get-client-count-by-group":
        return sb.getClientCountByGroup(a.str("group"));
      case "get-uid-count-by-group":
        return sb.getUidCountByGroup(a.str("group"));
      case "get-uid-count": {
        const p = a.get("unique_percent");
        if (p !== undefined && typeof p !== "number") throw bad("`unique_percent` must be a number or null");
        return sb.getUidCount(p === undefined ? null : p);
      }
      case "get-client-list":
        return sb.getClientList(a.optStr("after"), a.uint("limit", 4294967295));
      case "get-client-list-by-group":
        return sb.getClientListByGroup(a.str("group"), a.optStr("after"), a.uint("limit", 4294967295));
      case "get-client-list-by-uid":
        return sb.getClientListByUid(a.str("uid"), a.optStr("after"), a.uint("limit", 4294967295));
      case "get-uid-list":
        return sb.getUidList(a.bool("unique"));
      case "get-uid-list-by-group":
        return sb.getUidListByGroup(a.str("group"), a.bool("unique"));
      case "get-group-list":
        return sb.getGroupList(a.bool("unique"));
      case "get-uid-list-paged":
        return sb.getUidListPaged(a.optStr("after"), a.uint("limit", 4294967295));
      case "get-uid-list-by-group-paged":
        return sb.getUidListByGroupPaged(a.str("group"), a.optStr("after"), a.uint("limit", 4294967295));
      case "get-group-list-paged":
        return sb.getGroupListPaged(a.optStr("after"), a.uint("limit", 4294967295));
      case "get-client-sessions":
        return sb.getClientSessions(a.optStr("after"), a.uint("limit", 4294967295));
      case "get-client-sessions-by-group":
        return sb.getClientSessionsByGroup(a.str("group"), a.optStr("after"), a.uint("limit", 4294967295));
      case "get-client-count-by-groups":
        return sb.getClientCountByGroups(a.strings("groups"));
      case "get-client-ids-by-uids":
        return sb.getClientIdsByUids(a.strings("uids"));
      case "get-client-info": {
        const info = sb.getClientInfo(a.str("client"), a.fields("fields"));
        return info === null ? null : infoJson(info);
      }
      case "close-client":
        return nothing(sb.closeClient(a.str("client"), a.bool("force", false)));
      case "close-client-with":
        return nothing(sb.closeClientWith(a.str("client"), a.message("message")));
      case "bind-uid":
        return nothing(sb.bindUid(a.str("client"), a.str("uid")));
      case "unbind-uid":
        return nothing(sb.unbindUid(a.str("client")));
      case "join-group":
        return nothing(sb.joinGroup(a.str("client"), a.str("group")));
      case "leave-group":
        return nothing(sb.leaveGroup(a.str("client"), a.str("group")));
      case "ungroup":
        return nothing(sb.ungroup(a.str("group")));
      case "set-session":
        // An iterator of pairs on purpose: the SDK must apply it (it once wiped the session).
        return nothing(sb.setSession(a.str("client"), a.session("session").entries()));
      case "update-session":
        return nothing(sb.updateSession(a.str("client"), a.session("session")));
      case "delete-session":
        return nothing(sb.deleteSession(a.str("client")));
      case "get-session":
        return sb.getSession(a.str("client"));
      case "set-timer":
        return sb.setTimer(a.uint("after_ms", Number.MAX_SAFE_INTEGER), a.bool("repeat", false));
      case "clear-timer":
        return nothing(sb.clearTimer(a.uint("timer", Number.MAX_SAFE_INTEGER)));
      case "log":
        return nothing(sb.log(a.level("level"), a.str("message")));
      case "whoami":
        return {
          client: ctx.client,
          remote_addr: ctx.remoteAddr,
          gateway_id: ctx.gatewayId,
          uid: ctx.uid,
          session: ctx.session,
        };
      case "echo":
        return nothing(ctx.reply(a.message("message")));
      case "worker":
        return this.worker;
      case "unhandled":
        this.unhandled += 1;
        // No try: the SDK's error policy logs what escapes and keeps the instance.
        sb.sendToClient(a.str("client"), "x");
        return null;
      case "counter":
        return this.unhandled;
      case "var":
        return sb.variables.get(a.str("name"));
      case "kv-get":
        return sb.kv.getString(a.str("key"));
      case "kv-set": {
        const ttl = a.get("ttl_ms");
        return nothing(sb.kv.set(a.str("key"), a.str("value"), ttl === undefined ? undefined : { ttlMs: ttl }));
      }
      case "kv-set-bytes":
        return nothing(sb.kv.set(a.str("key"), new Uint8Array(a.uint("len", 1 << 30)).fill(120)));
      case "kv-delete":
        return nothing(sb.kv.delete(a.str("key")));
      case "kv-incr":
        return sb.kv.increment(a.str("key"), a.get("delta") ?? 1);
      case "kv-keys":
        return [...sb.kv.keys(a.str("prefix"))];
      case "repeat": {
        const n = a.uint("n", Number.MAX_SAFE_INTEGER);
        const request = a.get("request");
        if (typeof request !== "object" || Array.isArray(request)) throw bad("`request` must be an object");
        if (typeof request.op !== "string") throw bad("`request.op` must be a string");
        const started = Date.now();
        for (let i = 0; i < n; i++) this.run(ctx, request.op, new Args(request));
        return { n, elapsed_us: (Date.now() - started) * 1000 };
      }
      case "busy": {
        const until = Date.now() + a.uint("ms", Number.MAX_SAFE_INTEGER);
        let i = 0;
        while (Date.now() < until) i++;
        return i > 0;
      }
      case "spin":
        for (;;);
      case "trap":
        throw new Error("probe: trap requested");
      case "http":
      case "read-file":
      case "connect":
      case "env":
      case "alloc":
      case "print":
        throw unsupported(op);
      default:
        throw bad(`unknown op "${op}"`);
    }
  }

  /** The reply to one JSON request; an API error of `unhandled` escapes instead. */
  request(ctx, text) {
    let map;
    try {
      map = JSON.parse(text);
    } catch (e) {
      return { id: null, err: { kind: "bad-request", detail: `invalid JSON: ${e.message}` } };
    }
    if (typeof map !== "object" || map === null || Array.isArray(map)) {
      return { id: null, err: { kind: "bad-request", detail: "a request is a JSON object" } };
    }
    const id = map.id ?? null;
    if (typeof map.op !== "string") return { id, err: { kind: "bad-request", detail: "`op` must be a string" } };
    try {
      return { id, ok: this.run(ctx, map.op, new Args(map)) ?? null };
    } catch (e) {
      if (map.op === "unhandled" && e instanceof sb.SwitchboardError) throw e;
      if (e instanceof Failure || e instanceof sb.SwitchboardError) {
        return { id, err: { kind: e.kind, detail: e.detail ?? "" } };
      }
      if (e instanceof TypeError && map.op !== "trap") {
        return { id, err: { kind: "bad-request", detail: e.message } };
      }
      throw e;
    }
  }

  onWorkerStart(workerId) {
    this.worker = workerId;
    sb.info(`probe: worker ${workerId} started`);
  }

  onWorkerStop(workerId) {
    sb.info(`probe: worker ${workerId} stopping`);
  }

  onWebsocketConnect(ctx, request) {
    // `?bind=U&join=G&greet=T&nick=N`: act on the client before the verdict; a rejection undoes it.
    const acts = [
      ["bind", (uid) => sb.bindUid(ctx.client, uid)],
      ["join", (group) => sb.joinGroup(ctx.client, group)],
      ["greet", (text) => ctx.reply(text)],
      ["nick", (nick) => sb.setSessionJson(ctx.client, "nick", nick)],
    ];
    for (const [param, act] of acts) {
      const value = request.queryParam(param);
      if (value === null) continue;
      try {
        act(value);
      } catch (e) {
        sb.warn(`probe: on-websocket-connect: ${e.message}`);
      }
    }
    // An API error left to the SDK's policy: logged, the handshake refused with 500.
    if (request.queryParam("fail") !== null) sb.sendToClient("nope", "x");
    const status = request.queryParam("reject");
    if (status === null) return undefined;
    const n = /^\d+$/.test(status) && Number(status) <= 65535 ? Number(status) : 403;
    return new sb.Rejection(n, "rejected by probe");
  }

  onMessage(ctx, message) {
    if (typeof message === "string" && message.trimStart().startsWith("{")) {
      ctx.reply(JSON.stringify(this.request(ctx, message)));
    } else {
      ctx.reply(message);
    }
  }

  onClose(ctx, bound) {
    notifyObservers({ event: "close", client: ctx.client, uid: bound.uid, groups: bound.groups, session: ctx.session });
  }

  onTimer(id) {
    notifyObservers({ event: "timer", timer: id });
  }
}

export default sb.definePlugin(Probe);
