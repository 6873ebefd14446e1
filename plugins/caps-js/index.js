// Caps: the app's variables and key-value store driven by text commands (the protocol of
// plugins/caps-js/README.md), so the same end-to-end test runs against every language.
import { definePlugin, kv, variables, SwitchboardError } from "switchboard-sdk";

function run(line) {
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
    default:
      return `unknown command ${command}`;
  }
}

export default definePlugin({
  onMessage(ctx, message) {
    let reply;
    try {
      reply = run(String(message));
    } catch (e) {
      reply = e instanceof SwitchboardError ? `error ${e.kind}` : `error ${e}`;
    }
    ctx.reply(reply);
  },
});
