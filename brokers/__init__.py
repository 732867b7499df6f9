"""Broker adapters: the one interface the router speaks, a registry by type name, and the paper broker.

A third-party package adds a broker by subclassing :class:`BrokerAdapter` and
naming the class in its ``tradehost.brokers`` entry point group::

    [project.entry-points."tradehost.brokers"]
    mybroker = "mypackage.adapter:MyBrokerAdapter"
"""

from .base import AdapterServices, BrokerAdapter, Capabilities, ExecutionReport, OutcomeUnknown
from .registry import adapter_class, adapter_types

__all__ = [
    "AdapterServices",
    "BrokerAdapter",
    "Capabilities",
    "ExecutionReport",
    "OutcomeUnknown",
    "adapter_class",
    "adapter_types",
]
