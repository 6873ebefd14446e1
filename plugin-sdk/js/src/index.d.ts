// Type declarations of the Switchboard JavaScript SDK (`switchboard-sdk`): the plugin API
// with JS names, the event handlers, and the values they exchange.

/** A client id: 20 lowercase hex characters (8 of its gateway id, 12 of the gateway's sequence). */
export type ClientId = string;

/** One complete message: a string is text (WebSocket text frame, text line), bytes are binary. */
export type Message = string | Uint8Array;

/** What a send accepts: text, or bytes in any of these forms. */
export type MessageInput = string | Uint8Array | ArrayBuffer | ArrayBufferView;

/**
 * A client's session: string keys to string values, in an object without a prototype (so a
 * key such as `__proto__` is data like any other).
 */
export type Session = Record<string, string>;

/**
 * What `setSession`/`updateSession` accept: an object, a Map, or any iterable of
 * `[key, value]` pairs (an array, `map.entries()`, a generator). Anything else throws a
 * TypeError.
 */
export type SessionInput = Session | Map<string, string> | Iterable<readonly [string, string]>;

/** The engine a bundle was built for. */
export declare const ENGINE: "quickjs" | "starlingmonkey";

/** The WIT error cases. */
export type ErrorKind = "invalid-client-id" | "invalid-name" | "too-large" | "invalid-argument" | "timeout";

/** An error the host API returned; every API call throws it instead of returning a result. */
export declare class SwitchboardError extends Error {
  readonly name: "SwitchboardError";
  /** The WIT case. */
  readonly kind: ErrorKind;
  /** The host's human-readable detail. */
  readonly detail: string;
  constructor(kind: ErrorKind, detail: string);
}

/** Whether `id` is a well-formed client id. */
export declare function isValidClientId(id: string): boolean;

/** Queues `message` to the client; a well-formed id of a client that is gone: nothing is sent. */
export declare function sendToClient(client: ClientId, message: MessageInput): void;
/** Sends to every client bound to `uid`, except those in `without`. */
export declare function sendToUid(uid: string, message: MessageInput, without?: Iterable<ClientId>): void;
/** Sends to every member of `group` on every gateway, except those in `without`. */
export declare function sendToGroup(group: string, message: MessageInput, without?: Iterable<ClientId>): void;
/** Sends to every connected client that finished its handshake, except those in `without`. */
export declare function sendToAll(message: MessageInput, without?: Iterable<ClientId>): void;

/** Sends to every client bound to any of `uids` (at most 1000), once each, except those in `without`. */
export declare function sendToUids(uids: Iterable<string>, message: MessageInput, without?: Iterable<ClientId>): void;
/** Sends to every member of any of `groups` (at most 1000), once each, except those in `without`. */
export declare function sendToGroups(groups: Iterable<string>, message: MessageInput, without?: Iterable<ClientId>): void;
/** Queues `message` to each listed client (at most 1000) once. */
export declare function sendToClients(clients: Iterable<ClientId>, message: MessageInput): void;

/** Whether the client is connected now. */
export declare function isOnline(client: ClientId): boolean;
/** Whether at least one client is bound to `uid`. */
export declare function isUidOnline(uid: string): boolean;
/** Connected clients (handshake finished) in the whole cluster. */
export declare function getClientCount(): number;
/** Members of `group`. */
export declare function getClientCountByGroup(group: string): number;
/** The exact number of distinct uids among the members of `group`. */
export declare function getUidCountByGroup(group: string): number;
/** No argument: the exact number of distinct bound uids; `p`: a cheap estimate (per-gateway counts × p). */
export declare function getUidCount(uniquePercent?: number | null): number;

/** One page of connected clients sorted by id, strictly after `after`, at most `limit` (1..=1000). */
export declare function getClientList(after: ClientId | null | undefined, limit: number): ClientId[];
/** Like `getClientList`, members of `group` only. */
export declare function getClientListByGroup(group: string, after: ClientId | null | undefined, limit: number): ClientId[];
/** Like `getClientList`, clients bound to `uid` only. */
export declare function getClientListByUid(uid: string, after: ClientId | null | undefined, limit: number): ClientId[];

/** The page size of the paging iterators unless `pageSize` says otherwise: 256. */
export declare const DEFAULT_PAGE_SIZE: number;

/** Options of the paging iterators. */
export interface PageOptions {
  /** Start strictly after this id. */
  after?: ClientId | null;
  /** Ids per host call (1..=1000, default 256). */
  pageSize?: number;
}
/** Every connected client, sorted by id, fetched a page at a time. */
export declare function clients(options?: PageOptions): IterableIterator<ClientId>;
/** Every member of `group`, sorted by id, fetched a page at a time. */
export declare function clientsInGroup(group: string, options?: PageOptions): IterableIterator<ClientId>;
/** Every client bound to `uid`, sorted by id, fetched a page at a time. */
export declare function clientsOfUid(uid: string, options?: PageOptions): IterableIterator<ClientId>;

/**
 * Bound uids, sorted; `unique`: each once across the cluster (the expensive cluster-wide
 * query), else each gateway's list concatenated (cheaper, may repeat).
 */
