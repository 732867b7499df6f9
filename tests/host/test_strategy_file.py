"""Tests for host.strategy_file: discovery and ast-only reading of strategy files."""

from __future__ import annotations

import difflib
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from host.errors import ScheduleError, StrategyFileError
from host.settings import SETTING_NAMES, StrategySettings
from host.strategy_file import (
    StrategySource,
    StrategySpec,
    discover,
    load_strategy,
    parse_strategy_source,
)

FAKE = Path("/strategies/fake.py")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(
    tmp_path: Path,
    text: str,
    *,
    name: str = "strat",
    defaults: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> StrategySpec:
    folder = tmp_path / "strategies"
    write(folder / f"{name}.py", text)
    source = discover(folder)[name]
    return load_strategy(source, defaults=defaults or {}, overrides=overrides or {})


def load_error(tmp_path: Path, text: str, **kwargs: Any) -> StrategyFileError:
    with pytest.raises(StrategyFileError) as info:
        load(tmp_path, text, **kwargs)
    error = info.value
    assert "\n" not in str(error)
    return error


def parse_error(text: str) -> StrategyFileError:
    with pytest.raises(StrategyFileError) as info:
        parse_strategy_source(textwrap.dedent(text).lstrip("\n"), FAKE)
    error = info.value
    assert error.path == str(FAKE)
    assert "\n" not in str(error)
    return error


# ---------------------------------------------------------------- discover


def test_discover_finds_modules_and_packages_and_ignores_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "alpha.py", "def run(): pass\n")
    write(folder / "beta" / "__init__.py", "def run(): pass\n")
    write(folder / "beta" / "signals.py", "X = 1\n")
    write(folder / "_helper.py", "def run(): pass\n")
    write(folder / "_private" / "__init__.py", "def run(): pass\n")
    write(folder / ".hidden.py", "def run(): pass\n")
    write(folder / "__pycache__" / "__init__.py", "")
    write(folder / "__pycache__" / "alpha.cpython-311.pyc", "")
    write(folder / "notes.txt", "hello\n")
    write(folder / "README.md", "# readme\n")
    write(folder / "alpha.py~", "backup\n")
    write(folder / "data" / "prices.csv", "1,2\n")
    (folder / "empty_dir").mkdir()

    found = discover(folder)

    assert found == {
        "alpha": StrategySource("alpha", folder / "alpha.py", is_package=False),
        "beta": StrategySource("beta", folder / "beta" / "__init__.py", is_package=True),
    }
    assert list(found) == ["alpha", "beta"]


def test_discover_missing_directory_is_empty(tmp_path: Path) -> None:
    assert discover(tmp_path / "nope") == {}


def test_discover_does_not_recurse(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "group" / "inner.py", "def run(): pass\n")  # group has no __init__.py
    write(folder / "top.py", "def run(): pass\n")
    assert set(discover(folder)) == {"top"}


def test_non_identifier_name_is_returned_then_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "my-strat.py", "def run(): pass\n")
    write(folder / "2fast.py", "def run(): pass\n")
    found = discover(folder)
    assert set(found) == {"my-strat", "2fast"}
    for name in found:
        with pytest.raises(StrategyFileError) as info:
            load_strategy(found[name], defaults={}, overrides={})
        assert info.value.reason == f"name {name!r} is not a Python identifier"
        assert info.value.path == str(found[name].path)


def test_keyword_name_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "class.py", "def run(): pass\n")
    with pytest.raises(StrategyFileError, match="name 'class' is a Python keyword"):
        load_strategy(discover(folder)["class"], defaults={}, overrides={})


def test_the_name_of_external_orders_is_reserved(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "EXTERNAL.py", "def run(): pass\n")
    with pytest.raises(StrategyFileError, match="name 'EXTERNAL' is reserved for orders and positions no strategy placed"):
        load_strategy(discover(folder)["EXTERNAL"], defaults={}, overrides={})


