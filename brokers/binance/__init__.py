"""Binance spot (testnet or live) through ccxt; see :mod:`.options` for the ``[brokers.NAME]`` table."""
