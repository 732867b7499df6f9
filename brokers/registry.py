"""Adapter types by name: the built-in ones and those other packages register through entry points."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from host.errors import ConfigError

from .base import AdapterOptions, BrokerAdapter

__all__ = ["ENTRY_POINT_GROUP", "adapter_class", "adapter_types", "options_class"]

ENTRY_POINT_GROUP = "tradehost.brokers"

_BUILT_IN: dict[str, str] = {
    "paper": "brokers.paper.adapter:PaperBroker",
    "oanda": "brokers.oanda.adapter:OandaBroker",
    "coinbase": "brokers.coinbase.adapter:CoinbaseBroker",
    "binance": "brokers.binance.adapter:BinanceBroker",
    "ibkr": "brokers.ibkr.adapter:IbkrBroker",
}
_BUILT_IN_OPTIONS: dict[str, str] = {
    # Validating supervisor.toml needs only these; importing an adapter would load its whole stack.
    "paper": "brokers.paper.options:PaperOptions",
    "oanda": "brokers.oanda.options:OandaOptions",
    "coinbase": "brokers.coinbase.options:CoinbaseOptions",
    "binance": "brokers.binance.options:BinanceOptions",
    "ibkr": "brokers.ibkr.options:IbkrOptions",
}


def adapter_types() -> dict[str, str]:
    """Every known type name → "module:Class", entry points after built-ins (a built-in name cannot be taken)."""
    types = dict(_BUILT_IN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        types.setdefault(ep.name, ep.value)
    return types


def _load(type_name: str, target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        return getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"broker type {type_name!r} ({target}) cannot be loaded: {exc}") from None


def adapter_class(type_name: str) -> type[BrokerAdapter]:
    """Import and return the adapter class registered as ``type_name``; ConfigError if none is."""
    types = adapter_types()
    target = types.get(type_name)
    if target is None:
        raise ConfigError(f"unknown broker type {type_name!r}; known types: {', '.join(sorted(types))}")
    cls = _load(type_name, target)
    if not (isinstance(cls, type) and issubclass(cls, BrokerAdapter)):
        raise ConfigError(f"broker type {type_name!r} ({target}) is not a BrokerAdapter subclass")
    return cls


def options_class(type_name: str) -> type[AdapterOptions]:
    """The options model of ``type_name``, without importing a built-in adapter itself."""
    target = _BUILT_IN_OPTIONS.get(type_name)
    if target is None:
        return adapter_class(type_name).Options
    options = _load(type_name, target)
    assert isinstance(options, type) and issubclass(options, AdapterOptions)
    return options
