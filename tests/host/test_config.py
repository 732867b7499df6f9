"""Tests for host.config: supervisor.toml parsing, validation and key location."""

from __future__ import annotations

import json
import os
import string
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from host.config import DEFAULT_SCRUB_ENV, Config, HostConfig, load_config, locate_key, parse_config, sqlite_file
from host.errors import ConfigError, ScheduleError

SPEC_SCRUB_ENV = [
    "NOTIFY_SOCKET", "WATCHDOG_*", "LISTEN_*", "TRADEHOST_SECRET*", "TRADEHOST_CREDENTIALS_KEY", "*_API_KEY", "*_API_SECRET", "*_SECRET",
    "*_SECRET_KEY", "*_TOKEN", "*_PASSWORD", "*_PASSPHRASE", "*_PRIVATE_KEY", "OANDA_*", "COINBASE_*",
    "BINANCE_*", "IBKR_*", "AWS_*",
]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write_config(directory: Path, text: str, name: str = "supervisor.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> ConfigError:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.path == str(path)
    assert "\n" not in str(error)
    return error


# ---------------------------------------------------------------- defaults and paths


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    config = load_config(path)
    assert config.path == path
    assert config.host.strategies_dir == tmp_path / "strategies"
    assert config.host.state_dir == tmp_path / "state"
    assert config.host.database is None
    assert config.database_url == f"sqlite:///{tmp_path}/state/tradehost.db"
    assert config.host.log_max_bytes == 10 * 1024 * 1024
    assert config.host.log_backups == 5
    assert config.host.preload == []
    assert config.host.watch_interval == 0.5
    assert config.host.debounce == 0.3
    assert config.host.shutdown_timeout == 30.0
    assert config.host.scrub_env == []
    assert config.host.scrub_patterns == SPEC_SCRUB_ENV == list(DEFAULT_SCRUB_ENV)
    assert config.host.prelaunch == 0.2 and config.host.history_days == 90.0
    assert config.defaults == {}
    assert config.strategies == {}
    assert config.logs_dir == tmp_path / "state" / "logs"
    assert config.control_socket == tmp_path / "state" / "control.sock"
    assert config.run_socket == tmp_path / "state" / "run.sock"
    assert config.lock_file == tmp_path / "state" / "supervisor.lock"
    assert config.max_grace() == 10.0


def test_full_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [host]
        strategies_dir = "/opt/strats"
        state_dir = "/var/lib/tradehost"
        database = "postgresql+psycopg://u@db/trade"
        log_max_bytes = 1000
        log_backups = 0
        preload = ["numpy", "pandas.core.api"]
        watch_interval = 2
        debounce = 0
        scrub_env = ["MY_SECRET"]
        shutdown_timeout = 5.5

        [defaults]
        timeout = 600
        memory = "2GB"
        params = { account = "paper" }

        [strategies.breakout]
        schedule = "*/5 * * * *"
        timezone = "America/New_York"
        params = { symbol = "EURUSD" }

        [strategies.feed]
        schedule = "@continuous"
        grace = 45
        """,
    )
    config = load_config(path)
    assert config.host == HostConfig(
        strategies_dir=Path("/opt/strats"),
        state_dir=Path("/var/lib/tradehost"),
        database="postgresql+psycopg://u@db/trade",
        log_max_bytes=1000,
        log_backups=0,
        preload=["numpy", "pandas.core.api"],
        watch_interval=2.0,
        debounce=0.0,
        scrub_env=["MY_SECRET"],
        shutdown_timeout=5.5,
    )
    assert config.database_url == "postgresql+psycopg://u@db/trade"
    assert config.host.scrub_patterns == [*DEFAULT_SCRUB_ENV, "MY_SECRET"], "scrub_env adds to the defaults, never replaces them"
    assert config.logs_dir == Path("/var/lib/tradehost/logs")
    assert config.defaults == {"timeout": 600, "memory": "2GB", "params": {"account": "paper"}}
    assert config.strategies == {
        "breakout": {"schedule": "*/5 * * * *", "timezone": "America/New_York", "params": {"symbol": "EURUSD"}},
        "feed": {"schedule": "@continuous", "grace": 45},
    }
    assert config.overrides("breakout") == config.strategies["breakout"]
    assert config.overrides("nothing") == {}
    assert config.max_grace() == 45.0


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, ""))
    with pytest.raises(Exception):
        config.host.log_backups = 3  # type: ignore[misc]
    with pytest.raises(Exception):
        config.path = tmp_path  # type: ignore[misc]


def test_max_grace_uses_defaults_and_overrides(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, "[defaults]\ngrace = 20\n")).max_grace() == 20.0
    assert load_config(write_config(tmp_path, "[defaults]\ngrace = 2\n[strategies.a]\ngrace = 3\n")).max_grace() == 3.0
    assert load_config(write_config(tmp_path, "[defaults]\ngrace = 2\n[strategies.a]\ntimeout = 3\n")).max_grace() == 2.0
    assert load_config(write_config(tmp_path, "[strategies.a]\ngrace = 1\n")).max_grace() == 10.0


def test_relative_paths_are_resolved_against_the_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "etc" / "tradehost"
    path = write_config(conf, '[host]\nstrategies_dir = "strats"\nstate_dir = "../../var/state"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path(os.path.relpath(path, elsewhere)))
    assert config.path == path
    assert config.path.is_absolute()
    assert config.host.strategies_dir == conf / "strats"
    assert config.host.state_dir == tmp_path / "var" / "state"
    assert config.database_url == f"sqlite:///{tmp_path}/var/state/tradehost.db"


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write_config(tmp_path, '[host]\nstate_dir = "~/state"\n'))
    assert config.host.state_dir == tmp_path / "home" / "state"


def test_parse_config_is_pure_and_uses_the_given_path(tmp_path: Path) -> None:
    path = tmp_path / "never-written" / "supervisor.toml"
    config = parse_config('[host]\nstate_dir = "s"\n', path)
    assert isinstance(config, Config)
    assert config.path == path
    assert config.host.state_dir == tmp_path / "never-written" / "s"
    assert not path.parent.exists()


# ---------------------------------------------------------------- finding the file


def test_tradehost_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "conf", "[defaults]\ntimeout = 7\n", name="custom.toml")
    write_config(tmp_path / "cwd", "[defaults]\ntimeout = 99\n")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("TRADEHOST_CONFIG", str(path))
    config = load_config()
    assert config.path == path
    assert config.defaults == {"timeout": 7}


def test_default_is_supervisor_toml_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, "[defaults]\ntimeout = 99\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEHOST_CONFIG", raising=False)
    config = load_config()
    assert config.path == tmp_path / "supervisor.toml"
    assert config.defaults == {"timeout": 99}
    monkeypatch.setenv("TRADEHOST_CONFIG", "")  # empty means unset
    assert load_config().path == tmp_path / "supervisor.toml"


def test_explicit_path_beats_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEHOST_CONFIG", str(tmp_path / "missing.toml"))
    path = write_config(tmp_path, "")
    assert load_config(path).path == path


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: config file not found"
    assert info.value.path == str(missing)

    monkeypatch.setenv("TRADEHOST_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == f"{missing}: config file not found (pass a path or set TRADEHOST_CONFIG)"


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file: Is a directory"):
        load_config(tmp_path)
    path = tmp_path / "bad.toml"
    path.write_bytes(b"[defaults]\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.reason) == (2, "file is not valid UTF-8 (byte 0xe9)")


# ---------------------------------------------------------------- errors


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """
        [host]
        state_dir = "state"

        [defaults]
        timeout =
        """,
    )
    assert error.line == 5
    assert error.reason == "TOML syntax error: Invalid value"
    assert str(error) == f"{tmp_path / 'supervisor.toml'}:5: TOML syntax error: Invalid value"


def test_toml_duplicate_key_names_the_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[defaults]\ntimeout = 1\n\ntimeout = 2\n")
    assert error.line == 4
    assert error.reason.startswith("TOML syntax error: ")


def test_toml_error_at_end_of_document(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[host]\npreload = ["a",\n  "b",\n')
    assert error.line == 3
    assert error.reason.startswith("TOML syntax error: ")


def test_unknown_top_level_key_names_the_line(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """
        # tradehost
        [host]
        state_dir = "state"

        [defaults]
        timeout = 5

        [strategy.foo]
        timeout = 3
        """,
    )
    assert (error.line, error.key) == (8, "strategy")
    assert error.reason == "strategy: unknown top-level key (did you mean strategies?); expected tables host, defaults, strategies, router, risk, brokers"
    assert str(error).startswith(f"{tmp_path / 'supervisor.toml'}:8: strategy: unknown top-level key")


def test_top_level_setting(tmp_path: Path) -> None:
    error = config_error(tmp_path, '# settings\ntimeout = 5\n[defaults]\ngrace = 1\n')
    assert (error.line, error.key) == (2, "timeout")
    assert error.reason == "timeout: settings belong in [defaults] or [strategies.NAME]"


def test_top_level_tables_must_be_tables(tmp_path: Path) -> None:
    error = config_error(tmp_path, 'strategies = "all"\n')
    assert (error.line, error.reason) == (1, "strategies: must be a table ([strategies])")


def test_unknown_strategy_setting_names_the_line(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """
        [strategies.bar]
        timeout = 5

        [strategies.foo]
        schedule = "* * * * *"
        timout = 3
        """,
    )
    assert (error.line, error.key) == (6, "strategies.foo.timout")
    assert error.reason == "strategies.foo.timout: unknown setting (did you mean timeout?)"


def test_wrong_type_message_format(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """
        [host]
        state_dir = "state"

        [defaults]
        timeout = 60

        [strategies.bar]
        timeout = 30

        [strategies.foo]
        schedule = "* * * * *"
        timeout = '30'
        """,
    )
    path = tmp_path / "supervisor.toml"
    assert str(error) == f"{path}:12: strategies.foo.timeout: Input should be a valid number, got '30'"
    assert (error.line, error.key) == (12, "strategies.foo.timeout")


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        ("[defaults]\ntimout = 1\n", 2, "defaults.timout", "unknown setting (did you mean timeout?)"),
        ("[defaults]\n\ngrace = -1\n", 3, "defaults.grace", "Input should be greater than or equal to 0"),
        ('[defaults]\noverlap = "queue"\n', 2, "defaults.overlap", "Input should be 'skip' or 'replace', got 'queue'"),
        ('[defaults]\nmemory = "lots"\n', 2, "defaults.memory", "expected a size such as 512 or '512MB', got 'lots'"),
        ("[defaults]\nparams = 5\n", 2, "defaults.params", "Input should be a valid dictionary, got 5"),
        ('[defaults]\ntimezone = "Mars/Olympus"\n', 2, "defaults.timezone", "unknown timezone 'Mars/Olympus'"),
        ("[strategies.a]\nenabled = 1\n", 2, "strategies.a.enabled", "Input should be a valid boolean, got 1"),
        ('[strategies.a]\nparams = { x = 1 }\nmax_procs = "8"\n', 3, "strategies.a.max_procs", "Input should be a valid integer, got '8'"),
        ("[strategies]\na = 3\n", 2, "strategies.a", "must be a table ([strategies.a])"),
        ('[host]\nwatch_interval = "fast"\n', 2, "host.watch_interval", "Input should be a valid number, got 'fast'"),
        ("[host]\nwatch_interval = 0\n", 2, "host.watch_interval", "Input should be greater than 0"),
        ('[host]\nstate_dirr = "x"\n', 2, "host.state_dirr", "unknown key (did you mean state_dir?)"),
        ("[host]\nstate_dir = 5\n", 2, "host.state_dir", "expected a path string, got 5"),
        ('[host]\nstate_dir = ""\n', 2, "host.state_dir", "must not be empty"),
        ('[host]\npreload = ["numpy", "not a module"]\n', 2, "host.preload", "not a module name: 'not a module'"),
        ("[host]\npreload = [1]\n", 2, "host.preload", "Input should be a valid string, got 1"),
        ('[host]\ndatabase = "trade.db"\n', 2, "host.database", "expected an SQLAlchemy URL such as 'sqlite:///path.db', got 'trade.db'"),
        ("[host]\nlog_backups = -1\n", 2, "host.log_backups", "Input should be greater than or equal to 0"),
        ("host = 3\n", 1, "host", "must be a table ([host])"),
    ],
)
def test_invalid_values(tmp_path: Path, text: str, line: int, key: str, reason: str) -> None:
    error = config_error(tmp_path, text)
    assert (error.line, error.key, error.reason) == (line, key, f"{key}: {reason}")


def test_quoted_strategy_names(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """
        [strategies.plain]
        timeout = 1

        [strategies."my strat"]
        grace = 1
        timout = 2
        """,
    )
    assert (error.line, error.key) == (6, 'strategies."my strat".timout')
    assert error.reason == 'strategies."my strat".timout: unknown setting (did you mean timeout?)'


def test_dotted_and_inline_keys_are_located(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[strategies]\nfoo.timeout = 1\nfoo.grace = 'x'\n")
    assert (error.line, error.key) == (3, "strategies.foo.grace")
    error = config_error(tmp_path, "[defaults]\ngrace = 1\n[strategies]\nfoo = { timeout = 1, timout = 2 }\n")
    assert (error.line, error.key) == (4, "strategies.foo.timout")


def schedule_error(expression: str, timezone: str = "UTC") -> str:
    from host.schedule import parse_schedule

    with pytest.raises(ScheduleError) as info:
        parse_schedule(expression, timezone)
    return str(info.value)


def test_invalid_schedule_is_caught_at_config_load(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[strategies.a]\ntimeout = 5\nschedule = "61 * * * *"\n')
    assert (error.line, error.key) == (3, "strategies.a.schedule")
    assert error.reason == f"strategies.a.schedule: {schedule_error('61 * * * *')}"
    error = config_error(tmp_path, '[defaults]\nschedule = "@sometimes"\n')
    assert (error.line, error.key) == (2, "defaults.schedule")
    assert error.reason == f"defaults.schedule: {schedule_error('@sometimes')}"


def test_table_errors_are_checked_on_top_of_defaults(tmp_path: Path) -> None:
    # Valid alone and with [defaults]: params are merged, other keys replaced.
    config = load_config(write_config(tmp_path, '[defaults]\nparams = { a = 1 }\n[strategies.x]\nparams = { b = 2 }\n'))
    assert config.strategies["x"] == {"params": {"b": 2}}
    # A wrong type in the table is still reported although [defaults] has a valid params.
    error = config_error(tmp_path, "[defaults]\nparams = { a = 1 }\n[strategies.x]\nparams = [1]\n")
    assert (error.line, error.key) == (4, "strategies.x.params")


def test_valid_values_pass(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            """
            [defaults]
            timeout = 1.5
            cpu_time = 10
            memory = 512
            open_files = 64
            max_procs = 4
            overlap = "replace"
            misfire_grace = 0
            coalesce = false
            enabled = false
            restart_delay = 2
            restart_delay_max = 30
            max_failures = 3
            failure_window = 60
            timezone = "Asia/Tokyo"
            schedule = "@manual"
            """,
        )
    )
    assert len(config.defaults) == 15


# ---------------------------------------------------------------- locate_key


LOCATE_TEXT = dedent(
    """
    # comment [defaults]
    top = 1

    [host]   # trailing comment
    state_dir = "x"   # state_dir = "y"
    preload = [
      "a",
      "b = 1",
      ["nested"],
    ]
    banner = \"\"\"
    [strategies.fake]
    timeout = 99
    \"\"\"
    literal = '''
    [strategies.fake2]
    '''

    [ strategies . "my strat" ]
    'quoted key' = 1
    inner.deep = 2

    [strategies.foo]
    timeout = 3
    params = { x = 1 }

    [[arr.items]]
    name = "one"
    """
)


@pytest.mark.parametrize(
    ("dotted", "line"),
    [
        (("top",), 2),
        (("host",), 4),
        (("host", "state_dir"), 5),
        (("host", "preload"), 6),
        (("host", "banner"), 11),
        (("host", "literal"), 15),
        (("strategies", "my strat"), 19),
        (("strategies", "my strat", "quoted key"), 20),
        (("strategies", "my strat", "inner", "deep"), 21),
        (("strategies", "my strat", "inner"), 21),
        (("strategies", "foo"), 23),
        (("strategies", "foo", "timeout"), 24),
        (("strategies", "foo", "params"), 25),
        (("strategies", "foo", "params", "x"), 25),  # inside an inline table: the key that holds it
        (("strategies", "foo", "grace"), 23),  # missing key: its table
        (("strategies", "fake"), 19),  # headers inside strings are not headers: nearest is [strategies...]
        (("arr", "items", "name"), 28),
        (("nothing",), None),
        ((), None),
    ],
)
def test_locate_key(dotted: tuple[str, ...], line: int | None) -> None:
    assert locate_key(LOCATE_TEXT, dotted) == line


def test_locate_text_is_valid_toml() -> None:
    data = tomllib.loads(LOCATE_TEXT)
    assert data["strategies"]["my strat"] == {"quoted key": 1, "inner": {"deep": 2}}
    assert "fake" not in data["strategies"]


_KEY = st.text(alphabet="abcxyz_-. \"'é1", min_size=1, max_size=8)
_VALUE = st.integers(-1000, 1000) | st.text(alphabet=string.ascii_letters + ' "\\[]=#.', max_size=6)


def _toml_key(key: str) -> str:
    bare = all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key, ensure_ascii=False)


@hyp_settings(max_examples=200, deadline=None)
@given(
    tables=st.dictionaries(_KEY, st.dictionaries(_KEY, _VALUE, min_size=1, max_size=4), min_size=1, max_size=4),
    decoys=st.booleans(),
)
def test_locate_key_finds_every_generated_key(tables: dict[str, dict[str, Any]], decoys: bool) -> None:
    lines: list[str] = []
    where: dict[tuple[str, ...], int] = {}
    for number, (table, keys) in enumerate(tables.items()):
        lines.append(f"[strategies.{_toml_key(table)}]")
        where[("strategies", table)] = len(lines)
        for key, value in keys.items():
            lines.append(f"{_toml_key(key)} = {json.dumps(value, ensure_ascii=False)}")
            where[("strategies", table, key)] = len(lines)
        if decoys:
            # A multi-line string and array holding text that looks like headers and keys.
            first_key = _toml_key(next(iter(keys)))
            lines += [f'q{number} = """', "[strategies.decoy]", f"{first_key} = 1", '"""']
            lines += [f"r{number} = [", "  [1, 2],", f"  {json.dumps(first_key + ' = 2', ensure_ascii=False)},", "]"]
        lines.append("")
    text = "\n".join(lines)
    data = tomllib.loads(text)  # the generated document is real TOML
    assert set(data["strategies"]) == set(tables)
    for dotted, line in where.items():
        assert locate_key(text, dotted) == line, (dotted, text)


def test_the_shipped_configuration_and_its_commented_broker_tables_are_valid() -> None:
    shipped = Path(__file__).resolve().parents[2] / "supervisor.toml"
    assert set(parse_config(shipped.read_text(), shipped).brokers) == {"paper"}
    lines = shipped.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [brokers."))
    uncommented = "\n".join(line.removeprefix("# ") for line in lines[start:] if line.startswith("# ") and not line.startswith("#  "))
    config = parse_config(shipped.read_text() + "\n" + uncommented + "\n", shipped)
    assert {name: entry.type for name, entry in config.brokers.items()} == {
        "paper": "paper", "fx": "oanda", "bn": "binance", "cb": "coinbase", "ib": "ibkr",
    }


def test_several_accounts_of_one_broker_type_side_by_side(tmp_path: Path) -> None:
    path = write_config(tmp_path, """
        [router]
        default_broker = "fx_practice"
        [brokers.fx_practice]
        type = "oanda"
        account_id = "101-004-1234567-001"
        [brokers.fx_live]
        type = "oanda"
        environment = "live"
        allow_live = true
        account_id = "001-004-7654321-001"
        base_url = "http://127.0.0.1:9"
    """)
    config = load_config(path)
    practice, live = config.brokers["fx_practice"].options, config.brokers["fx_live"].options
    assert (practice.environment, practice.account_id) == ("practice", "101-004-1234567-001")
    assert (live.environment, live.allow_live, live.base_url) == ("live", True, "http://127.0.0.1:9")


def test_runs_are_sandboxed_by_default_and_state_is_what_they_may_not_touch() -> None:
    config = parse_config("", Path("/srv/app/supervisor.toml"))
    assert config.host.sandbox is True
    assert config.protected_paths == [
        Path("/srv/app/state"), Path("/srv/app/supervisor.toml"), *(Path("/srv/app/state/tradehost.db" + s) for s in ("", "-wal", "-shm", "-journal")),
    ]


def test_protect_adds_paths_resolved_like_the_others_and_a_database_or_key_kept_elsewhere_is_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/trader")
    config = parse_config(textwrap.dedent("""
        [host]
        sandbox = false
        protect = ["~/.ssh", "secrets"]
        writable = ["data", "/var/out"]
        database = "sqlite:////var/lib/th/state.db"
        [router]
        key_file = "keys/router.key"
    """), Path("/srv/app/supervisor.toml"))
    assert config.host.sandbox is False
    assert config.router.key_file == Path("/srv/app/keys/router.key"), "relative to the config file, as every path"
    assert config.protected_paths == [
        Path("/srv/app/state"), Path("/srv/app/supervisor.toml"), Path("/var/lib/th/state.db"), Path("/var/lib/th/state.db-wal"), Path("/var/lib/th/state.db-shm"),
        Path("/var/lib/th/state.db-journal"), Path("/srv/app/keys/router.key"), Path("/home/trader/.ssh"), Path("/srv/app/secrets"),
    ]
    assert config.host.writable == [Path("/srv/app/data"), Path("/var/out")]


@pytest.mark.parametrize(("text", "message"), [
    ('protect = "secrets"', "host.protect: expected a list of path strings, got 'secrets'"),
    ('protect = ["ok", 3]', "host.protect: expected a path string, got 3"),
    ('protect = [" "]', "host.protect: must not be empty"),
    ('protect = ["/"]', "host.protect: '/' is the whole machine; name the folders runs may not touch"),
    ('writable = ["/"]', "host.writable: '/' is the whole machine; name the folders runs may write"),
    ('writable = "data"', "host.writable: expected a list of path strings, got 'data'"),
    ('sandbox = "yes"', "host.sandbox: Input should be a valid boolean"),
])
def test_bad_sandbox_settings_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f"[host]\n{text}\n", Path("/srv/app/supervisor.toml"))


def test_sqlite_file_of_a_url() -> None:
    assert sqlite_file("sqlite:////var/x.db") == Path("/var/x.db")
    assert sqlite_file("sqlite:///rel.db") == Path(os.path.abspath("rel.db"))
    assert sqlite_file("sqlite://") is None and sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@db/th") is None
