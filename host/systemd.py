"""systemd integration: sd_notify, the status line, child environments, the unit file.

``tradehost run`` is the foreground supervisor that systemd runs as a
``Type=notify`` service.  Everything here is stdlib only:

* :class:`Notifier` speaks the sd_notify protocol -- one ``AF_UNIX``
  ``SOCK_DGRAM`` datagram of newline-separated ``KEY=value`` fields sent to the
  socket named by ``NOTIFY_SOCKET``.  Without that variable it does nothing.
* :func:`status_line` turns per-state strategy counts into the ``STATUS=`` text
  that ``systemctl status`` shows.
* :func:`child_environment` is the environment strategy processes get, with
  ``NOTIFY_SOCKET``, ``WATCHDOG_*`` and credentials scrubbed out.
* :func:`render_unit` writes the ``.service`` file for :class:`UnitOptions`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "STATE_ORDER",
    "SYSTEMD_VARIABLES",
    "Notifier",
    "UnitOptions",
    "child_environment",
    "quote_exec_argv",
    "render_unit",
    "status_line",
]

log = logging.getLogger(__name__)

#: The variables systemd hands the main process that must never reach a child.
SYSTEMD_VARIABLES: tuple[str, ...] = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
)

#: The order states appear in :func:`status_line`.
STATE_ORDER: tuple[str, ...] = (
    "running",
    "starting",
    "stopping",
    "backoff",
    "idle",
    "stopped",
    "fatal",
    "invalid",
)

# A notification must never wedge the supervisor: a datagram send to a full
# receive queue blocks, so bound it.  socket.timeout is an OSError.
_SEND_TIMEOUT = 2.0


# --------------------------------------------------------------------------- #
# sd_notify
# --------------------------------------------------------------------------- #


class Notifier:
    """Speaks sd_notify to the socket named by NOTIFY_SOCKET; silently does nothing without it.

    ``environ`` defaults to :data:`os.environ` and is read once, here.  A
    ``NOTIFY_SOCKET`` beginning with ``@`` names a Linux abstract socket (the
    ``@`` becomes a NUL byte); otherwise it must be an absolute path.  Any other
    value (e.g. systemd's ``vsock:`` addresses) leaves the notifier disabled.

    Every sending method returns ``True`` when the datagram was sent and
    ``False`` otherwise; none of them raises on socket errors.  The first
    failure is logged as a warning, later ones only at debug level.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address: str | bytes | None = _notify_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = _positive_int(env.get("WATCHDOG_USEC"))
        raw_pid = env.get("WATCHDOG_PID")
        self._watchdog_pid_set = bool(raw_pid)
        self._watchdog_pid = _positive_int(raw_pid)
        self.enabled: bool = self._address is not None
        self._warned = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Notifier(address={self._address!r}, enabled={self.enabled})"

    # -- the protocol -------------------------------------------------------

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (each ``KEY=value``) joined by newlines as one datagram."""
        if self._address is None or not fields:
            return False
        data = "\n".join(fields).encode("utf-8", "surrogateescape")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(_SEND_TIMEOUT)
                sock.sendto(data, self._address)
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: OSError) -> None:
        with self._lock:
            first, self._warned = not self._warned, True
        if first:
            log.warning("sd_notify to %s failed: %s (further failures are not reported)",
                        _printable(self._address), exc)
        else:
            log.debug("sd_notify to %s failed: %s", _printable(self._address), exc)

    # -- messages -------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete: ``READY=1`` (+ ``STATUS=``) and ``MAINPID=``."""
        fields = ["READY=1"]
        if status is not None:
            fields.append(_status_field(status))
        fields.append(f"MAINPID={os.getpid()}")
        return self.send(*fields)

    def status(self, text: str) -> bool:
        """Set the free-form status ``systemctl status`` shows."""
        return self.send(_status_field(text))

    def reloading(self) -> bool:
        """A reload (SIGHUP) has begun; follow with :meth:`reloaded`.

        ``MONOTONIC_USEC`` is required with ``RELOADING=1`` by systemd >= 253
        (Type=notify-reload) and ignored by older versions.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def reloaded(self, status: str | None = None) -> bool:
        """The reload has finished: ``READY=1`` (+ ``STATUS=``)."""
        fields = ["READY=1"]
        if status is not None:
            fields.append(_status_field(status))
        return self.send(*fields)

    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        """Keep-alive ping; send one every :attr:`watchdog_interval` seconds."""
        return self.send("WATCHDOG=1")

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or ``None``.

        ``None`` when systemd set no watchdog, or when ``WATCHDOG_PID`` names a
        process other than this one (it is checked against the current pid on
        every access, so a forked child never inherits the duty).
        """
        if self._watchdog_usec is None:
            return None
        if self._watchdog_pid_set and self._watchdog_pid != os.getpid():
            return None
        return self._watchdog_usec / 2 / 1e6


def _notify_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8", "surrogateescape")
    if value.startswith("/"):
        return value
    log.debug("NOTIFY_SOCKET=%r is not a path or abstract socket; sd_notify disabled", value)
    return None


def _positive_int(value: str | None) -> int | None:
    if not value:
        return None
    try:
        number = int(value.strip(), 10)
    except ValueError:
        return None
    return number if number > 0 else None


def _status_field(text: str) -> str:
    # A newline would end the field and start a bogus one.
    return "STATUS=" + " ".join(str(text).splitlines())


def _printable(address: str | bytes | None) -> str:
    if isinstance(address, bytes):
        return "@" + address[1:].decode("utf-8", "replace")
    return str(address)


# --------------------------------------------------------------------------- #
# status line and child environment
# --------------------------------------------------------------------------- #


def status_line(counts: Mapping[str, int]) -> str:
    """``{"running": 7, "idle": 2, "invalid": 1}`` -> ``"7 running, 2 idle, 1 invalid"``.

    States appear in :data:`STATE_ORDER`; states not in it follow alphabetically.
    Zero (or negative) counts are omitted; ``"no strategies"`` when nothing is left.
    """
    known = [state for state in STATE_ORDER if state in counts]
    extra = sorted(state for state in counts if state not in STATE_ORDER)
    parts = [f"{counts[state]} {state}" for state in known + extra if counts[state] > 0]
    return ", ".join(parts) if parts else "no strategies"


def child_environment(environ: Mapping[str, str], scrub: Iterable[str]) -> dict[str, str]:
    """A copy of ``environ`` without the keys matching any fnmatch pattern in ``scrub``.

    Matching is case-sensitive (``fnmatchcase``).  A lone string is taken as
    one pattern, not as a sequence of one-character patterns.
    """
    patterns = (scrub,) if isinstance(scrub, str) else tuple(scrub)
    return {
        key: value
        for key, value in environ.items()
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
    }


# --------------------------------------------------------------------------- #
# unit file
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class UnitOptions:
    """What :func:`render_unit` needs to write ``tradehost.service``."""

    exec_start: Sequence[str]
    working_directory: Path
    timeout_stop_sec: int
    watchdog_sec: int = 30
    user: str | None = None
    description: str = "tradehost strategy supervisor"

    def __post_init__(self) -> None:
        if isinstance(self.exec_start, str):
            raise TypeError("exec_start is an argv sequence, not a string")
        argv = tuple(str(arg) for arg in self.exec_start)
        if not argv:
            raise ValueError("exec_start must name an executable")
        if not argv[0].startswith("/"):
            raise ValueError(f"exec_start[0] must be an absolute path, got {argv[0]!r}")
        if "$" in argv[0]:
            # systemd expands $ in argv but not in the executable path, so no
            # escaping makes both right.
            raise ValueError(f"exec_start[0] must not contain '$', got {argv[0]!r}")
        object.__setattr__(self, "exec_start", argv)

        workdir = Path(self.working_directory)
        if not workdir.is_absolute():
            raise ValueError(f"working_directory must be absolute, got {str(workdir)!r}")
        object.__setattr__(self, "working_directory", workdir)

        for name in ("timeout_stop_sec", "watchdog_sec"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        if self.timeout_stop_sec <= 0:
            raise ValueError(f"timeout_stop_sec must be positive, got {self.timeout_stop_sec}")
        if self.watchdog_sec < 0:
            raise ValueError(f"watchdog_sec must be >= 0 (0 disables), got {self.watchdog_sec}")

        _single_line("description", self.description)
        _single_line("working_directory", str(workdir))
        if self.user is not None:
            if not self.user or re.search(r"\s", self.user):
                raise ValueError(f"user must be a non-empty name without whitespace, got {self.user!r}")


def _single_line(name: str, value: str) -> None:
    if any(ch in value for ch in "\n\r\0"):
        raise ValueError(f"{name} must be a single line, got {value!r}")


# Arguments made only of these characters need no quoting in ExecStart=.
_SAFE_ARG = re.compile(r"[A-Za-z0-9_@+=:,./-]+")

_C_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _specifiers(text: str) -> str:
    """Escape unit-file specifiers: ``%`` -> ``%%``."""
    return text.replace("%", "%%")


def _quote_exec_word(arg: str) -> str:
    # $ never occurs in the executable (UnitOptions refuses it), so doubling it
    # is only ever needed -- and right -- in the arguments.
    text = _specifiers(arg).replace("$", "$$")
    if _SAFE_ARG.fullmatch(text):
        return text
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def quote_exec_argv(argv: Sequence[str]) -> str:
    """Quote ``argv`` for ``ExecStart=`` so systemd hands the process exactly ``argv``.

    Words needing it are double-quoted with C-style escapes (``\\\\``, ``\\"``,
    ``\\n`` ...); ``%`` becomes ``%%`` (specifiers) and ``$`` becomes ``$$``
    (environment expansion) in the arguments.  A ``;`` argument is quoted, so it
    is never taken as a command separator.
    """
    if not argv:
        raise ValueError("argv must not be empty")
    return " ".join(_quote_exec_word(arg) for arg in argv)


def render_unit(options: UnitOptions) -> str:
    """The text of the systemd service unit for ``options``."""
    service = [
        "[Service]",
        "# tradehost reports READY=1 over $NOTIFY_SOCKET once strategies are loaded.",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={quote_exec_argv(options.exec_start)}",
        "# SIGHUP makes the supervisor re-read its configuration (RELOADING=1 ... READY=1).",
        "ExecReload=/bin/kill -HUP $MAINPID",
        f"WorkingDirectory={_specifiers(str(options.working_directory))}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if options.user is not None:
        service.append(f"User={_specifiers(options.user)}")
    service += [
        "SyslogIdentifier=tradehost",
        "",
        "# KillMode=mixed: on stop, SIGTERM goes to the supervisor only, which stops",
        "# every strategy gracefully (each within its grace period).  Whatever is",
        "# left in the cgroup gets SIGKILL once the supervisor has exited, or when",
        "# TimeoutStopSec runs out.",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        "# TimeoutStopSec is above the longest strategy grace period, so a graceful",
        "# shutdown always finishes before systemd resorts to SIGKILL.",
        f"TimeoutStopSec={options.timeout_stop_sec}",
    ]
    if options.watchdog_sec:
        service += [
            "# The supervisor pings WATCHDOG=1 every WatchdogSec/2; a hung supervisor is",
            "# killed and, with Restart=on-failure, restarted.",
            f"WatchdogSec={options.watchdog_sec}",
        ]
    service += [
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "# Hardening that does not get in a trader's way.  PrivateTmp gives the",
        "# service its own /tmp: keep sockets meant for other processes elsewhere.",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "# Every run holds a few descriptors in the supervisor.",
        "LimitNOFILE=65536",
        "# Strategies run as child processes and may fork themselves.",
        "TasksMax=4096",
    ]
    lines = [
        "[Unit]",
        f"Description={_specifiers(options.description)}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        *service,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
