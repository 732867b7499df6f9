"""The broker router: one process that owns the adapters, the risk checks and the audit trail.

Read it in the order an order travels: :mod:`.server` (ZeroMQ, batching) →
:mod:`.engine` (authentication, idempotency, validation) → :mod:`.risk` →
:mod:`.audit` and :mod:`.journal` (durable before any broker sees the order) →
:mod:`brokers` (the adapters).
"""
