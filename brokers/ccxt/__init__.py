"""What the ccxt-based adapters (Coinbase, Binance) share.

:mod:`.exchange` builds a ccxt client that sends every request through our
token bucket and keeps the HTTP answer beside each error, :mod:`.errors`
turns those errors into standard codes, :mod:`.mapping` turns ccxt's unified
order, trade, balance and ticker dicts into the router's model (pure),
:mod:`.refs` remembers where each of our orders went, :mod:`.poller` watches
working orders, and :mod:`.adapter` is the adapter base the exchanges extend.
"""
