"""host/settings.py: the per-strategy settings model."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from host.settings import SETTING_NAMES, format_validation_error, parse_memory, resolve_settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [(512, 512 * 1024**2), (0.5, 512 * 1024), ("512MB", 512 * 1024**2), ("2GiB", 2 * 1024**3), ("100 kb", 100 * 1024), ("64", 64 * 1024**2)],
)
def test_parse_memory(value: object, expected: int) -> None:
    assert parse_memory(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["12XB", "", "-5MB", 0, -1, True, "MB"])
def test_parse_memory_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        parse_memory(value)  # type: ignore[arg-type]


def test_defaults_and_precedence() -> None:
    settings = resolve_settings({"timeout": 600, "params": {"a": 1, "b": 2}}, {"timeout": 30}, {"params": {"b": 3}})
    assert settings.timeout == 30.0 and settings.params == {"a": 1, "b": 3}
    plain = resolve_settings()
    assert plain.timezone == "UTC" and plain.overlap == "skip" and plain.misfire_grace == 60.0 and plain.memory == 1024**3
    assert not plain.is_continuous and resolve_settings({"schedule": " @continuous "}).is_continuous


@pytest.mark.parametrize(
    ("layer", "field", "words"),
    [
        ({"timeout": "30"}, "timeout", "valid number, got '30'"),
        ({"overlap": "queue"}, "overlap", "got 'queue'"),
        ({"colour": 1}, "colour", "unknown setting"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown timezone 'Mars/Olympus'"),
        ({"grace": -1}, "grace", "greater than or equal to 0"),
        ({"coalesce": "yes"}, "coalesce", "got 'yes'"),
    ],
)
def test_validation_errors_name_field_and_problem(layer: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_settings(layer)
    name, message = format_validation_error(caught.value)
    assert name == field and words in message and "\n" not in message


def test_setting_names_are_the_model_fields() -> None:
    assert {"schedule", "timezone", "timeout", "memory", "params", "max_procs"} <= SETTING_NAMES
