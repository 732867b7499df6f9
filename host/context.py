"""The ``ctx`` object a strategy's ``run(ctx)`` receives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import datetime
from typing import Any

from .runchannel import RunChannelClient, encode_value
from .trading.api import TradingAPI
from .trading.client import RouterClient

__all__ = ["Context", "StateStore"]


class StateStore(MutableMapping[str, Any]):
    """A strategy's persistent key-value store; survives runs and restarts.

    Values are JSON (numbers, strings, booleans, None, lists, dicts). Reads
    come from a snapshot loaded on first use; every write is stored by the
    supervisor before it returns, so a crash right after ``ctx.state[k] = v``
    keeps ``v``.
    """

    def __init__(self, channel: RunChannelClient) -> None:
        self._channel = channel
        self._cache: dict[str, Any] | None = None

    def _items(self) -> dict[str, Any]:
        if self._cache is None:
            self._cache = dict(self._channel.request("state.items"))
        return self._cache

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        encode_value(key, value)  # refuse bad input here, with no round trip
        self._channel.request("state.set", key=key, value=value)
        self._items()[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self._items():
            raise KeyError(key)
        self._channel.request("state.delete", key=key)
        del self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items()))

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"StateStore({self._items()!r})"


class Context(TradingAPI):
    """What a strategy knows about its run, and its way to talk to the host and the router.

    The trading methods (``place_order``, ``buy``, ``sell``, ``cancel_order``,
    ``modify_order``, ``orders``, ``positions``, ``account``, ``quote``,
    ``wait``) come from :class:`host.trading.api.TradingAPI`.
    """

    def __init__(
        self,
        *,
        name: str,
        run_id: int,
        trigger: str,
        scheduled_at: datetime | None,
        settings: Mapping[str, Any],
        channel: RunChannelClient,
        router: RouterClient | None = None,
    ) -> None:
        self.name = name
        self.run_id = run_id
        self.trigger = trigger
        """Why this run started: "schedule", "manual", "continuous" or "restart"."""
        self.scheduled_at = scheduled_at
        """The cron slot this run is for (UTC), or None for manual and continuous runs."""
        self.settings: Mapping[str, Any] = settings
        self.params: Mapping[str, Any] = settings.get("params", {})
        self.logger = logging.getLogger(f"strategy.{name}")
        self.state = StateStore(channel)
        self.stopping = threading.Event()
        """Set when the supervisor asked this run to stop."""
        self._channel = channel
        self._router = router
        self._default_broker = settings.get("broker")

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return False at once if a stop was requested."""
        return not self.stopping.wait(seconds)

    def close(self) -> None:
        self._channel.close()
        if self._router is not None:
            self._router.close()

    def __repr__(self) -> str:
        return f"Context(name={self.name!r}, run_id={self.run_id})"
