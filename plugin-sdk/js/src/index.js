// Write Switchboard plugins in JavaScript.
//
// A plugin is a WebAssembly component of the WIT world `switchboard:plugin/plugin`: the host
// calls its event handlers and the plugin calls the host API. This module wraps the raw
// bindings in JS idiom: camelCase names, calls that return their results directly (and throw
// a `SwitchboardError` on an API error), messages as `string` (text) or `Uint8Array` (binary),
// sessions as plain objects, and iterators over the paged client lists.
//
// The build (`switchboard-build`) bundles this file with the plugin's `index.js`, whose default
// export is the handler object (see `definePlugin`), for one of two JS engines:
// StarlingMonkey (componentize-js) or QuickJS (componentize-qjs). The differences between
// them (u64 as BigInt or Number, `none` as undefined or null, console or none) stop here.

// The raw bindings of the `api` interface as one object; `switchboard-build` resolves this
// module for the engine (QuickJS: the interface's default export, StarlingMonkey: named imports).
import api from "@switchboard-internal/raw-api";
import rawVariables from "@switchboard-internal/raw-variables";
import rawKv from "@switchboard-internal/raw-kv";

/* global __SWITCHBOARD_ENGINE__ */
/** The engine this bundle was built for: "quickjs" or "starlingmonkey". */
export const ENGINE = typeof __SWITCHBOARD_ENGINE__ === "string" ? __SWITCHBOARD_ENGINE__ : "starlingmonkey";

const toU64 = ENGINE === "quickjs" ? Number : BigInt;

// A WIT u32 as a JS number: QuickJS hands over a u32 above 2^31 as a negative int32.
const fromU32 = (n) => Number(n) >>> 0;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** An error the host API returned: `kind` is the WIT case, `detail` the host's text. */
export class SwitchboardError extends Error {
  constructor(kind, detail) {
    super(detail ? `${kind.replace(/-/g, " ")}: ${detail}` : kind.replace(/-/g, " "));
    this.name = "SwitchboardError";
    this.kind = kind;
    this.detail = detail;
  }
}