def test_module_and_package_with_the_same_name_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "dup.py", "def run(): pass\n")
    write(folder / "dup" / "__init__.py", "def run(): pass\n")
    found = discover(folder)
    assert found["dup"] == StrategySource("dup", folder / "dup" / "__init__.py", is_package=True, conflict=folder / "dup.py")
    with pytest.raises(StrategyFileError) as info:
        load_strategy(found["dup"], defaults={}, overrides={})
    assert info.value.reason == "two definitions: dup.py and dup/__init__.py"


def test_resolving_the_conflict_changes_the_source(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "dup.py", "def run(): pass\n")
    write(folder / "dup" / "__init__.py", "def run(): pass\n")
    before = discover(folder)["dup"]
    (folder / "dup.py").unlink()
    after = discover(folder)["dup"]
    assert before != after
    assert after.conflict is None
    assert load_strategy(after, defaults={}, overrides={}).is_package


# ---------------------------------------------------------------- parse_strategy_source: settings


def test_settings_are_read_from_module_level_literals() -> None:
    text = textwrap.dedent(
        """
        from typing import Final
        SYMBOL = "EURUSD"
        SCHEDULE = "*/5 * * * *"
        TIMEOUT: float = 30
        MEMORY = "512MB"
        OVERLAP: Final = "replace"
        COALESCE = False
        CPU_TIME = None
        PARAMS = {"symbols": ["EURUSD", "GBPUSD"], "size": -1.5}
        LOOKBACK = 20

        def run(ctx):
            pass
        """
    )
    settings, takes_ctx, is_async = parse_strategy_source(text, FAKE)
    assert settings == {
        "schedule": "*/5 * * * *",
        "timeout": 30,
        "memory": "512MB",
        "overlap": "replace",
        "coalesce": False,
        "cpu_time": None,
        "params": {"symbols": ["EURUSD", "GBPUSD"], "size": -1.5},
    }
    assert (takes_ctx, is_async) == (True, False)


def test_every_setting_name_is_recognised() -> None:
    lines = [f"{name.upper()} = None" for name in sorted(SETTING_NAMES)]
    settings, _, _ = parse_strategy_source("\n".join(lines) + "\ndef run(): pass\n", FAKE)
    assert settings == {name: None for name in SETTING_NAMES}


def test_settings_inside_blocks_and_functions_are_ignored() -> None:
    settings, _, _ = parse_strategy_source(
        textwrap.dedent(
            """
            import os
            if os.environ.get("FAST"):
                TIMEOUT = 5
            try:
                SCHEDULE = os.environ["SCHEDULE"]
            except KeyError:
                pass
            def run():
                SCHEDULE = "* * * * *"
                GRACE = compute()
            class Helper:
                TIMEOUT = 1
            """
        ),
        FAKE,
    )
    assert settings == {}


def test_bare_annotation_is_not_a_setting() -> None:
    settings, _, _ = parse_strategy_source("TIMEOUT: float\nTIMEOUT = 3\ndef run(): pass\n", FAKE)
    assert settings == {"timeout": 3}


@pytest.mark.parametrize(
    "name",
    ["SYMBOL", "LOOKBACK", "MAX_POSITION", "RISK_PER_TRADE", "TIMEOUT_SECONDS_FOR_BROKER", "API_URL", "SIZE", "X", "CPU", "TZ"],
)
def test_user_constants_are_allowed(name: str) -> None:
    # Not vacuous: the name really is far from every setting under the rule used.
    assert not difflib.get_close_matches(name, [n.upper() for n in SETTING_NAMES], n=1, cutoff=0.8)
    settings, _, _ = parse_strategy_source(f'{name} = "EURUSD"\ndef run(): pass\n', FAKE)
    assert settings == {}


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("SCHEDUEL", "SCHEDULE"),
        ("TIMEOTU", "TIMEOUT"),
        ("TIME_OUT", "TIMEOUT"),
        ("PARAM", "PARAMS"),
        ("ENABLE", "ENABLED"),
        ("TIMEZONES", "TIMEZONE"),
        ("MAX_PROC", "MAX_PROCS"),
        ("MISFIRE_GRAC", "MISFIRE_GRACE"),
    ],
)
def test_misspelt_setting_is_rejected_with_suggestion(name: str, suggestion: str) -> None:
    error = parse_error(f"""
        SYMBOL = 1

        {name} = 5
        def run(): pass
    """)
    assert error.line == 3
    assert error.reason == f"unknown setting {name} (did you mean {suggestion}?)"


