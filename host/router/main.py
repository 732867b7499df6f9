"""``tradehost router``: the router process, started by the supervisor or on its own."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from host.child import set_dumpable, set_parent_death_signal
from host.config import Config
from host.errors import TradehostError
from host.statedir import SupervisorLock, prepare_state_dir

from .keyfile import key_file_path, read_or_create_key

__all__ = ["run_router"]

log = logging.getLogger("tradehost.router")


def _key_from_stdin() -> bytes:
    line = sys.stdin.readline().strip()
    sys.stdin.close()
    try:
        return bytes.fromhex(line)
    except ValueError:
        raise TradehostError("the supervisor did not pass a run-token key on stdin") from None


def run_router(config: Config, *, managed: bool) -> int:
    """Run the router until SIGTERM/SIGINT; ``managed`` means the supervisor started us and passes the key on stdin."""
    if managed:
        # The supervisor's death takes us with it; it restarts us when it starts again.
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() == 1:
            return 0
    os.umask(0o077)  # the database, logs and sockets are the owner's alone
    set_dumpable(False)  # credentials and the token key stay out of reach of same-user processes
    prepare_state_dir(config.host.state_dir)
    lock = SupervisorLock(config.router_lock_file)
    if not lock.acquire():
        raise TradehostError(f"another router is running on {config.host.state_dir} (lock {config.router_lock_file})")
    try:
        key = _key_from_stdin() if managed else read_or_create_key(key_file_path(config.host.state_dir, config.router.key_file))
        os.chdir(config.path.parent)  # relative paths in [brokers.*] are relative to supervisor.toml
        from .app import Router

        return asyncio.run(Router(config, key).run())
    finally:
        lock.release()
