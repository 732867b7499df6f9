"""tradehost: a multi-process strategy host and scheduler for traders.

The public surface for strategy authors is small: the ``Context`` a strategy's
``run(ctx)`` receives, and ``StopRequested``, raised inside a run when the
supervisor stops it. Everything else is the host's own machinery.
"""

from __future__ import annotations

from .context import Context, StateStore
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

__version__ = "0.1.0"

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
