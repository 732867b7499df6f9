"""The built-in paper broker (``type = "paper"``): a simulated account, quotes from a seeded random walk or a CSV replay.

:mod:`.options` (what it can be told), :mod:`.feed` (quotes), :mod:`.execution`
(fill maths), :mod:`.ledger` (the account's cash; positions are :mod:`host.trading.positions`) are pure; :mod:`.tables`
holds its tables in the state database and :mod:`.adapter` ties them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import PaperOptions

if TYPE_CHECKING:
    from .adapter import PaperBroker

__all__ = ["PaperBroker", "PaperOptions"]


def __getattr__(name: str) -> Any:
    # Reading supervisor.toml needs only the options; the adapter (and SQLAlchemy) loads in the router.
    if name == "PaperBroker":
        from .adapter import PaperBroker

        return PaperBroker
    raise AttributeError(f"module 'brokers.paper' has no attribute {name!r}")
