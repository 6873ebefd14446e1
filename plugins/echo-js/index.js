// Echo: sends every message back to its sender unchanged (text stays text, binary stays binary).
import { definePlugin, warn } from "switchboard-sdk";

export default definePlugin({
  onMessage(ctx, message) {
    try {
      ctx.reply(message);
    } catch (e) {
      warn(`echo to ${ctx.client} failed: ${e.message}`);
    }
  },
});
