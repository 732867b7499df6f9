"""Find strategy files and read their settings without importing them.

The supervisor never executes strategy code: a file is parsed with :mod:`ast`
and only module-level literal assignments are read. Strategy code runs only in
the per-run child process.

A strategy is ``strategies/NAME.py`` or a package ``strategies/NAME/__init__.py``.
Settings are module-level ``UPPER_CASE = <literal>`` (or ``NAME: T = <literal>``)
statements whose lower-case form is in :data:`host.settings.SETTING_NAMES`;
assignments nested in ``if``/``try``/functions are ordinary code, not settings.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from host.errors import ScheduleError, StrategyFileError
from host.settings import SETTING_NAMES, StrategySettings, format_validation_error, resolve_settings

if TYPE_CHECKING:
    from host.schedule import Schedule

__all__ = [
    "StrategySource",
    "StrategySpec",
    "discover",
    "load_strategy",
    "parse_strategy_source",
]

_UPPER_SETTINGS: dict[str, str] = {name.upper(): name for name in SETTING_NAMES}
_MISSPELLING_CUTOFF = 0.8


@dataclass(frozen=True)
class StrategySource:
    """A strategy found on disk, not yet parsed."""

    name: str
    path: Path
    is_package: bool
    conflict: Path | None = None
    """The other definition (``NAME.py``) when ``NAME/`` also exists; such a source is invalid."""


@dataclass(frozen=True)
class StrategySpec:
    """A parsed, validated strategy ready to be scheduled."""

    name: str
    path: Path
    is_package: bool
    settings: StrategySettings
    run_takes_ctx: bool
    run_is_async: bool
    schedule: Schedule


@dataclass(frozen=True)
class _ParsedSource:
    settings: dict[str, Any]
    lines: dict[str, int]  # lower-case setting -> line where the file sets it
    run_takes_ctx: bool
    run_is_async: bool


# ---------------------------------------------------------------- discovery


def discover(strategies_dir: Path) -> dict[str, StrategySource]:
    """Return the strategies directly in ``strategies_dir``, sorted by name.

    ``NAME.py`` files and ``NAME/__init__.py`` packages count; names starting with
    ``_`` or ``.``, non-``.py`` files and directories without ``__init__.py`` are
    ignored. A missing directory yields ``{}``.

    Names that cannot be registered are still returned so that they can be
    reported by :func:`load_strategy`: a name that is not a Python identifier,
    and a name defined both as ``NAME.py`` and ``NAME/``, which is returned as
    the package (what Python itself would import) with ``conflict`` set to the
    ``NAME.py`` path.
    """
    try:
        entries = list(strategies_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    files: dict[str, Path] = {}
    packages: dict[str, Path] = {}
    for entry in entries:
        if entry.name.startswith(("_", ".")):
            continue
        if entry.suffix == ".py" and entry.is_file():
            files[entry.stem] = entry
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            packages[entry.name] = entry / "__init__.py"
    found: dict[str, StrategySource] = {}
    for name in sorted(files.keys() | packages.keys()):
        if name in packages:
            found[name] = StrategySource(name, packages[name], is_package=True, conflict=files.get(name))
        else:
            found[name] = StrategySource(name, files[name], is_package=False)
    return found


# ---------------------------------------------------------------- parsing


def parse_strategy_source(text: str, path: Path) -> tuple[dict[str, Any], bool, bool]:
    """Return ``(settings, run_takes_ctx, run_is_async)`` read from a strategy's source.

    ``settings`` holds the file's settings with lower-case keys, not yet
    validated. Pure: nothing is read or executed. Raises StrategyFileError.
    See :func:`_parse` for the rules.
    """
    parsed = _parse(text, path)
    return parsed.settings, parsed.run_takes_ctx, parsed.run_is_async


def _parse(text: str, path: Path) -> _ParsedSource:
    tree = _parse_tree(text, path)
    settings, lines = _read_settings(tree, path)
    takes_ctx, is_async = _read_run(tree, path)
    return _ParsedSource(settings, lines, takes_ctx, is_async)


def _parse_tree(text: str, path: Path) -> ast.Module:
    where = str(path)
    try:
        # The compiler may warn (e.g. invalid escapes); with warnings turned into
        # errors that would wrongly reject the file, and the user sees them at run time.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=where)
    except SyntaxError as error:
        message = (error.msg or "invalid syntax").splitlines()[0]
        raise StrategyFileError(f"syntax error: {message}", path=where, line=error.lineno) from None
    except ValueError as error:  # null bytes, on Python < 3.12
        raise StrategyFileError(f"syntax error: {error}", path=where) from None
    except (RecursionError, MemoryError):
        raise StrategyFileError("syntax error: expression nested too deeply", path=where) from None


def _bound_names(target: ast.expr) -> Iterator[tuple[str, bool]]:
    """Yield ``(name, alone)`` for names bound by an assignment target."""
    if isinstance(target, ast.Name):
        yield target.id, True
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            for name, _ in _bound_names(element):
                yield name, False
    elif isinstance(target, ast.Starred):
        for name, _ in _bound_names(target.value):
            yield name, False


def _read_settings(tree: ast.Module, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Collect module-level setting literals; reject non-literals, repeats and misspellings."""
    where = str(path)
    settings: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is None:  # a bare annotation binds nothing
                continue
            for target in targets:
                for name, alone in _bound_names(target):
                    if name in _UPPER_SETTINGS:
                        if not alone:
                            raise StrategyFileError(f"{name} must be assigned on its own ({name} = <literal>)", path=where, line=node.lineno)
                        key = _UPPER_SETTINGS[name]
                        if key in lines:
                            raise StrategyFileError(f"{name} set twice (lines {lines[key]} and {node.lineno})", path=where, line=node.lineno)
                        settings[key] = _literal(node.value, name, where)
                        lines[key] = node.lineno
                    else:
                        _check_spelling(name, node.lineno, where)
        elif isinstance(node, ast.AugAssign):
            for name, _ in _bound_names(node.target):
                if name in _UPPER_SETTINGS:
                    raise StrategyFileError(f"{name} must be a literal, not an augmented assignment", path=where, line=node.lineno)
                _check_spelling(name, node.lineno, where)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound in _UPPER_SETTINGS:
                    raise StrategyFileError(f"{bound} must be a literal in the strategy file, not imported", path=where, line=node.lineno)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in _UPPER_SETTINGS:
                raise StrategyFileError(f"{node.name} must be a literal, not a {'class' if isinstance(node, ast.ClassDef) else 'function'}", path=where, line=node.lineno)
    return settings, lines


