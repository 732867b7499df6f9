"""The exceptions tradehost raises, one tree rooted at ``TradehostError``.

    TradehostError
    ├── ConfigError           supervisor.toml is unreadable or wrong (names key and line)
    ├── StrategyFileError     a strategy file cannot be registered (names file and line)
    ├── ScheduleError         a schedule expression or timezone is invalid
    ├── ControlError          a control-channel request failed (carries a code)
    │   └── NotRunningError   no supervisor answers on the control socket
    └── StateError            ctx.state refused a key or value, or could not persist it

    StopRequested (BaseException)  raised inside a strategy when it is asked to stop

Every message is one line and names what was wrong.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ControlError",
    "NotRunningError",
    "ScheduleError",
    "StateError",
    "StopRequested",
    "StrategyFileError",
    "TradehostError",
]


class TradehostError(Exception):
    """Base class of every error tradehost raises on purpose."""


class ConfigError(TradehostError):
    """supervisor.toml (or an override) is invalid."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, key: str | None = None) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.reason = message
        where = path or "config"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class StrategyFileError(TradehostError):
    """A strategy file cannot be registered; the strategy becomes ``invalid``."""

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}")


class ScheduleError(TradehostError, ValueError):
    """A schedule expression or timezone cannot be used."""


class ControlError(TradehostError):
    """A control request was refused; ``code`` is machine-readable."""

    def __init__(self, message: str, *, code: str = "ERROR") -> None:
        self.code = code
        super().__init__(message)


class NotRunningError(ControlError):
    """No supervisor is listening for this configuration."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="NOT_RUNNING")


class StateError(TradehostError):
    """``ctx.state`` refused a key or value, or could not persist it."""


class StopRequested(BaseException):
    """Raised in a strategy's main thread when the supervisor asks it to stop.

    It derives from BaseException, like KeyboardInterrupt, so that a broad
    ``except Exception`` in strategy code does not swallow it while ``finally``
    blocks and context managers still run.
    """
