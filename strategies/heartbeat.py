"""Every minute: log that the host is alive and count the runs in ctx.state."""

SCHEDULE = "* * * * *"
TIMEOUT = 30


def run(ctx):
    beats = ctx.state.get("beats", 0) + 1
    ctx.state["beats"] = beats
    ctx.logger.info("heartbeat %d (run %d, slot %s)", beats, ctx.run_id, ctx.scheduled_at)