def test_misspelt_setting_by_augmented_assignment_is_rejected() -> None:
    error = parse_error("TIMEOTU = 1\nTIMEOTU += 1\ndef run(): pass\n")
    assert error.line == 1


def test_lower_case_names_are_never_settings() -> None:
    settings, _, _ = parse_strategy_source('schedule = "x"\ntimeotu = 3\ndef run(): pass\n', FAKE)
    assert settings == {}


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ('import os\nSCHEDULE = os.environ["S"]\ndef run(): pass\n', 2, "SCHEDULE must be a literal"),
        ("TIMEOUT = 10 * 60\ndef run(): pass\n", 1, "TIMEOUT must be a literal"),
        ('X = 1\nPARAMS = {"a": X}\ndef run(): pass\n', 2, "PARAMS must be a literal"),
        ('SCHEDULE = f"*/{5} * * * *"\ndef run(): pass\n', 1, "SCHEDULE must be a literal"),
        ("GRACE: float = float(3)\ndef run(): pass\n", 1, "GRACE must be a literal"),
        ("TIMEOUT = 1\nX = 2\nTIMEOUT = 3\ndef run(): pass\n", 3, "TIMEOUT set twice (lines 1 and 3)"),
        ("TIMEOUT = 1\nTIMEOUT: int = 3\ndef run(): pass\n", 2, "TIMEOUT set twice (lines 1 and 2)"),
        ("TIMEOUT = GRACE = 1\nGRACE = 2\ndef run(): pass\n", 2, "GRACE set twice (lines 1 and 2)"),
        ("TIMEOUT, GRACE = 1, 2\ndef run(): pass\n", 1, "TIMEOUT must be assigned on its own (TIMEOUT = <literal>)"),
        ("TIMEOUT = 1\nTIMEOUT += 1\ndef run(): pass\n", 2, "TIMEOUT must be a literal, not an augmented assignment"),
        ("from common import TIMEOUT\ndef run(): pass\n", 1, "TIMEOUT must be a literal in the strategy file, not imported"),
        ("import PARAMS\ndef run(): pass\n", 1, "PARAMS must be a literal in the strategy file, not imported"),
        ("def SCHEDULE(): pass\ndef run(): pass\n", 1, "SCHEDULE must be a literal, not a function"),
    ],
)
def test_bad_setting_assignments(source: str, line: int, reason: str) -> None:
    error = parse_error(source)
    assert (error.line, error.reason) == (line, reason)
    assert str(error) == f"{FAKE}:{line}: {reason}"


def test_literal_tuple_and_set_values_are_literals() -> None:
    settings, _, _ = parse_strategy_source('PARAMS = {"pair": ("EUR", "USD"), "days": {1, 2}}\ndef run(): pass\n', FAKE)
    assert settings == {"params": {"pair": ("EUR", "USD"), "days": {1, 2}}}


# ---------------------------------------------------------------- parse_strategy_source: syntax


def test_syntax_error_names_its_line() -> None:
    error = parse_error("""
        SCHEDULE = "* * * * *"

        def run(ctx)
            pass
    """)
    assert error.line == 3
    assert error.reason.startswith("syntax error: ")
    assert str(error).startswith(f"{FAKE}:3: syntax error: ")


def test_indentation_error_names_its_line() -> None:
    error = parse_error("X = 1\ndef run():\npass\n")
    assert error.line == 3
    assert error.reason.startswith("syntax error: expected an indented block")


def test_null_byte_is_a_syntax_error() -> None:
    with pytest.raises(StrategyFileError, match="syntax error"):
        parse_strategy_source("X = 1\x00\ndef run(): pass\n", FAKE)


