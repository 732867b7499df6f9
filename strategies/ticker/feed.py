"""Formatting helpers for the ticker package (shows a strategy split over several modules)."""


def describe(quote):
    """``EUR_USD 1.08412/1.08422 (1.0 pips)`` for an FX quote, bid/ask otherwise."""
    spread = quote.ask - quote.bid
    pips = f" ({spread * 10000:.1f} pips)" if quote.instrument.count("_") == 1 and quote.ask < 50 else ""
    return f"{quote.instrument} {quote.bid}/{quote.ask}{pips}"
