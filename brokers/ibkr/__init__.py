"""Interactive Brokers (``type = "ibkr"``) through a running TWS or IB Gateway, over ib_async.

:mod:`.options` (the ``[brokers.NAME]`` table), :mod:`.contracts`, :mod:`.orders`,
:mod:`.errors`, :mod:`.reports` and :mod:`.portfolio` are pure mappings;
:mod:`.connection` keeps the API session up, :mod:`.instruments` and
:mod:`.marketdata` ask TWS for contracts and quotes, :mod:`.tracking` reports
each change once, and :mod:`.adapter` ties them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import IbkrOptions

if TYPE_CHECKING:
    from .adapter import IbkrBroker

__all__ = ["IbkrBroker", "IbkrOptions"]


def __getattr__(name: str) -> Any:
    # Reading supervisor.toml needs only the options; ib_async loads with the adapter, in the router.
    if name == "IbkrBroker":
        from .adapter import IbkrBroker

        return IbkrBroker
    raise AttributeError(f"module 'brokers.ibkr' has no attribute {name!r}")
