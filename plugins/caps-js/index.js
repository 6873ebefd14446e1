// Caps: the app's variables, key-value store, outbound HTTP and the list forms of the API
// driven by text commands (the protocol of plugins/caps-js/README.md), so the same end-to-end
// test runs against every language. Built with StarlingMonkey (package.json) for `fetch` and
// the async handler.
import * as sb from "switchboard-sdk";
import { definePlugin, kv, variables, SwitchboardError } from "switchboard-sdk";

function run(ctx, line) {
  const [command, key = "", ...rest] = line.split(" ");
  const value = rest.join(" ");
  switch (command) {
    case "var":
      return variables.get(key) ?? "(none)";
    case "set":
      kv.set(key, value);
      return "ok";
    case "setttl":
      kv.set(key, rest.slice(1).join(" "), { ttlMs: Number(rest[0]) });
      return "ok";
    case "get":
      return kv.getString(key) ?? "(none)";
    case "del":
      kv.delete(key);
      return "ok";
    case "incr":
      return String(kv.increment(key, value === "" ? 1 : Number(value)));
    case "keys":
      return [...kv.keys(key)].join(",");
    // GatewayWorker parity: a JSON session value, list sends, bulk sessions and counts.
    case "nick":
      sb.setSessionJson(ctx.client, "profile", { nick: key, rooms: ["lobby"] });
      sb.joinGroup(ctx.client, "caps");
      sb.bindUid(ctx.client, key);
      return "ok";
    case "who": {
      const seen = sb.getClientSessionsByGroup("caps", null, 10).map(([, session]) => {
        const profile = sb.sessionJson(session, "profile", {});
        return `${profile.nick}@${profile.rooms?.[0]}`;
      });
      const counts = sb.getClientCountByGroups(["caps", "none"]);
      const ids = sb.getClientIdsByUids([key]);
      return `${counts.caps}+${counts.none} ${seen.join(",")} ${[...sb.uids()].join(",")} ${ids[key].length}`;
    }
    case "notice":
      sb.sendToUids(sb.getUidListPaged(null, 1000), [key, value].join(" ").trim());
      sb.sendToGroups(["caps"], "to caps", [ctx.client]);
      sb.sendToClients([ctx.client, ctx.client], "to me");
      return "ok";
    case "bye":
      sb.closeClientWith(ctx.client, key);
      return "ok";
    default:
      return `unknown command ${command}`;
  }
}

// `http URL`: the standard fetch, through the host's wasi:http (allowed_outbound_hosts).
async function get(url) {
  try {
    const response = await fetch(url);
    return `${response.status} ${await response.text()}`;
  } catch (e) {
    // A denied host, a refused connection and a timeout all surface as a TypeError.
    return e instanceof TypeError ? "error network" : `error ${e}`;
  }
}

export default definePlugin({
  async onMessage(ctx, message) {
    const line = String(message);
    let reply;
    try {
      reply = line.startsWith("http ") ? await get(line.slice(5)) : run(ctx, line);
    } catch (e) {
      reply = e instanceof SwitchboardError ? `error ${e.kind}` : `error ${e}`;
    }
    ctx.reply(reply);
  },
});
