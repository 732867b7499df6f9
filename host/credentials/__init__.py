"""Broker credentials, encrypted in the state database and read only by the router.

:mod:`.crypto` seals one value (AES-256-GCM bound to its broker and field),
:mod:`.keys` finds the key (``TRADEHOST_CREDENTIALS_KEY`` or an owner-only
``state/credentials.key``), :mod:`.store` is the ``credentials`` table,
:mod:`.service` runs each change with its audit row, and :mod:`.cli` is
``tradehost credentials``.
"""
