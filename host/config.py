"""supervisor.toml: host options, ``[defaults]`` and ``[strategies.NAME]`` settings.

::

    [host]
    strategies_dir = "strategies"      # relative paths are relative to this file
    state_dir = "state"

    [defaults]
    timeout = 600

    [strategies.breakout]
    schedule = "*/5 * * * *"
    params = { symbol = "EURUSD" }

Every error names the file, the line and the dotted key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy.engine import make_url

from host.errors import ConfigError, ScheduleError
from host.router.config import DEFAULT_BROKERS, BrokerEntry, RouterConfig
from host.router.risk import RiskConfig
from host.settings import SETTING_NAMES, format_validation_error, resolve_settings, whole_to_float

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_SCRUB_ENV",
    "Config",
    "HostConfig",
    "load_config",
    "load_config_for_control",
    "locate_key",
    "parse_config",
]

CONFIG_ENV = "TRADEHOST_CONFIG"
DEFAULT_CONFIG_NAME = "supervisor.toml"

DEFAULT_SCRUB_ENV: tuple[str, ...] = (
    "NOTIFY_SOCKET", "WATCHDOG_*", "LISTEN_*", "TRADEHOST_SECRET*", "TRADEHOST_CREDENTIALS_KEY",
    "*_API_KEY", "*_API_SECRET", "*_SECRET", "*_SECRET_KEY", "*_TOKEN", "*_PASSWORD",
    "*_PASSPHRASE", "*_PRIVATE_KEY", "OANDA_*", "COINBASE_*", "BINANCE_*", "IBKR_*", "AWS_*",
)

_TOP_LEVEL = ("host", "defaults", "strategies", "router", "risk", "brokers")


class HostConfig(BaseModel):
    """The ``[host]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    strategies_dir: Path = Path("strategies")
    state_dir: Path = Path("state")
    database: str | None = None
    """SQLAlchemy URL; None means ``sqlite:///<state_dir>/tradehost.db``."""
    log_max_bytes: int = Field(default=10 * 1024**2, gt=0)
    log_backups: int = Field(default=5, ge=0)
    preload: list[str] = Field(default_factory=list)
    """Modules the fork server imports once before forking runs."""
    watch_interval: float = Field(default=0.5, gt=0)
    """Seconds between polls of the strategies folder."""
    debounce: float = Field(default=0.3, ge=0)
    """Seconds a changed file must stay unchanged before it is (re)loaded."""
    prelaunch: float = Field(default=0.2, ge=0, le=5)
    """Seconds before a cron slot that its run process is started; it waits for the slot to call run()."""
    scrub_env: list[str] = Field(default_factory=list)
    """More glob patterns of environment variables never passed to strategies, on top of DEFAULT_SCRUB_ENV."""
    history_days: float = Field(default=90.0, ge=0)
    """Finished runs and events older than this are deleted; 0 keeps everything."""
    shutdown_timeout: float = Field(default=30.0, gt=0)
    """Extra seconds, beyond the largest grace, the whole host may take to stop."""
    sandbox: bool = True
    """Confine run processes with Landlock where the kernel has it (host/sandbox.py)."""
    protect: list[Path] = Field(default_factory=list)
    """More paths run processes may not touch, on top of state/ and the database."""
    writable: list[Path] = Field(default_factory=list)
    """Folders in the (otherwise read-only) project folder that runs may write."""

    @field_validator("protect", "writable", mode="before")
    @classmethod
    def _paths(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"expected a list of path strings, got {value!r}")
        paths = [cls._path(item) for item in value]
        if any(str(path).strip() == "/" for path in paths):
            raise ValueError(f"'/' is the whole machine; name the folders runs may {'not touch' if info.field_name == 'protect' else 'write'}")
        return paths

    @field_validator("strategies_dir", "state_dir", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty")
            return Path(value).expanduser()
        if not isinstance(value, Path):
            raise ValueError(f"expected a path string, got {value!r}")
        return value

    @property
    def scrub_patterns(self) -> list[str]:
        """Every pattern removed from run environments: the defaults (never optional) and ours."""
        return [*DEFAULT_SCRUB_ENV, *(p for p in self.scrub_env if p not in DEFAULT_SCRUB_ENV)]

    @field_validator("watch_interval", "debounce", "prelaunch", "shutdown_timeout", "history_days", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return whole_to_float(value)

    @field_validator("database")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(f"expected an SQLAlchemy URL such as 'sqlite:///path.db', got {value!r}")
        return value

    @field_validator("preload")
    @classmethod
    def _modules(cls, value: list[str]) -> list[str]:
        for module in value:
            if not all(part.isidentifier() for part in module.split(".")):
                raise ValueError(f"not a module name: {module!r}")
        return value


@dataclass(frozen=True)
class Config:
    """A loaded supervisor.toml."""

    path: Path
    host: HostConfig
    defaults: dict[str, Any]
    strategies: dict[str, dict[str, Any]]
    router: RouterConfig = field(default_factory=RouterConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    brokers: dict[str, BrokerEntry] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.host.database or f"sqlite:///{self.host.state_dir / 'tradehost.db'}"

    @property
    def protected_paths(self) -> list[Path]:
        """What run processes may not touch: state/, this config file, a SQLite database kept elsewhere
        (with its journals), a router key file kept elsewhere, and ``[host] protect``."""
        paths = [self.host.state_dir, self.path]  # the config too: a run that could rewrite it could reload itself out of the sandbox
        database = sqlite_file(self.database_url)
        if database is not None:
            paths += [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
        if self.router.key_file is not None:
            paths.append(self.router.key_file)
        return [*paths, *self.host.protect]

    @property
    def logs_dir(self) -> Path:
        return self.host.state_dir / "logs"

    @property
    def router_endpoint(self) -> str:
        return self.router.endpoint or f"ipc://{self.host.state_dir / 'router.sock'}"

    @property
    def router_admin_socket(self) -> Path:
        return self.host.state_dir / "router-admin.sock"

    @property
    def router_lock_file(self) -> Path:
        return self.host.state_dir / "router.lock"

    @property
    def control_token_file(self) -> Path:
        """What every control command carries (host/control.py)."""
        return self.host.state_dir / "control.token"

    @property
    def router_admin_token_file(self) -> Path:
        """What every request on the router's admin socket carries (host/router/admin.py)."""
        return self.host.state_dir / "router-admin.token"

    @property
    def control_socket(self) -> Path:
        return self.host.state_dir / "control.sock"

    @property
    def run_socket(self) -> Path:
        return self.host.state_dir / "run.sock"

    @property
    def lock_file(self) -> Path:
        return self.host.state_dir / "supervisor.lock"

    def overrides(self, name: str) -> dict[str, Any]:
        """Return the ``[strategies.NAME]`` table, empty if there is none."""
        return self.strategies.get(name, {})

    def max_grace(self) -> float:
        """Return the largest ``grace`` set in or implied by supervisor.toml, seconds.

        A strategy file may set a larger GRACE itself; callers that know the
        loaded strategies should take those into account too.
        """
        base = resolve_settings(self.defaults).grace
        return max([base, *(float(table["grace"]) for table in self.strategies.values() if "grace" in table)])


# ---------------------------------------------------------------- locating keys

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _parse_key(line: str, pos: int) -> tuple[tuple[str, ...], int] | None:
    """Parse a (dotted, possibly quoted) key at ``pos``; return ``(parts, end)`` or None."""
    parts: list[str] = []
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line):
            return None
        char = line[pos]
        if char == '"':
            end = pos + 1
            while end < len(line) and line[end] != '"':
                end += 2 if line[end] == "\\" else 1
            if end >= len(line):
                return None
            raw = line[pos : end + 1]
            try:
                parts.append(json.loads(raw))
            except ValueError:
                parts.append(raw[1:-1])
            pos = end + 1
        elif char == "'":
            end = line.find("'", pos + 1)
            if end < 0:
                return None
            parts.append(line[pos + 1 : end])
            pos = end + 1
        else:
            match = _BARE_KEY.match(line, pos)
            if match is None:
                return None
            parts.append(match.group())
            pos = match.end()
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == ".":
            pos += 1
            continue
        return tuple(parts), pos


class _ValueScanner:
    """Tracks whether a value continues onto later lines (open brackets or multi-line strings)."""

    def __init__(self) -> None:
        self.depth = 0
        self.open_string: str | None = None

    @property
    def inside(self) -> bool:
        return self.depth > 0 or self.open_string is not None

    def feed(self, line: str, pos: int = 0) -> None:
        while pos < len(line):
            if self.open_string is not None:
                end = self._find_close(line, pos, self.open_string)
                if end < 0:
                    return
                pos = end + len(self.open_string)
                self.open_string = None
                continue
            char = line[pos]
            if char == "#":
                return
            if line.startswith(('"""', "'''"), pos):
                self.open_string = line[pos : pos + 3]
                pos += 3
            elif char in "\"'":
                end = self._find_close(line, pos + 1, char)
                pos = len(line) if end < 0 else end + 1
            else:
                if char in "[{":
                    self.depth += 1
                elif char in "]}":
                    self.depth = max(0, self.depth - 1)
                pos += 1

    @staticmethod
    def _find_close(line: str, pos: int, quote: str) -> int:
        escapes = quote[0] == '"'
        while pos < len(line):
            if escapes and line[pos] == "\\":
                pos += 2
                continue
            if line.startswith(quote, pos):
                return pos
            pos += 1
        return -1


def locate_key(text: str, dotted: tuple[str, ...]) -> int | None:
    """Return the 1-based line where the dotted key is set in TOML ``text``.

    Tracks ``[table]`` / ``[[array]]`` headers, quoted and dotted keys, and skips
    the inside of multi-line arrays, inline tables and strings. If the key itself
    is not found, returns the line of its closest enclosing table or key that is
    (e.g. the ``[strategies.foo]`` header); None if nothing matches.
    """
    if not dotted:
        return None
    table: tuple[str, ...] = ()
    scanner = _ValueScanner()
    best_line: int | None = None
    best_depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if scanner.inside:
            scanner.feed(line)
            continue
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        start = len(line) - len(stripped)
        if stripped.startswith("["):
            brackets = 2 if stripped.startswith("[[") else 1
            parsed = _parse_key(line, start + brackets)
            if parsed is None or not line.startswith("]" * brackets, parsed[1]):
                continue
            table = parsed[0]
            path = table
        else:
            parsed = _parse_key(line, start)
            if parsed is None or not line.startswith("=", parsed[1]):
                continue
            path = table + parsed[0]
            scanner.feed(line, parsed[1] + 1)
        if path == dotted:
            return number
        common = 0
        for ours, wanted in zip(path, dotted):
            if ours != wanted:
                break
            common += 1
        if common > best_depth:
            best_line, best_depth = number, common
    return best_line


# ---------------------------------------------------------------- parsing


def _format_key(parts: tuple[str, ...] | list[str]) -> str:
    """Return a dotted key as TOML would write it, quoting parts that are not bare keys."""
    return ".".join(part if _BARE_KEY.fullmatch(part) else json.dumps(part) for part in parts)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$|\s*\(at end of document\)$")


def _suggest(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_config(text: str, path: Path) -> Config:
    """Parse and validate supervisor.toml ``text``; ``path`` is used for messages and relative paths.

    Raises ConfigError naming the file, line and dotted key. Each
    ``[strategies.NAME]`` table is validated alone and on top of ``[defaults]``,
    and any ``schedule`` there is checked with :func:`host.schedule.parse_schedule`.
    """
    path = Path(os.path.abspath(path))
    where = str(path)

    def fail(parts: tuple[str, ...], message: str) -> ConfigError:
        key = _format_key(parts)
        return ConfigError(f"{key}: {message}", path=where, line=locate_key(text, parts), key=key)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = _TOML_POSITION.search(message)
        line: int | None = None
        if match:
            line = int(match.group(1)) if match.group(1) else max(1, len(text.splitlines()))
            message = message[: match.start()]
        raise ConfigError(f"TOML syntax error: {message}", path=where, line=line) from None

    for key in data:
        if key in SETTING_NAMES:
            raise fail((key,), "settings belong in [defaults] or [strategies.NAME]")
        if key not in _TOP_LEVEL:
            raise fail((key,), f"unknown top-level key{_suggest(key, _TOP_LEVEL)}; expected tables {', '.join(_TOP_LEVEL)}")
        if not isinstance(data[key], dict):
            raise fail((key,), f"must be a table ([{key}])")

    host_table = data.get("host", {})
    try:
        host = HostConfig.model_validate(host_table)
    except ValidationError as error:
        field, message = format_validation_error(error)
        name = field.split(".")[0]
        if message == "unknown setting":
            message = f"unknown key{_suggest(name, HostConfig.model_fields)}"
        raise fail(("host", name), message) from None
    base = path.parent
    host = host.model_copy(update={
        "strategies_dir": Path(os.path.abspath(base / host.strategies_dir)),
        "state_dir": Path(os.path.abspath(base / host.state_dir)),
        "protect": [Path(os.path.abspath(base / p)) for p in host.protect],
        "writable": [Path(os.path.abspath(base / p)) for p in host.writable],
    })

    defaults = dict(data.get("defaults", {}))
    _validate_settings(("defaults",), defaults, {}, fail)

    strategies: dict[str, dict[str, Any]] = {}
    for name, table in data.get("strategies", {}).items():
        if not isinstance(table, dict):
            raise fail(("strategies", name), f"must be a table ([strategies.{_format_key((name,))}])")
        _validate_settings(("strategies", name), table, defaults, fail)
        strategies[name] = dict(table)

    router = _validate_table(("router",), RouterConfig, data.get("router", {}), fail)
    if router.key_file is not None:
        router = router.model_copy(update={"key_file": Path(os.path.abspath(base / router.key_file))})
    risk = _validate_table(("risk",), RiskConfig, data.get("risk", {}), fail)
    brokers = _validate_brokers(data.get("brokers") or DEFAULT_BROKERS, fail)
    if router.default_broker not in brokers:
        raise fail(("router", "default_broker"), f"no [brokers.{router.default_broker}] table; configured brokers: {', '.join(sorted(brokers))}")
    return Config(path=path, host=host, defaults=defaults, strategies=strategies, router=router, risk=risk, brokers=brokers)


def _validate_table(prefix: tuple[str, ...], model: type[Any], table: Any, fail: Callable[[tuple[str, ...], str], ConfigError]) -> Any:
    """Validate one table with a pydantic model; the error names the dotted key that is wrong."""
    if not isinstance(table, dict):
        raise fail(prefix, "must be a table")
    try:
        return model.model_validate(table)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        loc = tuple(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            fields = getattr(model, "model_fields", {})
            message = f"unknown key{_suggest(loc[-1], fields) if len(loc) == 1 else ''}"
        raise fail((*prefix, *loc), message) from None


def _validate_brokers(tables: Any, fail: Callable[[tuple[str, ...], str], ConfigError]) -> dict[str, BrokerEntry]:
    from brokers.registry import options_class

    if not isinstance(tables, dict):
        raise fail(("brokers",), "must be a table of [brokers.NAME] tables")
    brokers = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise fail(("brokers", name), f"must be a table ([brokers.{_format_key((name,))}])")
        if not _BARE_KEY.fullmatch(name) or len(name) > 64:
            raise fail(("brokers", name), "a broker name is letters, digits, '_' and '-', at most 64 characters")
        options = dict(table)
        type_name = options.pop("type", None)
        if not isinstance(type_name, str):
            raise fail(("brokers", name), 'needs type = "paper" (or another installed broker type)')
        try:
            model = options_class(type_name)
        except ConfigError as error:
            raise fail(("brokers", name, "type"), error.reason) from None
        brokers[name] = BrokerEntry(name=name, type=type_name, options=_validate_table(("brokers", name), model, options, fail))
    return brokers


def _validate_settings(
    prefix: tuple[str, ...],
    table: Mapping[str, Any],
    defaults: Mapping[str, Any],
    fail: Callable[[tuple[str, ...], str], ConfigError],
) -> None:
    """Validate a settings table alone, then on top of ``defaults``; raise ``fail(...)``."""
    for key in table:
        if key not in SETTING_NAMES:
            raise fail((*prefix, key), f"unknown setting{_suggest(key, SETTING_NAMES)}")
    try:
        resolve_settings(dict(table))
        settings = resolve_settings(dict(defaults), dict(table))
    except ValidationError as error:
        field, message = format_validation_error(error)
        name = field.split(".")[0]
        owner = prefix if name in table or not defaults else ("defaults",)
        raise fail((*owner, name), message) from None
    if "schedule" in table or "timezone" in table:
        from host.schedule import parse_schedule  # lazily: only needed when a schedule is set here

        try:
            parse_schedule(settings.schedule, settings.timezone)
        except ScheduleError as error:
            raise fail((*prefix, "schedule" if "schedule" in table else "timezone"), str(error)) from None


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (absolute, as this process would open it); None for any other (pure)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(os.path.abspath(database))


def load_config(path: Path | None = None) -> Config:
    """Read and parse supervisor.toml.

    ``path`` None means ``$TRADEHOST_CONFIG`` or else ``./supervisor.toml``.
    Raises ConfigError if the file is missing, unreadable or invalid.
    """
    hint = ""
    if path is None:
        path = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)
        hint = f" (pass a path or set {CONFIG_ENV})"
    path = Path(os.path.abspath(Path(path).expanduser()))
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found{hint}", path=where) from None
    except OSError as error:
        raise ConfigError(f"cannot read config file: {error.strerror or error}", path=where) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"file is not valid UTF-8 (byte 0x{data[error.start]:02x})", path=where, line=line) from None
    return parse_config(text, path)


def load_config_for_control(path: Path | None = None) -> tuple[Config, ConfigError | None]:
    """Load the config for a control verb, which only needs to find the state directory.

    An operator who broke supervisor.toml must still be able to ask the
    running supervisor for its status: on a ConfigError this falls back to
    ``[host].state_dir`` as written (or the default) and returns the error too.
    A missing file is still an error.
    """
    try:
        return load_config(path), None
    except ConfigError as error:
        if error.line is None and "not found" in error.reason:
            raise
        where = Path(error.path) if error.path else Path(os.path.abspath(path or DEFAULT_CONFIG_NAME))
        state_dir: Any = "state"
        try:
            table = tomllib.loads(where.read_text(encoding="utf-8-sig")).get("host", {})
            if isinstance(table, dict) and isinstance(table.get("state_dir"), str):
                state_dir = table["state_dir"]
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            pass
        folder = Path(os.path.abspath(where.parent / Path(state_dir).expanduser()))
        host = HostConfig.model_construct(**{**HostConfig().model_dump(), "state_dir": folder})
        return Config(path=where, host=host, defaults={}, strategies={}), error
