"""Every 15 seconds: a moving-average crossover on the broker's quotes, traded on the paper broker.

Shows parameters (PARAMS, overridable in supervisor.toml), state that
survives between runs, and orders through ctx: the position is flipped
between long and short when the fast average crosses the slow one. The
request id is derived from the cron slot, so a re-run of the same slot gets
the same order back instead of sending a second one.
"""

from host.trading.errors import TradingError

SCHEDULE = "*/15 * * * * *"  # six fields: seconds first
TIMEZONE = "Europe/London"
TIMEOUT = 10
PARAMS = {"instrument": "EUR_USD", "fast": 3, "slow": 8, "units": 1000}


def _sma(values, length):
    window = values[-length:]
    return sum(window) / len(window)


def run(ctx):
    p = ctx.params
    quote = ctx.quote(p["instrument"])
    prices = ctx.state.get("prices", [])
    prices.append(str(quote.mid))
    prices = prices[-p["slow"]:]
    ctx.state["prices"] = prices
    if len(prices) < p["slow"]:
        ctx.logger.info("%s %s: warming up (%d/%d prices)", p["instrument"], quote.mid, len(prices), p["slow"])
        return
    values = [float(x) for x in prices]
    fast, slow = _sma(values, p["fast"]), _sma(values, p["slow"])
    signal = "long" if fast > slow else "short"
    if signal == ctx.state.get("signal"):
        return
    held = sum((pos.quantity for pos in ctx.positions() if pos.instrument == p["instrument"]), 0)
    target = p["units"] if signal == "long" else -p["units"]
    delta = target - held
    ctx.state["signal"] = signal
    if delta == 0:
        return
    slot = ctx.scheduled_at.isoformat() if ctx.scheduled_at else f"run{ctx.run_id}"
    try:
        order = ctx.place_order(p["instrument"], "BUY" if delta > 0 else "SELL", abs(delta), request_id=f"flip-{slot}")
    except TradingError as exc:
        ctx.logger.warning("%s: order refused: %s", p["instrument"], exc)
        return
    ctx.logger.info("%s: signal %s, %s %s %s at %s (%s)", p["instrument"], signal, order.side, order.filled_quantity, order.instrument, order.average_price, order.status)