function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (e) {
    // StarlingMonkey throws an error whose `payload` is the WIT error; QuickJS throws the value.
    const p = e != null && e.payload !== undefined ? e.payload : e;
    if (p != null && typeof p.tag === "string") throw new SwitchboardError(p.tag, String(p.val ?? ""));
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

function toRawMessage(message) {
  if (typeof message === "string") return { tag: "text", val: message };
  if (message instanceof Uint8Array) return { tag: "binary", val: message };
  if (message instanceof ArrayBuffer) return { tag: "binary", val: new Uint8Array(message) };
  if (ArrayBuffer.isView(message)) {
    return { tag: "binary", val: new Uint8Array(message.buffer, message.byteOffset, message.byteLength) };
  }
  throw new TypeError("a message is a string (text) or a Uint8Array (binary)");
}

function fromRawMessage(raw) {
  return raw.tag === "text" ? raw.val : raw.val instanceof Uint8Array ? raw.val : new Uint8Array(raw.val);
}

// A session as WIT pairs, sorted by key, the last value of a repeated key kept. Accepts a plain
// object, a Map, or any iterable of [key, value] pairs (an array, `map.entries()`, a generator).
function toRawSession(session) {
  if (session == null) return [];
  let entries;
  if (typeof session === "string") throw new TypeError("a session is an object, a Map or [key, value] pairs, not a string");
  if (typeof session[Symbol.iterator] === "function") entries = session;
  else if (typeof session === "object") entries = Object.entries(session);
  else throw new TypeError(`a session is an object, a Map or [key, value] pairs, not ${typeof session}`);
  const merged = new Map();
  for (const pair of entries) {
    if (pair == null || typeof pair === "string" || typeof pair[Symbol.iterator] !== "function") {
      throw new TypeError("a session entry is a [key, value] pair");
    }
    const [k, v] = pair;
    merged.set(String(k), String(v));
  }
  return [...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

// A plain object without a prototype, so every key is its own property: `__proto__`,
// `constructor` or `toString` as a session key, uid or group is data like any other.
function record(pairs) {
  const out = Object.create(null);
  for (const [k, v] of pairs) out[k] = v;
  return out;
}

const fromRawSession = (raw) => record(raw);

const none = (v) => (v === undefined ? null : v);
const list = (v) => (v === undefined || v === null ? [] : [...v]);

/** Whether `id` is a well-formed client id (20 lowercase hex characters). */
export function isValidClientId(id) {
  return typeof id === "string" && /^[0-9a-f]{20}$/.test(id);
}

// ---------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------

/** Queues `message` to the client; a well-formed id of a client that is gone: nothing is sent. */
export function sendToClient(client, message) {
  call(api.sendToClient, client, toRawMessage(message));
}

/** Sends to every client bound to `uid`, except those in `without`. */
export function sendToUid(uid, message, without = []) {
  call(api.sendToUid, uid, toRawMessage(message), list(without));
}

/** Sends to every member of `group` on every gateway, except those in `without`. */
export function sendToGroup(group, message, without = []) {
  call(api.sendToGroup, group, toRawMessage(message), list(without));
}

/** Sends to every connected client that finished its handshake, except those in `without`. */
export function sendToAll(message, without = []) {
  call(api.sendToAll, toRawMessage(message), list(without));
}

/**
 * Sends to every client bound to any of `uids` (at most 1000), except those in `without`: one
 * call and one bus message per gateway; a client reached by two uids gets it once.
 */
export function sendToUids(uids, message, without = []) {
  call(api.sendToUids, list(uids), toRawMessage(message), list(without));
}

/** Sends to every member of any of `groups` (at most 1000), once each, except those in `without`. */
export function sendToGroups(groups, message, without = []) {
  call(api.sendToGroups, list(groups), toRawMessage(message), list(without));
}

/** Queues `message` to each listed client (at most 1000) once; clients that are gone are skipped. */
export function sendToClients(clients, message) {
  call(api.sendToClients, list(clients), toRawMessage(message));
}

/** Whether the client is connected now. */
export function isOnline(client) {
  return call(api.isOnline, client);
}

/** Whether at least one client is bound to `uid`. */
export function isUidOnline(uid) {
  return call(api.isUidOnline, uid);
}

/** The number of connected clients (handshake finished) in the whole cluster. */
export function getClientCount() {
  return Number(call(api.getClientCount));
}

/** The number of members of `group`. */
export function getClientCountByGroup(group) {
  return Number(call(api.getClientCountByGroup, group));
}

/** The exact number of distinct uids among the members of `group`. */
export function getUidCountByGroup(group) {
  return Number(call(api.getUidCountByGroup, group));
}

/** No argument: the exact number of distinct bound uids; a number `p`: a cheap estimate. */
export function getUidCount(uniquePercent = null) {
  return Number(call(api.getUidCount, uniquePercent ?? (ENGINE === "quickjs" ? null : undefined)));
}

// A required argument: a clear TypeError instead of a host error about `undefined`.
function required(name, value, type) {
  if (typeof value !== type) throw new TypeError(`${name} is required (a ${type})`);
  return value;
}
const limitOf = (limit) => required("limit", limit, "number");
const uniqueOf = (unique) => required("unique", unique, "boolean");

/** The page size of the paging iterators unless `pageSize` says otherwise. */
export const DEFAULT_PAGE_SIZE = 256;

const cursor = (after) => (after == null ? (ENGINE === "quickjs" ? null : undefined) : after);

/** One page of connected clients sorted by id, strictly after `after`, at most `limit` (1..=1000). */
export function getClientList(after, limit) {
  return list(call(api.getClientList, cursor(after), limitOf(limit)));
}

/** Like `getClientList`, members of `group` only. */
export function getClientListByGroup(group, after, limit) {
  return list(call(api.getClientListByGroup, group, cursor(after), limitOf(limit)));
}

/** Like `getClientList`, clients bound to `uid` only. */
export function getClientListByUid(uid, after, limit) {
  return list(call(api.getClientListByUid, uid, cursor(after), limitOf(limit)));
}

// Every item of every page `fetch(after, size)` returns, until an empty page; an item's
// cursor is `cursorOf(item)`.
function* pages(fetch, options, cursorOf = (item) => item) {
  let after = options?.after ?? null;
  const size = options?.pageSize ?? DEFAULT_PAGE_SIZE;
  for (;;) {
    const page = fetch(after, size);
    if (page.length === 0) return;
    yield* page;
    after = cursorOf(page[page.length - 1]);
  }
}

/** Every connected client, sorted by id, fetched a page at a time. */
export function clients(options) {
  return pages(getClientList, options);
}

/** Every member of `group`, sorted by id, fetched a page at a time. */
export function clientsInGroup(group, options) {
  return pages((a, n) => getClientListByGroup(group, a, n), options);
}

/** Every client bound to `uid`, sorted by id, fetched a page at a time. */
export function clientsOfUid(uid, options) {
  return pages((a, n) => getClientListByUid(uid, a, n), options);
}

/** One page of bound uids, sorted, each once, strictly after `after`, at most `limit` (1..=1000). */
export function getUidListPaged(after, limit) {
  return list(call(api.getUidListPaged, cursor(after), limitOf(limit)));
}

/** Like `getUidListPaged`, uids bound to members of `group` only. */
export function getUidListByGroupPaged(group, after, limit) {
  return list(call(api.getUidListByGroupPaged, group, cursor(after), limitOf(limit)));
}

/** One page of groups that have members, sorted, strictly after `after`, at most `limit`. */
export function getGroupListPaged(after, limit) {
  return list(call(api.getGroupListPaged, cursor(after), limitOf(limit)));
}

/** Every bound uid, sorted, fetched a page at a time. */
export function uids(options) {
  return pages(getUidListPaged, options);
}

/** Every uid bound to a member of `group`, sorted, fetched a page at a time. */
export function uidsInGroup(group, options) {
  return pages((a, n) => getUidListByGroupPaged(group, a, n), options);
}

/** Every group that has members, sorted, fetched a page at a time. */
export function groups(options) {
  return pages(getGroupListPaged, options);
}

const sessionPairs = (raw) => list(raw).map(([client, session]) => [client, fromRawSession(session)]);

/**
 * One page of `[clientId, session]` pairs of connected clients, sorted by id, strictly after
 * `after`, at most `limit` (1..=1000): GatewayWorker's `getAllClientSessions`, paged.
 */
export function getClientSessions(after, limit) {
  return sessionPairs(call(api.getClientSessions, cursor(after), limitOf(limit)));
}

/** Like `getClientSessions`, members of `group` only (GatewayWorker's `getClientSessionsByGroup`). */
export function getClientSessionsByGroup(group, after, limit) {
  return sessionPairs(call(api.getClientSessionsByGroup, group, cursor(after), limitOf(limit)));
}

// Session pages are [client, session] pairs, whose cursor is the client.
const sessionPages = (fetch, options) => pages(fetch, options, ([client]) => client);

/** Every connected client's `[clientId, session]`, sorted by id, fetched a page at a time. */
export function clientSessions(options) {
  return sessionPages(getClientSessions, options);
}

/** Every member of `group` as `[clientId, session]`, sorted by id, fetched a page at a time. */
export function clientSessionsInGroup(group, options) {
  return sessionPages((a, n) => getClientSessionsByGroup(group, a, n), options);
}

/** The member count of each of `groups` (at most 1000), as `{group: count}`; 0 for none. */
export function getClientCountByGroups(groups) {
  return record(list(call(api.getClientCountByGroups, list(groups))).map(([group, n]) => [group, Number(n)]));
}

/** The clients bound to each of `uids` (at most 1000), as `{uid: [clientId, …]}`; `[]` if offline. */
export function getClientIdsByUids(uids) {
  return record(list(call(api.getClientIdsByUids, list(uids))).map(([uid, ids]) => [uid, list(ids)]));
}

/**
 * Bound uids, sorted; `unique` (required): each once across the cluster (the expensive
 * cluster-wide query), else each gateway's list concatenated (cheaper, may repeat).
 */
export function getUidList(unique) {
  return list(call(api.getUidList, uniqueOf(unique)));
}

/** Uids bound to members of `group`, sorted; `unique` as in `getUidList`. */
export function getUidListByGroup(group, unique) {
  return list(call(api.getUidListByGroup, group, uniqueOf(unique)));
}

/** Groups that have members, sorted; `unique` as in `getUidList`. */
export function getGroupList(unique) {
  return list(call(api.getGroupList, uniqueOf(unique)));
}

// ---------------------------------------------------------------------------------------------
// Variables and the key-value store
// ---------------------------------------------------------------------------------------------

/** The app's variables (`[apps.NAME.variables]`): `variables.get(name)` is a string or null. */
export const variables = Object.freeze({
  get(name) {
    return none(rawVariables.get(String(name)));
  },
});

// UTF-8 by hand: QuickJS has no TextEncoder.
function utf8Encode(text) {
  const out = [];
  for (const ch of String(text)) {
    let c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

function utf8Decode(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const n = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    let c = n === 1 ? b : b & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) c = (c << 6) | ((bytes[i + k] ?? 0) & 63);
    out += String.fromCodePoint(n === 1 && b >= 0x80 ? 0xfffd : c);
    i += n;
  }
  return out;
}

const toBytes = (value) =>
  typeof value === "string" ? utf8Encode(value) : value instanceof Uint8Array ? value : new Uint8Array(value);

const optionU64 = (n) => (n == null ? (ENGINE === "quickjs" ? null : undefined) : toU64(n));

/**
 * The app's key-value store: shared by every instance of the app, invisible to other apps, kept
 * across restarts and hot swaps. Errors throw a `SwitchboardError` whose `kind` is the WIT case
 * (`invalid-key`, `too-large`, `not-a-number`, `invalid-argument`, `unavailable`).
 */
export const kv = Object.freeze({
  /** The value as a Uint8Array, or null. */
  get(key) {
    const value = none(call(rawKv.get, key));
    return value == null ? null : value instanceof Uint8Array ? value : new Uint8Array(value);
  },
  /** The value as text, or null. */
  getString(key) {
    const value = kv.get(key);
    return value == null ? null : utf8Decode(value);
  },
  /** Sets `key` to a string or bytes; `{ ttlMs }` makes it disappear that much later. */
  set(key, value, options) {
    call(rawKv.set, key, toBytes(value), optionU64(options?.ttlMs));
  },
  /** Removes `key`; an unset key is no error. */
  delete(key) {
    call(rawKv.delete, key);
  },
  /** Adds `delta` (default 1) atomically; a missing key counts as 0; returns the new value. */
  increment(key, delta = 1) {
    return Number(call(rawKv.increment, key, ENGINE === "quickjs" ? Number(delta) : BigInt(delta)));
  },
  /** One page of keys with `prefix`, sorted, after `after`, at most `limit` (1..=1000). */
  listKeys(prefix, after, limit) {
    return list(call(rawKv.listKeys, String(prefix ?? ""), cursor(after), limitOf(limit)));
  },
  /** Every key with `prefix`, sorted, fetched a page at a time. */
  *keys(prefix = "") {
    yield* pages((a, n) => kv.listKeys(prefix, a, n), { pageSize: 500 });
  },
});

/** The names of the fields `getClientInfo` can fill: pass it for all of them. */
export const INFO_FIELDS = Object.freeze(["remoteIp", "remotePort", "uid", "session", "groups", "system"]);

/**
 * The asked `fields` (required; `INFO_FIELDS` for all) of what the gateway knows about the
 * client; `null` if it is unknown.
 */
export function getClientInfo(client, fields) {
  if (fields == null || typeof fields[Symbol.iterator] !== "function" || typeof fields === "string") {
    throw new TypeError("fields is required: an array of field names, or INFO_FIELDS for all");
  }
  const flags = {};
  for (const f of INFO_FIELDS) flags[f] = false;
  for (const f of fields) {
    if (!INFO_FIELDS.includes(f)) throw new TypeError(`unknown client info field ${f}`);
    flags[f] = true;
  }
  const raw = none(call(api.getClientInfo, client, flags));
  if (raw === null) return null;
  const s = none(raw.system);
  return {
    client: raw.client,
    remoteIp: none(raw.remoteIp),
    remotePort: none(raw.remotePort),
    uid: none(raw.uid),
    session: raw.session == null ? null : fromRawSession(raw.session),
    groups: raw.groups == null ? null : [...raw.groups],
    system:
      s === null
        ? null
        : {
            protocol: s.protocol,
            connectedAtMs: Number(s.connectedAtMs),
            lastActiveMs: Number(s.lastActiveMs),
            bytesIn: Number(s.bytesIn),
            bytesOut: Number(s.bytesOut),
            gatewayId: fromU32(s.gatewayId),
          },
  };
}

/** Closes the client: `force = false` flushes what was queued first; `onClose` follows once. */
export function closeClient(client, force = false) {
  call(api.closeClient, client, force);
}

/** Sends `message`, then closes the client cleanly with the message flushed first. */
export function closeClientWith(client, message) {
  call(api.closeClientWith, client, toRawMessage(message));
}

/** Binds the client to `uid`; a client bound to another uid is moved. */
export function bindUid(client, uid) {
  call(api.bindUid, client, uid);
}

/** Clears the client's uid; nothing happens if it has none. */
export function unbindUid(client) {
  call(api.unbindUid, client);
}

/** Makes the client a member of `group`. */
export function joinGroup(client, group) {
  call(api.joinGroup, client, group);
}

/** Removes the client from `group`. */
export function leaveGroup(client, group) {
  call(api.leaveGroup, client, group);
}

/** Removes every membership of `group` on every gateway; clients stay connected. */
export function ungroup(group) {
  call(api.ungroup, group);
}

/** Replaces the client's session (an object, a Map or [key, value] pairs). */
export function setSession(client, session) {
  call(api.setSession, client, toRawSession(session));
}

/** Merges into the client's session: given keys overwrite, the others stay. */
export function updateSession(client, session) {
  call(api.updateSession, client, toRawSession(session));
}

/** Empties the client's session. */
export function deleteSession(client) {
  call(api.deleteSession, client);
}

/** The client's session as an object: `null` if the client is unknown, `{}` if it has none. */
export function getSession(client) {
  const raw = none(call(api.getSession, client));
  return raw === null ? null : fromRawSession(raw);
}

/**
 * The value under `key` of a session object parsed as JSON (PHP sessions hold arrays; here a
 * session value is a string): `fallback` if the key is absent or not JSON.
 */
export function sessionJson(session, key, fallback = null) {
  const text = session?.[key];
  if (typeof text !== "string") return fallback;
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}

/** Stores `value` as JSON under `key` in the client's session, keeping the other keys. */
export function setSessionJson(client, key, value) {
  updateSession(client, { [key]: JSON.stringify(value) });
}

/** Fires `onTimer` after `afterMs` (1..=86 400 000) ms, and every `afterMs` if `repeat`. */
export function setTimer(afterMs, repeat = false) {
  return Number(call(api.setTimer, toU64(afterMs), repeat));
}

/** Cancels a timer of this instance; unknown ids are ignored. */
export function clearTimer(id) {
  api.clearTimer(toU64(id));
}

const LEVELS = ["trace", "debug", "info", "warn", "error"];

/** Writes a line to the host's log at `level` (trace, debug, info, warn, error). */
export function log(level, message) {
  if (!LEVELS.includes(level)) throw new TypeError(`unknown log level ${level}`);
  api.log(level, String(message));
}

/** Logs at trace level. */
export const trace = (message) => log("trace", message);
/** Logs at debug level. */
export const debug = (message) => log("debug", message);
/** Logs at info level. */
export const info = (message) => log("info", message);
/** Logs at warn level. */
export const warn = (message) => log("warn", message);
/** Logs at error level. */
export const error = (message) => log("error", message);

// QuickJS has no console: give plugins one that writes to the host log.
if (typeof globalThis.console === "undefined") {
  const line = (args) => args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  globalThis.console = {
    log: (...a) => info(line(a)),
    info: (...a) => info(line(a)),
    debug: (...a) => debug(line(a)),
    warn: (...a) => warn(line(a)),
    error: (...a) => error(line(a)),
  };
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/** Refuses a WebSocket handshake: throw or return it from `onWebsocketConnect`. */
export class Rejection extends Error {
  constructor(status = 403, reason = "forbidden") {
    super(`${status} ${reason}`);
    this.name = "Rejection";
    this.status = status;
    this.reason = reason;
  }
}

/** Types the handler object (or class) a plugin's `index.js` exports as default; returns it. */
export function definePlugin(plugin) {
  return plugin;
}

class Context {
  constructor(raw) {
    this.client = raw.client;
    this.remoteAddr = raw.remoteAddr;
    this.gatewayId = fromU32(raw.gatewayId);
    this.uid = none(raw.uid);
    this.session = fromRawSession(raw.session);
  }

  /** Queues `message` to this event's client. */
  reply(message) {
    sendToClient(this.client, message);
  }
}

class HttpRequest {
  constructor(raw) {
    this.path = raw.path;
    this.query = raw.query;
    this.headers = list(raw.headers);
  }

  /** The first value of header `name` (case-insensitive), or null. */
  header(name) {
    const n = name.toLowerCase();
    const h = this.headers.find(([k]) => k === n);
    return h ? h[1] : null;
  }

  /** The raw value of `name` in the query string ("" for a bare key), or null. */
  queryParam(name) {
    for (const part of this.query.split("&")) {
      const i = part.indexOf("=");
      const k = i < 0 ? part : part.slice(0, i);
      if (k === name) return i < 0 ? "" : part.slice(i + 1);
    }
    return null;
  }
}

/** A thenable: what an `async` handler returns. */
const isPromise = (value) => value != null && typeof value.then === "function";

// The WIT export's name of a handler: `onWebsocketConnect` → `on-websocket-connect`.
const witName = (handler) => handler.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

// The error policy: a `SwitchboardError` that escapes a handler is logged at warn and the event
// ends normally (the instance and its state stay); anything else is rethrown, and traps.
function escaped(handler, e) {
  if (!(e instanceof SwitchboardError)) throw e;
  log("warn", `unhandled error in ${witName(handler)}: ${e.kind}: ${e.detail ?? ""}`);
}

// What a handler returned, handed back to the engine. StarlingMonkey runs its event loop until
// a returned promise settles, so an `async` handler may `await fetch(…)`. QuickJS (`--sync`)
// would drop the promise and the rest of the handler with it: refused, loudly, at once.
function settle(handler, result) {
  if (!isPromise(result)) return result;
  if (ENGINE === "starlingmonkey") return result.then(undefined, (e) => escaped(handler, e));
  const why =
    `${handler} returned a Promise, which the QuickJS engine cannot wait for: make it a plain ` +
    `function, or build with StarlingMonkey ("switchboard": { "engine": "starlingmonkey" } in ` +
    `package.json) for async handlers and fetch`;
  log("error", why);
  throw new Error(why);
}

// QuickJS has no fetch: say what to do instead of "fetch is not defined".
if (ENGINE === "quickjs" && typeof globalThis.fetch !== "function") {
  globalThis.fetch = () => {
    throw new Error(
      'fetch needs the StarlingMonkey engine: set "switchboard": { "engine": "starlingmonkey" } in package.json',
    );
  };
}

/** Throws the WIT `rejection` for a `Rejection`; anything else means "accept". */
function verdict(result) {
  if (result instanceof Rejection) throw { status: result.status, reason: result.reason };
}

// `onWebsocketConnect` let `e` escape: a `Rejection` refuses with its status, a
// `SwitchboardError` is logged and refuses with 500 (a failed check must not let a client in),
// anything else traps.
function refused(e) {
  if (e instanceof Rejection) return verdict(e);
  escaped("onWebsocketConnect", e);
  throw { status: 500, reason: "internal error" };
}

// The handlers a plugin may leave out and the host may then skip (WIT `client-handler`).
const CLIENT_EVENTS = new Set(["onConnect", "onWebsocketConnect", "onMessage", "onClose"]);

/**
 * The `events` export of the component, built from the plugin's default export: an object
 * of handlers, or a class (instantiated once per instance, on its first event). Used by the
 * generated entry module; plugins do not call it.
 */
export function makeEvents(pluginOrClass) {
  let plugin = null;
  const get = () => {
    if (plugin === null) {
      plugin = typeof pluginOrClass === "function" ? new pluginOrClass() : pluginOrClass ?? {};
    }
    return plugin;
  };
  // Calls handler `name` if the plugin has it; throws what escapes it. A client event the
  // plugin has no handler for is reported to the host, which then stops sending it.
  const call = (name, ...args) => {
    const p = get();
    if (p[name]) return settle(name, p[name](...args));
    if (CLIENT_EVENTS.has(name)) api.unhandled(witName(name));
    return undefined;
  };
  // The same, with the error policy applied to what escapes.
  const run = (name, ...args) => {
    try {
      return call(name, ...args);
    } catch (e) {
      return escaped(name, e);
    }
  };
  return {
    onWorkerStart(workerId) {
      return run("onWorkerStart", fromU32(workerId));
    },
    onConnect(ctx) {
      return run("onConnect", new Context(ctx));
    },
    onWebsocketConnect(ctx, request) {
      const p = get();
      if (!p.onWebsocketConnect) return api.unhandled("on-websocket-connect");
      let result;
      try {
        result = p.onWebsocketConnect(new Context(ctx), new HttpRequest(request));
      } catch (e) {
        return refused(e);
      }
      if (!isPromise(result)) return verdict(result);
      if (ENGINE !== "starlingmonkey") return settle("onWebsocketConnect", result);
      return result.then(verdict, refused);
    },
    onMessage(ctx, message) {
      return run("onMessage", new Context(ctx), fromRawMessage(message));
    },
    onClose(ctx, bound) {
      return run("onClose", new Context(ctx), { uid: none(bound.uid), groups: list(bound.groups) });
    },
    onTimer(id) {
      return run("onTimer", Number(id));
    },
    onWorkerStop(workerId) {
      return run("onWorkerStop", fromU32(workerId));
    },
  };
}