export declare function getUidList(unique: boolean): string[];
/** Uids bound to members of `group`, sorted; `unique` as in `getUidList`. */
export declare function getUidListByGroup(group: string, unique: boolean): string[];
/** Groups that have members, sorted; `unique` as in `getUidList`. */
export declare function getGroupList(unique: boolean): string[];

/** One page of bound uids, sorted, each once, strictly after `after`, at most `limit` (1..=1000). */
export declare function getUidListPaged(after: string | null | undefined, limit: number): string[];
/** Like `getUidListPaged`, uids bound to members of `group` only. */
export declare function getUidListByGroupPaged(group: string, after: string | null | undefined, limit: number): string[];
/** One page of groups that have members, sorted, strictly after `after`, at most `limit`. */
export declare function getGroupListPaged(after: string | null | undefined, limit: number): string[];
/** Options of the name iterators: `after` is a name. */
export interface NamePageOptions {
  /** Start strictly after this name. */
  after?: string | null;
  /** Names per host call (1..=1000, default 256). */
  pageSize?: number;
}
/** Every bound uid, sorted, fetched a page at a time. */
export declare function uids(options?: NamePageOptions): IterableIterator<string>;
/** Every uid bound to a member of `group`, sorted, fetched a page at a time. */
export declare function uidsInGroup(group: string, options?: NamePageOptions): IterableIterator<string>;
/** Every group that has members, sorted, fetched a page at a time. */
export declare function groups(options?: NamePageOptions): IterableIterator<string>;

/** One page of `[clientId, session]`, sorted by id, strictly after `after`, at most `limit`. */
export declare function getClientSessions(after: ClientId | null | undefined, limit: number): [ClientId, Session][];
/** Like `getClientSessions`, members of `group` only. */
export declare function getClientSessionsByGroup(group: string, after: ClientId | null | undefined, limit: number): [ClientId, Session][];
/** Every connected client's `[clientId, session]`, sorted by id, fetched a page at a time. */
export declare function clientSessions(options?: PageOptions): IterableIterator<[ClientId, Session]>;
/** Every member of `group` as `[clientId, session]`, sorted by id, fetched a page at a time. */
export declare function clientSessionsInGroup(group: string, options?: PageOptions): IterableIterator<[ClientId, Session]>;
/** The member count of each of `groups` (at most 1000); 0 for a group without members. */
export declare function getClientCountByGroups(groups: Iterable<string>): Record<string, number>;
/** The sorted clients bound to each of `uids` (at most 1000); `[]` for an offline uid. */
export declare function getClientIdsByUids(uids: Iterable<string>): Record<string, ClientId[]>;

/** The value under `key` of a session parsed as JSON; `fallback` if absent or not JSON. */
export declare function sessionJson<T = unknown>(session: Session | null | undefined, key: string, fallback?: T | null): T | null;
/** Stores `value` as JSON under `key` in the client's session, keeping the other keys. */
export declare function setSessionJson(client: ClientId, key: string, value: unknown): void;

/** The fields `getClientInfo` can fill. */
export type InfoField = "remoteIp" | "remotePort" | "uid" | "session" | "groups" | "system";
/** All of them: `getClientInfo(id, INFO_FIELDS)`. */
export declare const INFO_FIELDS: readonly InfoField[];

/** Facts the gateway keeps about a connection. */
export interface SystemInfo {
  protocol: "websocket" | "text" | "frame";
  connectedAtMs: number;
  lastActiveMs: number;
  bytesIn: number;
  bytesOut: number;
  gatewayId: number;
}

/** What `getClientInfo` returns: fields not asked for are null. */
export interface ClientInfo {
  client: ClientId;
  remoteIp: string | null;
  remotePort: number | null;
  uid: string | null;
  session: Session | null;
  groups: string[] | null;
  system: SystemInfo | null;
}

/** The asked fields (`INFO_FIELDS` for all) of what the gateway knows about the client; null if unknown. */
export declare function getClientInfo(client: ClientId, fields: Iterable<InfoField>): ClientInfo | null;

/** Closes the client: `force = false` flushes what was queued first; `onClose` follows once. */
export declare function closeClient(client: ClientId, force?: boolean): void;
/** Sends `message`, then closes the client cleanly with the message flushed first. */
export declare function closeClientWith(client: ClientId, message: MessageInput): void;
/** Binds the client to `uid`; a client bound to another uid is moved. */
export declare function bindUid(client: ClientId, uid: string): void;
/** Clears the client's uid; nothing happens if it has none. */
export declare function unbindUid(client: ClientId): void;
/** Makes the client a member of `group`. */
export declare function joinGroup(client: ClientId, group: string): void;
/** Removes the client from `group`. */
export declare function leaveGroup(client: ClientId, group: string): void;
/** Removes every membership of `group` on every gateway; clients stay connected. */
export declare function ungroup(group: string): void;
/** Replaces the client's session. */
export declare function setSession(client: ClientId, session: SessionInput): void;
/** Merges into the client's session: given keys overwrite, the others stay. */
export declare function updateSession(client: ClientId, session: SessionInput): void;
/** Empties the client's session. */
export declare function deleteSession(client: ClientId): void;
/** The client's session: null if the client is unknown, `{}` if it has none. */
export declare function getSession(client: ClientId): Session | null;

