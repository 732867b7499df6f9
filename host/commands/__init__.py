"""The control verbs, registered in one place.

Adding a verb means writing ``commands/<verb>.py`` with a ``COMMAND`` and
listing it here; the CLI and the control channel both read ``REGISTRY``.
"""

from __future__ import annotations

from . import reload, restart, start, status, stop, trigger
from .base import Command

__all__ = ["REGISTRY", "Command"]

REGISTRY: dict[str, Command] = {
    module.COMMAND.name: module.COMMAND for module in (status, start, stop, restart, trigger, reload)
}
