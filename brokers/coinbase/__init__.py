"""Coinbase Advanced Trade (spot) through ccxt; see :mod:`.options` for the ``[brokers.NAME]`` table."""