/** Fires `onTimer` after `afterMs` (1..=86 400 000) ms, and every `afterMs` if `repeat`; returns its id. */
export declare function setTimer(afterMs: number, repeat?: boolean): number;
/** Cancels a timer of this instance; unknown ids are ignored. */
export declare function clearTimer(id: number): void;

/** A log level. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";
/** Writes a line to the host's log, tagged with the plugin's name and version. */
export declare function log(level: LogLevel, message: string): void;
export declare function trace(message: string): void;
export declare function debug(message: string): void;
export declare function info(message: string): void;
export declare function warn(message: string): void;
export declare function error(message: string): void;

/** What the host tells a handler about the client an event concerns. */
export interface Context {
  /** The client the event is about. */
  readonly client: ClientId;
  /** Its remote address, `ip:port`. */
  readonly remoteAddr: string;
  /** The gateway that holds it. */
  readonly gatewayId: number;
  /** Its uid, if bound. */
  readonly uid: string | null;
  /** A snapshot of its session, taken when the event left the gateway. */
  readonly session: Session;
  /** Queues `message` to this client. */
  reply(message: MessageInput): void;
}

/** The WebSocket upgrade request. */
export interface HttpRequest {
  readonly path: string;
  /** Without `?`, empty if none. */
  readonly query: string;
  /** Names in lowercase, in the order received. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The first value of a header (case-insensitive), or null. */
  header(name: string): string | null;
  /** The raw value of a query parameter ("" for a bare key), or null. */
  queryParam(name: string): string | null;
}

/** What was bound to a client when it left. */
export interface Bound {
  uid: string | null;
  /** Sorted. */
  groups: string[];
}

/** Refuses a WebSocket handshake: throw or return it from `onWebsocketConnect`. */
export declare class Rejection extends Error {
  readonly name: "Rejection";
  /** 400..=599; others become 403. */
  readonly status: number;
  /** Sent as the response body. */
  readonly reason: string;
  constructor(status?: number, reason?: string);
}

/**
 * The handlers a plugin implements; all are optional. A plugin's `index.js` exports such an
 * object (or a class whose instances are, created once per instance) as its default export.
 * Handlers run one at a time per instance.
 *
 * Errors: a `SwitchboardError` that escapes a handler is logged at warn
 * (`unhandled error in on-message: KIND: DETAIL`) and the event ends normally, the instance
 * and its state kept; in `onWebsocketConnect` it also refuses the handshake with 500. Any
 * other exception traps (the event is lost, the instance replaced). A handler may be `async`
 * (for `fetch`) only with the StarlingMonkey engine, which waits for its promise; QuickJS
 * refuses it at its first call with a log line naming it, then traps.
 */
export interface Plugin {
  /** An instance was created (start, scale-up, hot swap, after a failure); may set timers. */
  onWorkerStart?(workerId: number): void | Promise<void>;
  /** A TCP client was accepted, or a WebSocket handshake completed. */
  onConnect?(ctx: Context): void | Promise<void>;
  /** A WebSocket handshake arrived; return or throw a `Rejection` to refuse it. */
  onWebsocketConnect?(ctx: Context, request: HttpRequest): Rejection | void | Promise<Rejection | void>;
  /** One complete message arrived, byte-exact: a string for text, a Uint8Array for binary. */
  onMessage?(ctx: Context, message: Message): void | Promise<void>;
  /** The client is gone; `bound` is what it was bound to. */
  onClose?(ctx: Context, bound: Bound): void | Promise<void>;
  /** A timer set by this instance fired. */
  onTimer?(id: number): void | Promise<void>;
  /** The instance is being retired (stop, hot swap); it has bounded time. */
  onWorkerStop?(workerId: number): void | Promise<void>;
}

/** Types a plugin's handlers: `export default definePlugin({ onMessage(ctx, m) { … } })`. */
export declare function definePlugin<P extends Plugin | (new () => Plugin)>(plugin: P): P;

/** Used by the generated entry module: the component's `events` export. */
export declare function makeEvents(plugin: Plugin | (new () => Plugin)): Record<string, (...args: unknown[]) => unknown>;

/** The app's variables (`[apps.NAME.variables]`). */
export declare const variables: {
  /** The value of variable `name`, or null if the app has no such variable. */
  get(name: string): string | null;
};

/** The app's key-value store; errors throw a `SwitchboardError` (`kind`: the WIT `kv-error` case). */
export declare const kv: {
  get(key: string): Uint8Array | null;
  getString(key: string): string | null;
  set(key: string, value: string | Uint8Array, options?: { ttlMs?: number }): void;
  delete(key: string): void;
  increment(key: string, delta?: number): number;
  listKeys(prefix?: string, after: string | null | undefined, limit: number): string[];
  keys(prefix?: string): Generator<string>;
};