def _literal(value: ast.expr, name: str, where: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise StrategyFileError(f"{name} must be a literal", path=where, line=value.lineno) from None


def _check_spelling(name: str, line: int, where: str) -> None:
    """Reject an UPPER_CASE constant that looks like a misspelt setting."""
    if not name.isupper():
        return
    close = difflib.get_close_matches(name, _UPPER_SETTINGS, n=1, cutoff=_MISSPELLING_CUTOFF)
    if close:
        raise StrategyFileError(f"unknown setting {name} (did you mean {close[0]}?)", path=where, line=line)


_COMPOUND = (ast.If, ast.Try, ast.TryStar, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While, ast.Match)


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield module-level statements in source order, entering if/try/with/for/while/match but not def/class."""
    for node in body:
        yield node
        if isinstance(node, _COMPOUND):
            blocks: list[list[ast.stmt]] = []
            if isinstance(node, ast.Match):
                blocks.extend(case.body for case in node.cases)
            else:
                blocks.append(node.body)
                blocks.append(getattr(node, "orelse", []))
                blocks.append(getattr(node, "finalbody", []))
                blocks.extend(handler.body for handler in getattr(node, "handlers", []))
            for block in blocks:
                yield from _module_statements(block)


def _run_binding(node: ast.stmt) -> ast.AST | None:
    """Return what ``node`` binds to ``run`` (a def, lambda, value or import), or None."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node if node.name == "run" else None
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None:
            return None
        for target in targets:
            for name, alone in _bound_names(target):
                if name == "run":
                    return node.value if alone else node
        return None
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if (alias.asname or alias.name.split(".")[0]) == "run" or alias.name == "*":
                return node
    return None


def _read_run(tree: ast.Module, path: Path) -> tuple[bool, bool]:
    """Find the module's ``run`` and return ``(takes_ctx, is_async)``.

    The last module-level binding of ``run`` counts. For ``def``/``async def``/
    ``lambda`` the signature is checked: at most one required positional
    parameter and no required keyword-only ones; it takes ``ctx`` if it accepts
    a positional argument. Decorators are assumed to keep the signature.
    A ``run`` bound any other way (import, class, call result), bound only
    inside a module-level ``if``/``try``/``with`` block, or possibly bound by
    ``from x import *`` is assumed to take ``ctx`` and be synchronous; the child
    runtime inspects the real object.
    """
    where = str(path)
    binding: ast.AST | None = None
    for node in tree.body:
        found = _run_binding(node)
        if found is not None and not _is_star_import(found):
            binding = found
    if binding is None:
        if any(_run_binding(node) is not None for node in _module_statements(tree.body)):
            return True, False
        raise StrategyFileError("no run() function", path=where)
    if isinstance(binding, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        takes_ctx = _check_signature(binding.args, binding.lineno, where)
        return takes_ctx, isinstance(binding, ast.AsyncFunctionDef)
    if isinstance(binding, (ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set)):
        raise StrategyFileError("run must be a function, not a literal", path=where, line=binding.lineno)
    return True, False


def _is_star_import(node: ast.AST) -> bool:
    return isinstance(node, ast.ImportFrom) and not any((alias.asname or alias.name) == "run" for alias in node.names)


def _check_signature(args: ast.arguments, line: int, where: str) -> bool:
    positional = [*args.posonlyargs, *args.args]
    required = positional[: len(positional) - len(args.defaults)]
    if len(required) > 1:
        names = ", ".join(a.arg for a in required)
        raise StrategyFileError(f"run() requires {len(required)} positional parameters ({names}); it may take at most one (ctx)", path=where, line=line)
    keyword_only = [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    if keyword_only:
        raise StrategyFileError(f"run() has required keyword-only parameters ({', '.join(keyword_only)}); it may take at most one positional parameter (ctx)", path=where, line=line)
    return bool(positional) or args.vararg is not None


# ---------------------------------------------------------------- loading


def _read_text(path: Path) -> str:
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StrategyFileError(f"cannot read file: {error.strerror or error}", path=where) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise StrategyFileError(f"file is not valid UTF-8 (byte 0x{data[error.start]:02x})", path=where, line=line) from None


EXTERNAL_OWNER = "EXTERNAL"
"""The router books orders and positions nobody here placed under this name (host.router.reconcile)."""


def _check_name(source: StrategySource) -> None:
    where = str(source.path)
    if not source.name.isidentifier():
        raise StrategyFileError(f"name {source.name!r} is not a Python identifier", path=where)
    if keyword.iskeyword(source.name):
        raise StrategyFileError(f"name {source.name!r} is a Python keyword", path=where)
    if source.name == EXTERNAL_OWNER:
        raise StrategyFileError(f"name {source.name!r} is reserved for orders and positions no strategy placed", path=where)
    if source.conflict is not None:
        raise StrategyFileError(f"two definitions: {source.name}.py and {source.name}/__init__.py", path=where)


def load_strategy(source: StrategySource, *, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> StrategySpec:
    """Read, parse and validate one strategy; raises StrategyFileError.

    ``defaults`` is the ``[defaults]`` table and ``overrides`` the
    ``[strategies.NAME]`` table of supervisor.toml (lower-case keys).
    Precedence, lowest first: built-in, ``defaults``, the file, ``overrides``.
    Errors in the file name the line of the setting; an invalid value that came
    from supervisor.toml (normally caught earlier by :mod:`host.config`) is
    reported against the strategy file with no line, naming the TOML key.
    """
    from host.schedule import parse_schedule  # imported lazily: parsing alone does not need it

    where = str(source.path)
    _check_name(source)
    parsed = _parse(_read_text(source.path), source.path)

    def origin(field: str) -> tuple[str, int | None]:
        """Return how to name ``field`` in a message and the file line, by layer that set it."""
        if field in overrides:
            return f"strategies.{source.name}.{field} in supervisor.toml", None
        if field in parsed.lines:
            return field.upper(), parsed.lines[field]
        if field in defaults:
            return f"defaults.{field} in supervisor.toml", None
        return field.upper(), None

    try:
        resolve_settings(parsed.settings)  # the file alone first, so its errors carry its line
        settings = resolve_settings(dict(defaults), parsed.settings, dict(overrides))
    except ValidationError as error:
        field, message = format_validation_error(error)
        label, line = origin(field.split(".")[0])
        raise StrategyFileError(f"{label}: {message}", path=where, line=line) from None

    try:
        schedule = parse_schedule(settings.schedule, settings.timezone)
    except ScheduleError as error:
        label, line = origin("schedule")
        if line is None and "schedule" not in overrides and "schedule" not in defaults:
            label, line = origin("timezone")
        raise StrategyFileError(f"{label}: {error}", path=where, line=line) from None

    return StrategySpec(
        name=source.name,
        path=source.path,
        is_package=source.is_package,
        settings=settings,
        run_takes_ctx=parsed.run_takes_ctx,
        run_is_async=parsed.run_is_async,
        schedule=schedule,
    )
