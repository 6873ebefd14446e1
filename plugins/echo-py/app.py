"""Echo: sends every message back to its sender unchanged (text stays text, binary stays binary)."""

import switchboard_plugin as sb


class Echo(sb.Plugin):
    """The echo plugin; it keeps no state."""

    def on_message(self, ctx: sb.Context, message: sb.Message) -> None:
        try:
            ctx.reply(message)
        except sb.SwitchboardError as e:
            sb.warn(f"echo to {ctx.client} failed: {e}")


Events = sb.export(Echo)
