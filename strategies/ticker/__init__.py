"""A continuous strategy in a package: one long-lived process, restarted on failure.

It polls a (simulated) feed every five seconds until the supervisor stops it.
"""

from .feed import SimulatedFeed

SCHEDULE = "@continuous"
GRACE = 5
PARAMS = {"instruments": ["EUR_USD", "GBP_USD"], "interval": 5.0}


def run(ctx):
    feed = SimulatedFeed(ctx.params["instruments"], seed=ctx.run_id)
    ctx.logger.info("ticker started for %s", ", ".join(ctx.params["instruments"]))
    while ctx.sleep(ctx.params["interval"]):
        quotes = feed.next()
        ctx.logger.info("  ".join(f"{name} {bid:.5f}/{ask:.5f}" for name, (bid, ask) in quotes.items()))