def test_compiler_warnings_do_not_reject_a_file() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings, _, _ = parse_strategy_source('PATTERN = "\\d+"\nTIMEOUT = 5\ndef run(): pass\n', FAKE)
    assert settings == {"timeout": 5}


# ---------------------------------------------------------------- parse_strategy_source: run


@pytest.mark.parametrize(
    ("source", "takes_ctx", "is_async"),
    [
        ("def run(ctx): pass", True, False),
        ("def run(): pass", False, False),
        ("async def run(ctx): pass", True, True),
        ("async def run(): pass", False, True),
        ("def run(ctx=None): pass", True, False),
        ("def run(ctx, /): pass", True, False),
        ("def run(ctx, extra=1, *, flag=False): pass", True, False),
        ("def run(*args): pass", True, False),
        ("def run(**kwargs): pass", False, False),
        ("def run(*, flag=False): pass", False, False),
        ("run = lambda ctx: None", True, False),
        ("run = lambda: None", False, False),
        ("import functools\n@functools.lru_cache\ndef run(): pass", False, False),
        # run bound other than by def: assumed to take ctx, synchronous
        ("from .core import run", True, False),
        ("from core import main as run", True, False),
        ("import run", True, False),
        ("from .core import *", True, False),
        ("class run:\n    def __init__(self, ctx): pass", True, False),
        ("def main(): pass\nrun = main", True, False),
        ("async def main(): pass\nrun = wrap(main)", True, False),
        # the last binding counts
        ("def run(): pass\nasync def run(ctx): pass", True, True),
        ("from x import run\ndef run(): pass", False, False),
        ("def run(): pass\nfrom x import *", False, False),
        # bound only conditionally: not inspected
        ("try:\n    from fast import run\nexcept ImportError:\n    def run(): pass", True, False),
        ("import sys\nif sys.platform == 'linux':\n    def run(a, b): pass", True, False),
    ],
)
def test_run_detection(source: str, takes_ctx: bool, is_async: bool) -> None:
    assert parse_strategy_source(source + "\n", FAKE)[1:] == (takes_ctx, is_async)


@pytest.mark.parametrize(
    "source",
    [
        "X = 1\n",
        "",
        "def main(ctx): pass\n",
        "def main():\n    def run(): pass\n",
        "class Strategy:\n    def run(self, ctx): pass\n",
        "from x import run_fast\n",
        "from x import run as go\n",
        "RUN = 1\n",
    ],
)
def test_missing_run_is_rejected(source: str) -> None:
    error = parse_error(source)
    assert error.reason == "no run() function"
    assert error.line is None


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("X = 1\n\ndef run(a, b): pass\n", 3, "run() requires 2 positional parameters (a, b); it may take at most one (ctx)"),
        ("async def run(a, /, b, c=1): pass\n", 1, "run() requires 2 positional parameters (a, b); it may take at most one (ctx)"),
        ("def run(ctx, *, symbol): pass\n", 1, "run() has required keyword-only parameters (symbol); it may take at most one positional parameter (ctx)"),
        ("def run(*, a, b=1, c): pass\n", 1, "run() has required keyword-only parameters (a, c); it may take at most one positional parameter (ctx)"),
        ("run = lambda a, b: None\n", 1, "run() requires 2 positional parameters (a, b); it may take at most one (ctx)"),
        ("import os\n@decorate\ndef run(a, b): pass\n", 3, "run() requires 2 positional parameters (a, b); it may take at most one (ctx)"),
        ("run = 5\n", 1, "run must be a function, not a literal"),
        ('run = "main"\n', 1, "run must be a function, not a literal"),
    ],
)
def test_bad_run_signatures(source: str, line: int, reason: str) -> None:
    error = parse_error(source)
    assert (error.line, error.reason) == (line, reason)


# ---------------------------------------------------------------- never executed


