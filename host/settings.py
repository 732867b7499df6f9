"""Per-strategy settings: the one model behind file literals and supervisor.toml.

A setting is written ``UPPER_CASE`` as a module-level literal in a strategy
file and ``lower_case`` in a ``[defaults]`` or ``[strategies.NAME]`` table.
Precedence, lowest first: built-in default, ``[defaults]``, the file,
``[strategies.NAME]``.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "SETTING_NAMES",
    "StrategySettings",
    "format_validation_error",
    "parse_memory",
    "resolve_settings",
    "whole_to_float",
]

_MEMORY_UNITS = {
    "": 1024**2,  # a bare number means MiB
    "b": 1,
    "k": 1024, "kb": 1024, "kib": 1024,
    "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1024**3, "gib": 1024**3,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_memory(value: int | float | str) -> int:
    """Return a memory size in bytes; bare numbers are MiB, strings may carry KB/MB/GB."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512 or '512MB', got a boolean")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"must be positive, got {value}")
        return int(value * _MEMORY_UNITS[""])
    match = _MEMORY_RE.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _MEMORY_UNITS:
        raise ValueError(f"expected a size such as 512 or '512MB', got {value!r}")
    size = int(float(match.group(1)) * _MEMORY_UNITS[unit])
    if size <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return size


def whole_to_float(value: Any) -> Any:
    """Let a whole number stand where strict mode wants a float (``TIMEOUT = 30``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class StrategySettings(BaseModel):
    """Everything the supervisor needs to know to schedule and confine one strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schedule: str | None = None
    """Cron (5 fields, or 6 with leading seconds), ``@continuous``, ``@manual`` or None (manual)."""
    timezone: str = "UTC"
    timeout: float | None = Field(default=3600.0, gt=0)
    """Wall-clock limit of one cron or manual run, seconds; None = unlimited. Not applied to @continuous."""
    grace: float = Field(default=10.0, ge=0)
    """Seconds between SIGTERM and SIGKILL when a run is stopped."""
    memory: int | None = 1024 * 1024**2
    """Resident memory limit of the run's process group, bytes (settings accept 512, '512MB', '1GiB')."""
    cpu_time: float | None = Field(default=None, gt=0)
    open_files: int | None = Field(default=1024, gt=0)
    max_procs: int = Field(default=64, gt=0)
    """Most processes the run's process group may hold at once."""
    overlap: Literal["skip", "replace"] = "skip"
    misfire_grace: float | None = Field(default=60.0, ge=0)
    """A fire later than this many seconds is dropped and recorded; None = run however late."""
    coalesce: bool = True
    enabled: bool = True
    """Whether a newly seen strategy starts enabled; afterwards start/stop is persisted."""
    restart_delay: float = Field(default=1.0, gt=0)
    restart_delay_max: float = Field(default=60.0, gt=0)
    max_failures: int = Field(default=5, gt=0)
    failure_window: float = Field(default=300.0, gt=0)
    broker: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """The configured broker this strategy's orders go to when an order names none; None means [router] default_broker."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Free-form parameters handed to the strategy as ``ctx.params``."""

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        return None if value is None else parse_memory(value)

    @field_validator("timeout", "cpu_time", "misfire_grace", "grace", "restart_delay", "restart_delay_max", "failure_window", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return whole_to_float(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @property
    def is_continuous(self) -> bool:
        return (self.schedule or "").strip() == "@continuous"


SETTING_NAMES: frozenset[str] = frozenset(StrategySettings.model_fields)


def format_validation_error(error: ValidationError) -> tuple[str, str]:
    """Return ``(field, message)`` for the first problem in a pydantic error, in plain words."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "settings"
    kind = first["type"]
    value = first.get("input")
    if kind == "extra_forbidden":
        return field, "unknown setting"
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind.endswith("_type") or kind == "literal_error":
        message = f"{message}, got {value!r}"
    return field, message


def resolve_settings(*layers: dict[str, Any]) -> StrategySettings:
    """Merge lower-case setting layers, later ones winning, and validate the result.

    ``params`` dictionaries are merged key by key rather than replaced.
    """
    merged: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "params" and isinstance(value, dict):
                params.update(value)
            else:
                merged[key] = value
    if params:
        merged["params"] = params
    return StrategySettings.model_validate(merged)
