"""The OANDA v20 broker adapter (``type = "oanda"``): a thin httpx client on one keep-alive connection pool.

:mod:`.options` (what it can be told), :mod:`.errors` (OANDA's words → our codes),
:mod:`.mapping` and :mod:`.market` (v20 JSON ↔ our model) are pure; :mod:`.client`
speaks REST, :mod:`.stream` keeps a stream open, :mod:`.transactions` turns the
account's transactions into reports, :mod:`.book` remembers the orders seen and
:mod:`.adapter` ties them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import OandaOptions

if TYPE_CHECKING:
    from .adapter import OandaBroker

__all__ = ["OandaBroker", "OandaOptions"]


def __getattr__(name: str) -> Any:
    # Reading supervisor.toml needs only the options; the adapter (and httpx) loads in the router.
    if name == "OandaBroker":
        from .adapter import OandaBroker

        return OandaBroker
    raise AttributeError(f"module 'brokers.oanda' has no attribute {name!r}")