def test_the_file_is_never_executed(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    text = f"""
        import sys
        open({str(sentinel)!r}, "w").write("executed")
        sys.modules.clear()
        raise SystemExit(3)
        TIMEOUT = 12
        def run(ctx):
            open({str(sentinel)!r}, "w").write("run")
    """
    settings, takes_ctx, _ = parse_strategy_source(textwrap.dedent(text), FAKE)
    spec = load(tmp_path, text, name="boom")
    assert settings == {"timeout": 12}
    assert takes_ctx
    assert spec.settings.timeout == 12.0
    assert not sentinel.exists()
    assert "boom" not in sys.modules


def test_a_package_is_never_executed(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    folder = tmp_path / "strategies"
    write(folder / "pkg" / "__init__.py", "from .boom import run\nSCHEDULE = '@manual'\n")
    write(folder / "pkg" / "boom.py", f"open({str(sentinel)!r}, 'w')\nraise SystemExit(3)\ndef run(): pass\n")
    spec = load_strategy(discover(folder)["pkg"], defaults={}, overrides={})
    assert spec.settings.schedule == "@manual"
    assert not sentinel.exists()
    assert "pkg" not in sys.modules and "pkg.boom" not in sys.modules


# ---------------------------------------------------------------- load_strategy


def test_load_strategy_builds_a_spec(tmp_path: Path) -> None:
    from host.schedule import parse_schedule

    spec = load(
        tmp_path,
        """
        SCHEDULE = "*/5 * * * *"
        TIMEZONE = "Europe/London"
        SYMBOL = "EURUSD"

        async def run(ctx):
            pass
        """,
    )
    assert spec.name == "strat"
    assert spec.path == tmp_path / "strategies" / "strat.py"
    assert spec.is_package is False
    assert (spec.run_takes_ctx, spec.run_is_async) == (True, True)
    assert isinstance(spec.settings, StrategySettings)
    assert spec.settings.schedule == "*/5 * * * *"
    assert spec.settings.timezone == "Europe/London"
    assert spec.schedule == parse_schedule("*/5 * * * *", "Europe/London")
    assert spec.schedule != parse_schedule("*/5 * * * *", "UTC")


def test_file_without_settings_gets_built_in_defaults(tmp_path: Path) -> None:
    spec = load(tmp_path, "def run(): pass\n")
    assert spec.settings == StrategySettings()
    assert spec.run_takes_ctx is False


def test_package_strategy_with_relative_imports_is_valid(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(
        folder / "breakout" / "__init__.py",
        """
        from . import helpers
        from .signals import compute
        from ..shared import nothing  # never resolved: nothing is imported

        SCHEDULE = "0 * * * *"
        PARAMS = {"window": 20}

        def run(ctx):
            compute(helpers.window(ctx))
        """,
    )
    write(folder / "breakout" / "signals.py", "def compute(x): return x\n")
    write(folder / "breakout" / "helpers.py", "def window(ctx): return 20\n")
    source = discover(folder)["breakout"]
    spec = load_strategy(source, defaults={}, overrides={})
    assert spec.is_package is True
    assert spec.path == folder / "breakout" / "__init__.py"
    assert spec.settings.schedule == "0 * * * *"
    assert spec.settings.params == {"window": 20}
    assert spec.run_takes_ctx is True


def test_package_with_imported_run_is_valid(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    write(folder / "pkg" / "__init__.py", "from .core import run\nTIMEOUT = 5\n")
    write(folder / "pkg" / "core.py", "def run(): pass\n")
    spec = load_strategy(discover(folder)["pkg"], defaults={}, overrides={})
    assert (spec.run_takes_ctx, spec.run_is_async) == (True, False)
    assert spec.settings.timeout == 5.0


def test_precedence_defaults_file_overrides(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        TIMEOUT = 100
        GRACE = 20
        OVERLAP = "replace"
        def run(): pass
        """,
        defaults={"timeout": 50, "grace": 5, "max_procs": 8, "memory": "256MB"},
        overrides={"grace": 30, "memory": "2GB"},
    )
    assert spec.settings.timeout == 100.0  # file beats [defaults]
    assert spec.settings.grace == 30.0  # [strategies.NAME] beats the file
    assert spec.settings.max_procs == 8  # [defaults] beats built-in
    assert spec.settings.memory == 2 * 1024**3  # override beats defaults
    assert spec.settings.overlap == "replace"  # file only
    assert spec.settings.misfire_grace == StrategySettings().misfire_grace  # built-in


def test_params_are_merged_key_by_key(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        'PARAMS = {"b": 2, "c": 2}\ndef run(): pass\n',
        defaults={"params": {"a": 1, "b": 1}},
        overrides={"params": {"c": 3, "d": 3}},
    )
    assert spec.settings.params == {"a": 1, "b": 2, "c": 3, "d": 3}


@pytest.mark.parametrize(
    ("assignment", "reason"),
    [
        ('TIMEOUT = "30"', "TIMEOUT: Input should be a valid number, got '30'"),
        ("TIMEOUT = -1", "TIMEOUT: Input should be greater than 0"),
        ("MAX_PROCS = 2.5", "MAX_PROCS: Input should be a valid integer, got 2.5"),
        ('OVERLAP = "queue"', "OVERLAP: Input should be 'skip' or 'replace', got 'queue'"),
        ('MEMORY = "lots"', "MEMORY: expected a size such as 512 or '512MB', got 'lots'"),
        ('ENABLED = "yes"', "ENABLED: Input should be a valid boolean, got 'yes'"),
        ('TIMEZONE = "Mars/Olympus"', "TIMEZONE: unknown timezone 'Mars/Olympus'"),
        ("PARAMS = [1, 2]", "PARAMS: Input should be a valid dictionary, got [1, 2]"),
        ("SCHEDULE = 5", "SCHEDULE: Input should be a valid string, got 5"),
    ],
)
def test_wrong_type_names_the_setting_and_line(tmp_path: Path, assignment: str, reason: str) -> None:
    error = load_error(
        tmp_path,
        f"""
        import math
        SYMBOL = "EURUSD"

        {assignment}

        def run(): pass
        """,
        # [defaults] must not mask the file's mistake (params are merged, not replaced)
        defaults={"params": {"a": 1}},
    )
    path = tmp_path / "strategies" / "strat.py"
    assert (error.line, error.reason) == (4, reason)
    assert str(error) == f"{path}:4: {reason}"


def schedule_error(expression: str, timezone: str = "UTC") -> str:
    from host.schedule import parse_schedule

    with pytest.raises(ScheduleError) as info:
        parse_schedule(expression, timezone)
    return str(info.value)


def test_invalid_cron_is_reported_at_the_schedule_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'TIMEOUT = 5\n\nSCHEDULE = "61 * * * *"\ndef run(): pass\n')
    assert error.line == 3
    assert error.reason == f"SCHEDULE: {schedule_error('61 * * * *')}"
    assert "61" in error.reason


@pytest.mark.parametrize("expression", ["every minute", "* * *", "* * * * * * * *", "@hourlyish"])
def test_unparseable_schedules_are_rejected(tmp_path: Path, expression: str) -> None:
    error = load_error(tmp_path, f"X = 1\nSCHEDULE = {expression!r}\ndef run(): pass\n")
    assert error.line == 2
    assert error.reason == f"SCHEDULE: {schedule_error(expression)}"


def test_valid_schedules_load(tmp_path: Path) -> None:
    for expression in ["*/5 * * * *", "0 9 * * mon-fri", "@continuous", "@manual", None]:
        spec = load(tmp_path, f"SCHEDULE = {expression!r}\ndef run(): pass\n")
        assert spec.settings.schedule == expression


def test_unknown_timezone_is_reported_at_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'SCHEDULE = "0 9 * * *"\nTIMEZONE = "Europe/Atlantis"\ndef run(): pass\n')
    assert (error.line, error.reason) == (2, "TIMEZONE: unknown timezone 'Europe/Atlantis'")


def test_bad_value_from_supervisor_toml_names_the_toml_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, "TIMEOUT = 5\ndef run(): pass\n", overrides={"timeout": "soon"})
    assert error.line is None
    assert error.reason == "strategies.strat.timeout in supervisor.toml: Input should be a valid number, got 'soon'"

    error = load_error(tmp_path, "def run(): pass\n", defaults={"grace": "long"})
    assert error.line is None
    assert error.reason == "defaults.grace in supervisor.toml: Input should be a valid number, got 'long'"

    error = load_error(tmp_path, "def run(): pass\n", overrides={"timout": 5})
    assert error.reason == "strategies.strat.timout in supervisor.toml: unknown setting"


def test_bad_schedule_from_supervisor_toml_names_the_toml_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'SCHEDULE = "* * * * *"\ndef run(): pass\n', overrides={"schedule": "nope"})
    assert error.line is None
    assert error.reason == f"strategies.strat.schedule in supervisor.toml: {schedule_error('nope')}"


def test_file_errors_come_before_settings(tmp_path: Path) -> None:
    error = load_error(tmp_path, "SCHEDUEL = 'x'\nTIMEOUT = 'x'\n")
    assert error.reason == "unknown setting SCHEDUEL (did you mean SCHEDULE?)"


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "latin.py").write_bytes(b"X = 1\n# caf\xe9\ndef run(): pass\n")
    with pytest.raises(StrategyFileError) as info:
        load_strategy(discover(folder)["latin"], defaults={}, overrides={})
    assert (info.value.line, info.value.reason) == (2, "file is not valid UTF-8 (byte 0xe9)")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "bom.py").write_bytes(b"\xef\xbb\xbfTIMEOUT = 7\ndef run(): pass\n")
    assert load_strategy(discover(folder)["bom"], defaults={}, overrides={}).settings.timeout == 7.0


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    gone = StrategySource("gone", folder / "gone.py", is_package=False)
    with pytest.raises(StrategyFileError) as info:
        load_strategy(gone, defaults={}, overrides={})
    assert info.value.reason == "cannot read file: No such file or directory"
    (folder / "adir.py").mkdir(parents=True)
    with pytest.raises(StrategyFileError, match="cannot read file: Is a directory"):
        load_strategy(StrategySource("adir", folder / "adir.py", is_package=False), defaults={}, overrides={})


# ---------------------------------------------------------------- properties

_VALUES = {
    "timeout": st.floats(min_value=0.001, max_value=1e6) | st.integers(1, 10**6) | st.none(),
    "grace": st.floats(min_value=0, max_value=1e4),
    "max_procs": st.integers(1, 10_000),
    "open_files": st.integers(1, 10**6) | st.none(),
    "overlap": st.sampled_from(["skip", "replace"]),
    "coalesce": st.booleans(),
    "enabled": st.booleans(),
    "memory": st.integers(1, 64 * 1024) | st.sampled_from(["512MB", "1GiB", "100k"]),
    "params": st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=3),
        max_size=4,
    ),
}
_USER_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: n.lower() not in SETTING_NAMES
    and not difflib.get_close_matches(n, [s.upper() for s in SETTING_NAMES], n=1, cutoff=0.8)
)


@hyp_settings(max_examples=150, deadline=None)
@given(
    chosen=st.fixed_dictionaries({}, optional=_VALUES),
    constants=st.dictionaries(_USER_NAMES, st.integers(), max_size=4),
    annotated=st.booleans(),
)
def test_settings_round_trip(chosen: dict[str, Any], constants: dict[str, int], annotated: bool) -> None:
    lines = [f"{name} = {value!r}" for name, value in constants.items()]
    for key, value in chosen.items():
        lines.append(f"{key.upper()}{': object' if annotated else ''} = {value!r}")
    lines.append("def run(ctx): pass")
    settings, takes_ctx, _ = parse_strategy_source("\n".join(lines) + "\n", FAKE)
    assert settings == chosen
    assert takes_ctx
    StrategySettings.model_validate(settings)  # the generated values are valid, so the round trip is meaningful
