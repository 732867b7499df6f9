"""tradehost: a multi-process strategy host and scheduler for traders.

The public surface for strategy authors is small: the ``Context`` a strategy's
``run(ctx)`` receives, and ``StopRequested``, raised inside a run when the
supervisor stops it. Everything else is the host's own machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    ControlError,
    NotRunningError,
    ScheduleError,
    StateError,
    StopRequested,
    StrategyFileError,
    TradehostError,
)

if TYPE_CHECKING:
    from .context import Context, StateStore

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Context pulls in the trading API (pydantic, ZeroMQ); the CLI should not pay for it on import.
    if name in ("Context", "StateStore"):
        from . import context

        return getattr(context, name)
    raise AttributeError(f"module 'host' has no attribute {name!r}")

__all__ = [
    "ConfigError",
    "Context",
    "ControlError",
    "NotRunningError",
    "ScheduleError",
    "StateError",
    "StateStore",
    "StopRequested",
    "StrategyFileError",
    "TradehostError",
    "__version__",
]
