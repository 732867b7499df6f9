"""A continuous strategy in a package: one long-lived process, restarted on failure.

It reads quotes from the router every five seconds, logs them with the
strategy's own mark-to-market from a small helper module, until the
supervisor stops it.
"""

from .feed import describe

SCHEDULE = "@continuous"
GRACE = 5
PARAMS = {"instruments": ["EUR_USD", "GBP_USD"], "interval": 5.0}


def run(ctx):
    ctx.logger.info("ticker started for %s", ", ".join(ctx.params["instruments"]))
    while ctx.sleep(ctx.params["interval"]):
        quotes = [ctx.quote(name) for name in ctx.params["instruments"]]
        ctx.logger.info("  ".join(describe(q) for q in quotes))
