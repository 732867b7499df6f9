"""``python -m host.router --config PATH [--managed]``: what the supervisor starts."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from host.config import load_config
from host.errors import TradehostError

from .main import run_router


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m host.router")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--managed", action="store_true", help="started by tradehost run: read the token key from stdin")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return run_router(load_config(args.config), managed=args.managed)
    except TradehostError as exc:
        print(f"tradehost router: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
