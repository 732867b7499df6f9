"""``python -m host`` does what the ``tradehost`` command does."""

from host.cli import main

raise SystemExit(main())
