// Mistakes a JavaScript author makes under the QuickJS engine (the default): an async handler
// and a call to fetch. The SDK must refuse both with a message that says what to do.
import { definePlugin } from "switchboard-sdk";

export default definePlugin({
  onMessage(ctx, message) {
    if (String(message) === "fetch") {
      try {
        fetch("http://127.0.0.1:9/");
      } catch (e) {
        ctx.reply(String(e.message));
      }
      return undefined;
    }
    return (async () => {
      await null;
      ctx.reply("never");
    })();
  },
});
