"""Every 15 seconds: a moving-average crossover signal on a simulated price.

Shows parameters (PARAMS, overridable in supervisor.toml) and state that
survives between runs. Orders come with the broker router; this example only
logs the signal it would trade.
"""

import random

SCHEDULE = "*/15 * * * * *"  # six fields: seconds first
TIMEZONE = "Europe/London"
TIMEOUT = 10
PARAMS = {"instrument": "EUR_USD", "fast": 5, "slow": 20, "start_price": 1.0850}


def _sma(values, length):
    window = values[-length:]
    return sum(window) / len(window)


def run(ctx):
    p = ctx.params
    prices = ctx.state.get("prices", [p["start_price"]])
    prices.append(round(prices[-1] * (1 + random.gauss(0, 0.0005)), 5))
    prices = prices[-p["slow"]:]
    ctx.state["prices"] = prices
    if len(prices) < p["slow"]:
        ctx.logger.info("%s %.5f: warming up (%d/%d prices)", p["instrument"], prices[-1], len(prices), p["slow"])
        return
    fast, slow = _sma(prices, p["fast"]), _sma(prices, p["slow"])
    signal = "long" if fast > slow else "short"
    if signal != ctx.state.get("signal"):
        ctx.logger.info("%s %.5f: signal changed to %s (fast %.5f, slow %.5f)", p["instrument"], prices[-1], signal, fast, slow)
        ctx.state["signal"] = signal
