"""Adapter types by name: the built-in paper broker and a third-party type found through its entry point."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.base import BrokerAdapter
from brokers.paper.adapter import PaperBroker
from brokers.paper.options import PaperOptions
from brokers.registry import ENTRY_POINT_GROUP, adapter_class, adapter_types, options_class
from host.errors import ConfigError


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    """A real distribution on sys.path whose entry points name broker types (as `pip install` would leave it)."""
    (tmp_path / "acme_broker.py").write_text(textwrap.dedent("""
        from brokers.paper.adapter import PaperBroker

        class AcmeBroker(PaperBroker):
            type_name = "acme"

        class NotAnAdapter:
            pass
    """))
    info = tmp_path / "acme_broker-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broker\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme = acme_broker:AcmeBroker\nbogus = acme_broker:NotAnAdapter\nmissing = acme_broker:Nothing\npaper = acme_broker:AcmeBroker\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_broker", None)


def test_the_paper_broker_is_built_in() -> None:
    assert adapter_class("paper") is PaperBroker
    assert options_class("paper") is PaperOptions


def test_an_entry_point_adds_a_broker_type(installed: Path) -> None:
    cls = adapter_class("acme")
    assert issubclass(cls, BrokerAdapter) and cls.__name__ == "AcmeBroker"
    assert options_class("acme") is PaperOptions  # taken from the class itself
    assert adapter_types()["paper"] == "brokers.paper.adapter:PaperBroker"  # a built-in name cannot be taken over


def test_bad_entry_points_and_unknown_types_are_config_errors(installed: Path) -> None:
    with pytest.raises(ConfigError, match="not a BrokerAdapter subclass"):
        adapter_class("bogus")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        adapter_class("missing")
    with pytest.raises(ConfigError, match="unknown broker type 'nope'; known types: acme, binance, bogus, coinbase, ibkr, missing, oanda, paper"):
        adapter_class("nope")
