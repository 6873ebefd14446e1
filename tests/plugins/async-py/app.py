"""A mistake a Python author makes: an ``async def`` handler. Nothing would run its coroutine,
so the SDK must refuse it at its first call with a message naming it, before any of it runs."""

import switchboard_plugin as sb


class Async(sb.Plugin):
    def on_connect(self, ctx: sb.Context) -> None:
        ctx.reply("connected")

    async def on_message(self, ctx: sb.Context, message: sb.Message) -> None:  # type: ignore[override]
        ctx.reply("never")


Events = sb.export(Async)
