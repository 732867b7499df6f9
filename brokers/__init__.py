"""Broker router and adapters.

The router process that alone owns the broker adapters, credentials, risk
checks and the audit trail lives here; the supervisor will run it as a
built-in continuous service.
"""
