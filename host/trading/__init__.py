"""The trading domain shared by strategies and the router: orders, their states, errors and the wire.

Nothing here does I/O except :mod:`host.trading.client`, the strategy side of the wire.
"""
